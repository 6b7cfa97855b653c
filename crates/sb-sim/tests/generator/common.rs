//! Shared by the generator's tests: small configurations in temporary folders, reading the
//! output back, an independent validator of the reference layout, and a dump of the
//! source database.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io::Read;
use std::path::Path;

use chrono::{DateTime, Duration, FixedOffset, Timelike};
use sb_core::{TopupChannel, UsageKind};
use sb_sim::{
    DuplicateRecord, GenerateConfig, GenerateSummary, MalformedKind, Manifest, Totals, cdr::HEADER, default_start,
};
use sqlx::{AnyConnection, Connection, Row};

/// A configuration that writes a few thousand records in a morning's hours.
pub fn small_config(seed: u64, out: &Path) -> GenerateConfig {
    let mut cfg = GenerateConfig::new(seed, out);
    cfg.customers = 120;
    cfg.hours = 4;
    cfg.start = default_start() + Duration::hours(9);
    cfg.records = Some(8_000);
    cfg.threads = 2;
    cfg
}

pub fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

/// Runs the whole generator on a current-thread runtime.
pub fn generate(cfg: &GenerateConfig) -> GenerateSummary {
    block_on(sb_sim::generate(cfg, &|_| {})).unwrap()
}

pub fn read_manifest(cfg: &GenerateConfig) -> Manifest {
    serde_json::from_slice(&std::fs::read(cfg.manifest_path()).unwrap()).unwrap()
}

/// Every file of the mediation folder, by name, as stored on disk.
pub fn mediation_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().into_string().unwrap(), std::fs::read(e.path()).unwrap())
        })
        .collect()
}

/// The text of a usage file, decompressed when its name ends in `.gz`.
pub fn content(name: &str, bytes: &[u8]) -> String {
    if name.ends_with(".gz") {
        let mut text = String::new();
        flate2::read::GzDecoder::new(bytes).read_to_string(&mut text).unwrap();
        text
    } else {
        String::from_utf8(bytes.to_vec()).unwrap()
    }
}

/// A row that passed every rule.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub id: String,
    pub kind: UsageKind,
    pub msisdn: String,
    pub imsi: String,
    pub imei: String,
    pub other_party: String,
    pub start: DateTime<FixedOffset>,
    pub duration: u64,
    pub up: u64,
    pub down: u64,
    pub roaming: String,
    pub charge_e4: u64,
    pub channel: Option<TopupChannel>,
    pub partial_seq: Option<u64>,
}

/// Why a row is not valid: one of the injected kinds, or something the generator should
/// never write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Defect {
    Kind(MalformedKind),
    Other(String),
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn opt_u64(s: &str, field: &str) -> Result<Option<u64>, Defect> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse().map(Some).map_err(|_| Defect::Other(format!("{field} `{s}` is not a non-negative integer")))
}

/// `charge_eur` in ten-thousandths, if it is a decimal with at most four decimals.
fn charge_e4(s: &str) -> Option<u64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if !digits(int) || frac.len() > 4 || (s.contains('.') && !digits(frac)) {
        return None;
    }
    let frac_e4: u64 = if frac.is_empty() { 0 } else { format!("{frac:0<4}").parse().ok()? };
    Some(int.parse::<u64>().ok()? * 10_000 + frac_e4)
}

