//! Finds cleartext personal data in files: MSISDNs, IMSIs, IMEIs, IBANs, tax codes and
//! e-mail addresses, in CSV, JSON, logs, any text, SQLite files, Parquet (every value of every
//! row), and zstd-compressed files (`.zst`, read decompressed). Files encrypted with age are
//! counted but not read: their bytes are ciphertext, where a pattern can only be chance.
//! Findings name the file, the place and the kind — never the value.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Serialize;

use crate::PrivacyError;

/// One piece of cleartext personal data found.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Finding {
    /// The file.
    pub path: PathBuf,
    /// Where in it: `line 12`, or `row 3, column msisdn` in Parquet.
    pub location: String,
    /// What it looks like: `msisdn`, `imsi`, `imei`, `iban`, `tax_code`, `email`.
    pub kind: &'static str,
}

/// What a scan found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScanReport {
    /// Files read.
    pub files: u64,
    /// Of those, files encrypted with age (not searched).
    pub encrypted: u64,
    /// Findings, at most [`Scanner::MAX_FINDINGS`].
    pub findings: Vec<Finding>,
    /// Whether findings were cut at the limit.
    pub truncated: bool,
}

/// The detectors, compiled once.
pub struct Scanner {
    msisdn: Regex,
    imsi: Regex,
    imei: Regex,
    iban: Regex,
    tax_code: Regex,
    email: Regex,
}

impl Default for Scanner {
    fn default() -> Self {
        Self::new()
    }
}

impl Scanner {
    /// Findings kept per scan; the scan still fails beyond it.
    pub const MAX_FINDINGS: usize = 1_000;

    /// Compiles the detectors.
    pub fn new() -> Self {
        let re = |p: &str| Regex::new(p).expect("detector patterns are valid");
        Self {
            // Italian mobiles with their country code, and any number written in + form.
            msisdn: re(r"(?:\+|\b00|\b)39 ?3\d{8,9}\b|\+[1-9]\d{9,14}\b"),
            imsi: re(r"\b222\d{12}\b"),
            imei: re(r"\b\d{15}\b"),
            iban: re(r"\b[A-Z]{2}\d{2} ?(?:[A-Z0-9] ?){11,30}\b"),
            tax_code: re(
                r"(?i)\b[A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]\b",
            ),
            email: re(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"),
        }
    }

    /// Shortest address counted as an email inside binary data: among a vault's encrypted
    /// bytes, a run like `q@x.bd` turns up by chance (about one demo vault in 500 had one),
    /// one of 12 characters practically never; every other detector needs a long digit run or
    /// a check digit already.
    const MIN_BINARY_EMAIL: usize = 12;

    /// The kinds of personal data in `text`.
    pub fn detect(&self, text: &str) -> Vec<&'static str> {
        self.detect_with(text, 0)
    }

    /// [`Scanner::detect`], counting emails from `min_email` characters.
    fn detect_with(&self, text: &str, min_email: usize) -> Vec<&'static str> {
        let mut found = Vec::new();
        if self.msisdn.is_match(text) {
            found.push("msisdn");
        }
        if self.imsi.is_match(text) {
            found.push("imsi");
        }
        if self.imei.find_iter(text).any(|m| !m.as_str().starts_with("222") && sb_core::luhn::is_valid(m.as_str())) {
            found.push("imei");
        }
        if self.iban.find_iter(text).any(|m| sb_core::Iban::parse(m.as_str()).is_ok()) {
            found.push("iban");
        }
        if self.tax_code.find_iter(text).any(|m| sb_core::TaxCode::parse(m.as_str()).is_ok()) {
            found.push("tax_code");
        }
        if self.email.find_iter(text).any(|m| m.as_str().len() >= min_email) {
            found.push("email");
        }
        found
    }

    /// Scans files and folders (recursively).
    pub fn scan(&self, paths: &[PathBuf]) -> Result<ScanReport, PrivacyError> {
        let mut report = ScanReport::default();
        let mut stack: Vec<PathBuf> = paths.to_vec();
        while let Some(path) = stack.pop() {
            let meta = std::fs::metadata(&path)
                .map_err(|e| PrivacyError::Io(format!("cannot read {}: {e}", path.display())))?;
            if meta.is_dir() {
                let entries = std::fs::read_dir(&path)
                    .map_err(|e| PrivacyError::Io(format!("cannot list {}: {e}", path.display())))?;
                let mut children: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
                children.sort();
                stack.extend(children.into_iter().rev());
                continue;
            }
            report.files += 1;
            if path.extension().is_some_and(|e| e == "parquet") {
                self.scan_parquet(&path, &mut report)?;
            } else {
                let file = std::fs::File::open(&path)
                    .map_err(|e| PrivacyError::Io(format!("cannot open {}: {e}", path.display())))?;
                let (head, rest) = read_head(&path, file)?;
                if head == AGE_HEADER {
                    report.encrypted += 1;
                    continue;
                }
                // The bytes read to tell are scanned too.
                let input = std::io::Cursor::new(head).chain(rest);
                if path.extension().is_some_and(|e| e == "zst") {
                    let z = zstd::Decoder::new(input)
                        .map_err(|e| PrivacyError::Io(format!("cannot read {}: {e}", path.display())))?;
                    self.scan_text(&path, z, &mut report)?;
                } else {
                    self.scan_text(&path, input, &mut report)?;
                }
            }
        }
        Ok(report)
    }

    fn push(&self, report: &mut ScanReport, path: &Path, location: String, kinds: Vec<&'static str>) {
        for kind in kinds {
            if report.findings.len() >= Self::MAX_FINDINGS {
                report.truncated = true;
                return;
            }
            report.findings.push(Finding { path: path.to_owned(), location: location.clone(), kind });
        }
    }

    fn scan_text(&self, path: &Path, input: impl Read, report: &mut ScanReport) -> Result<(), PrivacyError> {
        let mut reader = BufReader::with_capacity(1 << 16, input);
        let mut line = Vec::new();
        let mut n = 0u64;
        loop {
            line.clear();
            let read = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| PrivacyError::Io(format!("cannot read {}: {e}", path.display())))?;
            if read == 0 {
                return Ok(());
            }
            n += 1;
            // Binary files (SQLite) are read as text too: cleartext inside them still shows.
            let text = String::from_utf8_lossy(&line);
            let binary = matches!(text, std::borrow::Cow::Owned(_)) || line.contains(&0);
            let kinds = self.detect_with(&text, if binary { Self::MIN_BINARY_EMAIL } else { 0 });
            if !kinds.is_empty() {
                self.push(report, path, format!("line {n}"), kinds);
            }
        }
    }

    fn scan_parquet(&self, path: &Path, report: &mut ScanReport) -> Result<(), PrivacyError> {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let bad = |e: &dyn std::fmt::Display| PrivacyError::Io(format!("cannot read Parquet {}: {e}", path.display()));
        let file = std::fs::File::open(path).map_err(|e| bad(&e))?;
        let reader = SerializedFileReader::new(file).map_err(|e| bad(&e))?;
        let rows = reader.get_row_iter(None).map_err(|e| bad(&e))?;
        for (i, row) in rows.enumerate() {
            let row = row.map_err(|e| bad(&e))?;
            for (column, field) in row.get_column_iter() {
                let text = field.to_string();
                let kinds = self.detect(&text);
                if !kinds.is_empty() {
                    self.push(report, path, format!("row {}, column {column}", i + 1), kinds);
                }
            }
        }
        Ok(())
    }
}

