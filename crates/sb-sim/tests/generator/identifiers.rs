//! Every identifier the generator writes passes the sb-core parsers.

use std::collections::{HashMap, HashSet};

use sb_core::{Iban, Iccid, Imei, Imsi, Msisdn, TaxCode, luhn, tax_code};

use crate::common::{block_on, generate, query_text, read_manifest, small_config, valid_rows};

fn text(cell: &Option<String>) -> &str {
    cell.as_deref().unwrap()
}

/// An Italian mobile number of the ranges the generator uses: 39, 3xx, 7 digits.
fn italian_mobile(s: &str) -> bool {
    Msisdn::parse(s).is_ok() && s.len() == 12 && s.starts_with("393")
}

#[test]
fn every_generated_identifier_is_valid_in_the_source_db_and_in_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = small_config(21, dir.path());
    cfg.customers = 500;
    generate(&cfg);
    let url = cfg.source_db_url();

    let lines = block_on(query_text(&url, "SELECT msisdn, iccid, imsi, imei, status FROM lines"));
    assert!(lines.len() >= 500);
    let mut by_msisdn = HashMap::new();
    let (mut iccids, mut imsis) = (HashSet::new(), HashSet::new());
    for l in &lines {
        let (msisdn, iccid, imsi, imei) = (text(&l[0]), text(&l[1]), text(&l[2]), text(&l[3]));
        assert!(italian_mobile(msisdn), "{msisdn}");
        Iccid::parse(iccid).unwrap();
        assert!(iccid.starts_with("8939") && iccid.len() == 20, "{iccid}");
        assert_eq!(Imsi::parse(imsi).unwrap().mcc(), "222");
        Imei::parse(imei).unwrap();
        assert!(by_msisdn.insert(msisdn.to_owned(), (imsi.to_owned(), text(&l[4]).to_owned())).is_none());
        assert!(iccids.insert(iccid.to_owned()), "duplicate ICCID");
        assert!(imsis.insert(imsi.to_owned()), "duplicate IMSI");
    }

    let customers = block_on(query_text(
        &url,
        "SELECT customer_type, tax_code, vat_number, iban, birth_date, sex, birth_place_code FROM customers",
    ));
    let mut tax_codes = HashSet::new();
    let (mut consumers, mut businesses) = (0, 0);
    for c in &customers {
        if let Some(iban) = c[3].as_deref() {
            assert!(iban.starts_with("IT") && iban.len() == 27, "{iban}");
            Iban::parse(iban).unwrap();
        }
        match text(&c[0]) {
            "consumer" => {
                consumers += 1;
                let code = TaxCode::parse(text(&c[1])).unwrap().into_string();
                assert!(c[2].is_none());
                assert_tax_code_encodes(&code, text(&c[4]), text(&c[5]), text(&c[6]));
                assert!(tax_codes.insert(code), "duplicate tax code");
            }
            "business" => {
                businesses += 1;
                let vat = text(&c[2]);
                assert!(vat.len() == 11 && luhn::is_valid(vat), "{vat}");
                assert!(c[1].is_none() && c[3].is_some());
            }
            other => panic!("customer_type {other}"),
        }
    }
    assert!(consumers > 400 && businesses > 20, "{consumers} {businesses}");

    let rows = valid_rows(&cfg.mediation_dir(), &read_manifest(&cfg));
    assert!(rows.len() > 5_000);
    for r in &rows {
        let (imsi, status) = by_msisdn.get(&r.msisdn).expect("a line of the source database");
        assert_eq!(&r.imsi, imsi);
        assert_eq!(status, "active", "only active lines make traffic");
        if !r.imei.is_empty() {
            Imei::parse(&r.imei).unwrap();
        }
        if r.other_party.len() == 12 && r.other_party.starts_with("393") {
            assert!(italian_mobile(&r.other_party));
        }
    }
    assert!(rows.iter().any(|r| r.imei.is_empty()), "the IMEI is sometimes missing");
    assert!(rows.iter().any(|r| (3..=6).contains(&r.other_party.len())), "short codes");
    assert!(rows.iter().any(|r| !r.roaming.is_empty()), "roaming");
}

/// Birth date, sex and place are where the tax code says, omocodia letters read as digits.
fn assert_tax_code_encodes(code: &str, birth_date: &str, sex: &str, place: &str) {
    let digit = |c: u8| match b"LMNPQRSTUV".iter().position(|&l| l == c) {
        Some(d) => b'0' + d as u8,
        None => c,
    };
    let b: Vec<u8> = code
        .bytes()
        .enumerate()
        .map(|(i, c)| if i > 5 && i != 8 && i != 11 && i < 15 { digit(c) } else { c })
        .collect();
    let (year, month, day) = (&birth_date[2..4], &birth_date[5..7], &birth_date[8..10]);
    assert_eq!(&b[6..8], year.as_bytes(), "{code} {birth_date}");
    assert_eq!(b[8], tax_code::MONTHS[month.parse::<usize>().unwrap() - 1], "{code} {birth_date}");
    let encoded_day: u32 = std::str::from_utf8(&b[9..11]).unwrap().parse().unwrap();
    let expected_day = day.parse::<u32>().unwrap() + if sex == "F" { 40 } else { 0 };
    assert_eq!(encoded_day, expected_day, "{code} {birth_date} {sex}");
    assert_eq!(&b[11..15], place.as_bytes(), "{code} {place}");
}