/// Validates `row` against the reference layout, for a file of `hour`.
pub fn check_row(row: &str, hour: DateTime<FixedOffset>) -> Result<Parsed, Defect> {
    use Defect::{Kind, Other};
    use MalformedKind::*;
    let f: Vec<&str> = row.split(';').collect();
    if f.len() != 16 {
        return Err(Kind(WrongFieldCount));
    }
    if [0, 1, 2, 3, 6].iter().any(|&i| f[i].is_empty()) {
        return Err(Kind(MissingMandatoryField));
    }
    let kind: UsageKind = f[1].parse().map_err(|_| Kind(UnknownRecordType))?;
    if f[0].len() > 32 {
        return Err(Other("record_id longer than 32".into()));
    }
    if !f[2].bytes().all(|b| b.is_ascii_digit()) {
        return Err(Kind(NonDigitMsisdn));
    }
    if !(8..=15).contains(&f[2].len()) {
        return Err(Other("msisdn length".into()));
    }
    if f[3].len() != 15 || !digits(f[3]) {
        return Err(Other("imsi is not 15 digits".into()));
    }
    if !f[4].is_empty() && (!(14..=16).contains(&f[4].len()) || !digits(f[4])) {
        return Err(Other("imei is not 14-16 digits".into()));
    }
    let start = DateTime::parse_from_rfc3339(f[6]).map_err(|_| Kind(BadTimestamp))?;
    if start < hour - Duration::days(7) || start >= hour + Duration::hours(2) {
        return Err(Kind(StartTimeOutOfWindow));
    }
    if f[7].starts_with('-') {
        return Err(Kind(NegativeDuration));
    }
    let duration = opt_u64(f[7], "duration_s")?;
    let up = opt_u64(f[8], "volume_up_bytes")?;
    let down = opt_u64(f[9], "volume_down_bytes")?;
    let rating_group = opt_u64(f[10], "rating_group")?;
    opt_u64(f[11], "cell_id")?;
    if !f[12].is_empty() && (f[12].len() != 2 || !f[12].bytes().all(|b| b.is_ascii_uppercase())) {
        return Err(Other("roaming_country".into()));
    }
    let charge = charge_e4(f[13]).ok_or(Kind(BadDecimalCharge))?;
    let channel =
        if f[14].is_empty() { None } else { Some(f[14].parse::<TopupChannel>().map_err(|e| Other(e.to_string()))?) };
    let partial_seq = opt_u64(f[15], "partial_seq")?;

    let voice_or_sms = kind.is_voice() || kind.is_sms();
    if voice_or_sms {
        if f[5].is_empty() {
            return Err(Kind(MissingOtherParty));
        }
        let len = f[5].len();
        if !digits(f[5]) || !((3..=6).contains(&len) || (8..=15).contains(&len)) {
            return Err(Other(format!("other_party `{}`", f[5])));
        }
    } else if !f[5].is_empty() {
        return Err(Other("other_party on a record without counterpart".into()));
    }
    let is_data = kind == UsageKind::Data;
    if (kind.is_voice() || is_data) && duration.is_none() {
        return Err(Other("duration_s missing".into()));
    }
    if !(kind.is_voice() || is_data) && duration.unwrap_or(0) != 0 {
        return Err(Other("duration_s on a record without duration".into()));
    }
    if is_data != (up.is_some() && down.is_some() && rating_group.is_some() && partial_seq.is_some()) {
        return Err(Other("data fields present exactly on DATA".into()));
    }
    if partial_seq == Some(0) {
        return Err(Other("partial_seq 0".into()));
    }
    match (kind, channel) {
        (UsageKind::Topup, Some(c)) if c != TopupChannel::AutoThreshold => {}
        (UsageKind::TopupAuto, Some(TopupChannel::AutoThreshold)) => {}
        (k, None) if !k.is_topup() => {}
        _ => return Err(Other("channel does not fit the record type".into())),
    }
    if kind.is_topup() && charge == 0 {
        return Err(Other("top-up of nothing".into()));
    }
    Ok(Parsed {
        id: f[0].to_owned(),
        kind,
        msisdn: f[2].to_owned(),
        imsi: f[3].to_owned(),
        imei: f[4].to_owned(),
        other_party: f[5].to_owned(),
        start,
        duration: duration.unwrap_or(0),
        up: up.unwrap_or(0),
        down: down.unwrap_or(0),
        roaming: f[12].to_owned(),
        charge_e4: charge,
        channel,
        partial_seq,
    })
}

/// Adds a unique valid record to `t`, the way the manifest defines its sums.
fn add(t: &mut Totals, p: &Parsed, hour: DateTime<FixedOffset>) {
    t.records += 1;
    *t.by_kind.get_mut(p.kind) += 1;
    *t.charge_e4_by_kind.get_mut(p.kind) += p.charge_e4;
    match p.kind {
        UsageKind::VoiceMo => t.voice_mo_seconds += p.duration,
        UsageKind::VoiceMt => t.voice_mt_seconds += p.duration,
        UsageKind::Data => {
            t.data_seconds += p.duration;
            t.data_up_bytes += p.up;
            t.data_down_bytes += p.down;
            t.data_sessions += u64::from(p.partial_seq == Some(1));
        }
        _ => {}
    }
    if let Some(c) = p.channel {
        *t.topups_by_channel.get_mut(c) += 1;
        *t.topup_e4_by_channel.get_mut(c) += p.charge_e4;
    }
    t.roaming_records += u64::from(!p.roaming.is_empty());
    t.late_records += u64::from(p.start < hour);
    let start_hour = p.start - Duration::seconds(i64::from(p.start.minute() * 60 + p.start.second()));
    *t.records_by_start_hour.entry(start_hour.to_rfc3339()).or_default() += 1;
}