/// The first line of every age-encrypted file.
const AGE_HEADER: &[u8] = b"age-encryption.org/v1\n";

/// A file's first bytes (as many as [`AGE_HEADER`] has, fewer if the file is shorter) and the rest.
fn read_head(path: &Path, mut file: std::fs::File) -> Result<(Vec<u8>, std::fs::File), PrivacyError> {
    let mut head = Vec::with_capacity(AGE_HEADER.len());
    (&mut file)
        .take(AGE_HEADER.len() as u64)
        .read_to_end(&mut head)
        .map_err(|e| PrivacyError::Io(format!("cannot read {}: {e}", path.display())))?;
    Ok((head, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_files_are_read_decompressed_and_encrypted_ones_are_counted_not_searched() {
        let dir = tempfile::tempdir().unwrap();
        let zst = dir.path().join("outbox.jsonl.zst");
        std::fs::write(&zst, zstd::encode_all(&b"{\"line\":\"393401234567\"}\n"[..], 1).unwrap()).unwrap();
        let age = dir.path().join("inbox.cdr.age");
        std::fs::write(&age, b"age-encryption.org/v1\n-> X25519 abc\nmario.rossi@example.it\n").unwrap();
        let report = Scanner::new().scan(&[dir.path().to_owned()]).unwrap();
        assert_eq!((report.files, report.encrypted), (2, 1));
        assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
        assert_eq!((report.findings[0].path.as_path(), report.findings[0].kind), (zst.as_path(), "msisdn"));
    }

    #[test]
    fn each_kind_is_detected_and_tokens_are_not() {
        let s = Scanner::new();
        assert_eq!(s.detect("call from 393401234567 ok"), ["msisdn"]);
        assert_eq!(s.detect("imsi=222013401234567"), ["imsi"]);
        assert_eq!(s.detect("dev 490154203237518;"), ["imei"]);
        assert_eq!(s.detect("IT60X0542811101000000123456"), ["iban"]);
        assert_eq!(s.detect("cf RSSMRA85T10A562S"), ["tax_code"]);
        assert_eq!(s.detect("mail mario.rossi@example.it"), ["email"]);
        assert!(
            s.detect("msi_0123456789abcdefghjkmnpqrs;opa_7g3k9x2m4p6q8r0s1t3v5w7y9z;2026-11-22T13:00:00+01:00")
                .is_empty()
        );
        assert!(s.detect("490154203237519 is not luhn-valid").is_empty());
    }

    #[test]
    fn in_binary_data_a_short_address_like_run_is_chance_and_a_real_email_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("vault.db");
        // Bytes seen in a demo vault: encrypted values around a run that looks like an address.
        std::fs::write(&db, b"\x00\x9f\xc3(q@x.bd\x00\xfe\x01").unwrap();
        assert!(Scanner::new().scan(std::slice::from_ref(&db)).unwrap().findings.is_empty());
        std::fs::write(&db, b"\x00\x9f\xc3mario.rossi@example.it\x00\xfe\x01").unwrap();
        let report = Scanner::new().scan(&[db]).unwrap();
        assert_eq!(report.findings.iter().map(|f| f.kind).collect::<Vec<_>>(), ["email"]);
        // In text, short addresses still count.
        assert_eq!(Scanner::new().detect("to q@x.bd"), ["email"]);
    }
}