/// Every valid row of the run's files (duplicate copies of files skipped), in file order.
pub fn valid_rows(dir: &Path, manifest: &Manifest) -> Vec<Parsed> {
    let files = mediation_files(dir);
    let mut rows = Vec::new();
    for entry in &manifest.files {
        let hour = DateTime::parse_from_rfc3339(&entry.hour).unwrap();
        let text = content(&entry.name, &files[&entry.name]);
        rows.extend(text.lines().skip(1).filter_map(|row| check_row(row, hour).ok()));
    }
    rows
}

/// Reads every file back and checks that the manifest says exactly what is in them.
pub fn assert_manifest_matches_files(dir: &Path, manifest: &Manifest) {
    let files = mediation_files(dir);
    let mut listed: Vec<&str> = manifest.files.iter().map(|f| f.name.as_str()).collect();
    listed.extend(manifest.duplicate_files.iter().map(|d| d.file.as_str()));
    listed.sort_unstable();
    assert_eq!(files.keys().map(String::as_str).collect::<Vec<_>>(), listed, "files on disk vs manifest");

    for d in &manifest.duplicate_files {
        assert!(d.copy_of < d.file, "{} copies a later file", d.file);
        assert!(manifest.files.iter().any(|f| f.name == d.copy_of));
        assert_eq!(files[&d.file], files[&d.copy_of], "{} is not a byte copy", d.file);
    }

    let mut first_seen: HashMap<String, (String, u64, String)> = HashMap::new();
    let mut duplicates = Vec::new();
    let mut malformed = Vec::new();
    let mut all = Totals::default();
    let (mut lines, mut valid_total) = (0, 0);
    for entry in &manifest.files {
        let hour = DateTime::parse_from_rfc3339(&entry.hour).unwrap();
        let bytes = &files[&entry.name];
        let text = content(&entry.name, bytes);
        assert!(text.ends_with('\n') && !text.contains('\r'), "{}: LF line ends", entry.name);
        let mut rows = text.lines();
        assert_eq!(rows.next(), Some(HEADER), "{}: header", entry.name);
        let (mut valid, mut dups, mut bad, mut n) = (0, 0, 0, 0);
        let mut totals = Totals::default();
        for (i, row) in rows.enumerate() {
            let line = i as u64 + 2;
            n += 1;
            match check_row(row, hour) {
                Ok(p) => {
                    valid += 1;
                    assert!(p.start < hour + Duration::hours(1), "{}:{line}: starts after its hour", entry.name);
                    if let Some((file, first_line, text)) = first_seen.get(&p.id) {
                        assert_eq!(text, row, "{}:{line}: a duplicate repeats its original", entry.name);
                        dups += 1;
                        duplicates.push(DuplicateRecord {
                            file: entry.name.clone(),
                            line,
                            record_id: p.id.clone(),
                            first_file: file.clone(),
                            first_line: *first_line,
                        });
                    } else {
                        first_seen.insert(p.id.clone(), (entry.name.clone(), line, row.to_owned()));
                        add(&mut totals, &p, hour);
                    }
                }
                Err(Defect::Kind(kind)) => {
                    bad += 1;
                    malformed.push((entry.name.clone(), line, kind));
                }
                Err(Defect::Other(why)) => panic!("{}:{line}: {why}: {row}", entry.name),
            }
        }
        assert_eq!(entry.bytes, bytes.len() as u64, "{}: bytes", entry.name);
        assert_eq!((entry.lines, entry.rows), (n + 1, n), "{}: lines", entry.name);
        assert_eq!(entry.valid_records, valid, "{}: valid records", entry.name);
        assert_eq!(entry.duplicate_records, dups, "{}: duplicates", entry.name);
        assert_eq!(entry.malformed_rows, bad, "{}: malformed", entry.name);
        assert_eq!(entry.totals, totals, "{}: totals", entry.name);
        all.merge(&totals);
        lines += n + 1;
        valid_total += valid;
    }
    assert_eq!(manifest.duplicate_records, duplicates);
    let stated: Vec<_> = manifest.malformed_rows.iter().map(|m| (m.file.clone(), m.line, m.kind)).collect();
    assert_eq!(stated, malformed);
    for m in &manifest.malformed_rows {
        if let Some(id) = &m.record_id {
            let text = content(&m.file, &files[&m.file]);
            let row = text.lines().nth(m.line as usize - 1).unwrap();
            assert!(row.starts_with(&format!("{id};")), "{}:{}: record id", m.file, m.line);
        }
    }
    assert_eq!(manifest.totals, all);
    let s = &manifest.summary;
    assert_eq!((s.files, s.duplicate_files), (manifest.files.len() as u64, manifest.duplicate_files.len() as u64));
    assert_eq!((s.lines, s.rows), (lines, lines - s.files));
    assert_eq!(s.valid_records, valid_total);
    assert_eq!(s.unique_records, all.records);
    assert_eq!(s.duplicate_records, duplicates.len() as u64);
    assert_eq!(s.malformed_rows, malformed.len() as u64);
    assert_eq!(s.malformed_by_kind.values().sum::<u64>(), s.malformed_rows);
    assert_eq!(s.rows, s.valid_records + s.malformed_rows);
    assert_eq!(s.valid_records, s.unique_records + s.duplicate_records);
}

/// Rows of `sql` with every column read as optional text.
pub async fn query_text(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(url).await.unwrap();
    let rows = sqlx::query(sql).fetch_all(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    rows.iter().map(|r| (0..r.len()).map(|i| r.get::<Option<String>, _>(i)).collect()).collect()
}

/// The documented schema: table, columns, key to order by.
pub const TABLES: &[(&str, &[&str], &str)] = &[
    (
        "plans",
        &["plan_code", "name", "payment_type", "monthly_fee_cents", "data_gb", "voice_minutes", "sms", "updated_at"],
        "plan_code",
    ),
    (
        "options",
        &["option_code", "name", "category", "monthly_fee_cents", "data_gb", "voice_minutes", "sms", "updated_at"],
        "option_code",
    ),
    (
        "customers",
        &[
            "customer_id",
            "customer_type",
            "first_name",
            "last_name",
            "sex",
            "birth_date",
            "birth_place_code",
            "tax_code",
            "company_name",
            "vat_number",
            "iban",
            "street",
            "street_number",
            "city",
            "province",
            "postcode",
            "email",
            "created_at",
            "updated_at",
        ],
        "customer_id",
    ),
    (
        "lines",
        &[
            "line_id",
            "customer_id",
            "msisdn",
            "iccid",
            "imsi",
            "imei",
            "plan_code",
            "payment_type",
            "status",
            "device_type",
            "auto_topup",
            "activated_at",
            "updated_at",
        ],
        "line_id",
    ),
    ("line_options", &["line_id", "option_code", "activated_at", "updated_at"], "line_id, option_code"),
];

/// Every row of every table, as text, in key order.
pub async fn dump_source_db(url: &str) -> String {
    let mut out = String::new();
    for (table, columns, key) in TABLES {
        // Aliases keep PostgreSQL from ordering by the text casts, which it names like the columns.
        let select: Vec<String> =
            columns.iter().enumerate().map(|(i, c)| format!("CAST({c} AS TEXT) AS c{i}")).collect();
        let sql = format!("SELECT {} FROM {table} ORDER BY {key}", select.join(", "));
        out.push_str(&format!("# {table}\n"));
        for row in query_text(url, &sql).await {
            let cells: Vec<&str> = row.iter().map(|c| c.as_deref().unwrap_or("NULL")).collect();
            out.push_str(&cells.join("|"));
            out.push('\n');
        }
    }
    out
}

/// Asserts two long texts are equal, showing the first line that differs.
pub fn assert_same_text(a: &str, b: &str, what: &str) {
    if let Some((i, (x, y))) = a.lines().zip(b.lines()).enumerate().find(|(_, (x, y))| x != y) {
        panic!("{what} differ at line {}:\n  {x}\n  {y}", i + 1);
    }
    assert_eq!(a.lines().count(), b.lines().count(), "{what} differ in length");
}
