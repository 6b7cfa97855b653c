//! What a commit owes its consumers, kept beside the commit: written before the lake commit,
//! read after it (and by the next run after a crash), and by a later replay of the same file,
//! which sends consumers the difference.
//!
//! One file per commit, `ingest/outbox/<commit>.jsonl.zst`: a header line (counts, time, the
//! commit a replay replaces), then one JSON object per line and day, sorted by line and day,
//! zstd-compressed. It is written and read a line at a time, so a file touching millions of
//! lines never has its totals in memory twice. Earlier versions wrote `<commit>.json`, one
//! document with the totals inside; those are still read.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use sb_core::LineUsage;
use serde::{Deserialize, Serialize};

use crate::IngestError;
use crate::journal::Counts;

/// The first line of an outbox.
#[derive(Debug, Serialize, Deserialize)]
pub struct Header {
    /// The lake commit.
    pub commit_id: String,
    /// What the load counted.
    pub counts: Counts,
    /// How long the load took.
    pub took_ms: i64,
    /// The commit this one replaces (a replay): consumers receive `this − replaced`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    /// The totals, in outboxes of earlier versions only.
    #[serde(default, skip_serializing)]
    aggregates: Vec<LineUsage>,
    /// Read from an earlier version's outbox: its totals go to consumers as one batch, as
    /// they were before (a delivery it began must not be split differently now).
    #[serde(skip)]
    pub legacy: bool,
}

impl Header {
    /// A header for a new outbox.
    pub fn new(commit_id: String, counts: Counts, took_ms: i64, replaces: Option<String>) -> Self {
        Self { commit_id, counts, took_ms, replaces, aggregates: Vec::new(), legacy: false }
    }
}

fn path(dir: &Path, commit_id: &str) -> PathBuf {
    dir.join(format!("{commit_id}.jsonl.zst"))
}

fn legacy_path(dir: &Path, commit_id: &str) -> PathBuf {
    dir.join(format!("{commit_id}.json"))
}

/// Writes the outbox of `header.commit_id` atomically: whole, or not at all.
pub fn write(
    dir: &Path,
    header: &Header,
    lines: impl Iterator<Item = Result<LineUsage, IngestError>>,
) -> Result<(), IngestError> {
    let target = path(dir, &header.commit_id);
    sb_core::fs::write_atomically_with(&target, |file| {
        // serde_json writes a field at a time: buffered, the compressor sees large writes
        // (unbuffered, its per-call overhead was most of the outbox's time).
        let mut z = BufWriter::with_capacity(1 << 16, zstd::Encoder::new(file, 1)?);
        serde_json::to_writer(&mut z, header).map_err(std::io::Error::other)?;
        z.write_all(b"\n")?;
        for line in lines {
            let line = line.map_err(|e| std::io::Error::other(e.to_string()))?;
            serde_json::to_writer(&mut z, &line).map_err(std::io::Error::other)?;
            z.write_all(b"\n")?;
        }
        z.into_inner().map_err(|e| e.into_error())?.finish()?;
        Ok(())
    })
    .map_err(|e| IngestError::Io(format!("cannot write the outbox {}: {e}", target.display())))
}

/// The outbox of `commit_id`: its header and an iterator over its totals; `None` if there is
/// none.
pub fn open(dir: &Path, commit_id: &str) -> Result<Option<(Header, Lines)>, IngestError> {
    let current = path(dir, commit_id);
    match std::fs::File::open(&current) {
        Ok(f) => {
            let unreadable =
                |e: &dyn std::fmt::Display| IngestError::Io(format!("outbox {} is unreadable: {e}", current.display()));
            let z = zstd::Decoder::new(f).map_err(|e| unreadable(&e))?;
            let mut reader: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(1 << 16, z));
            let mut first = String::new();
            reader.read_line(&mut first).map_err(|e| unreadable(&e))?;
            let header: Header = serde_json::from_str(&first).map_err(|e| unreadable(&e))?;
            let name = format!("outbox {}", current.display());
            return Ok(Some((
                header,
                Lines { reader: Some(reader), inline: Vec::new().into_iter(), name, line_no: 1 },
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(IngestError::Io(format!("cannot read {}: {e}", current.display()))),
    }
    let legacy = legacy_path(dir, commit_id);
    match std::fs::read(&legacy) {
        Ok(bytes) => {
            let mut header: Header = serde_json::from_slice(&bytes)
                .map_err(|e| IngestError::Io(format!("outbox {} is unreadable: {e}", legacy.display())))?;
            header.legacy = true;
            let inline = std::mem::take(&mut header.aggregates).into_iter();
            Ok(Some((header, Lines { reader: None, inline, name: format!("outbox {}", legacy.display()), line_no: 0 })))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(IngestError::Io(format!("cannot read {}: {e}", legacy.display()))),
    }
}

/// The totals of an outbox, one line and day at a time, in the order written.
pub struct Lines {
    reader: Option<Box<dyn BufRead + Send>>,
    inline: std::vec::IntoIter<LineUsage>,
    /// What the totals are, for errors (`outbox PATH`).
    name: String,
    line_no: u64,
}

impl Iterator for Lines {
    type Item = Result<LineUsage, IngestError>;

    fn next(&mut self) -> Option<Self::Item> {
        let Some(reader) = self.reader.as_mut() else { return self.inline.next().map(Ok) };
        let mut text = String::new();
        self.line_no += 1;
        let read = reader.read_line(&mut text);
        let failed = |e: &dyn std::fmt::Display| {
            IngestError::Io(format!("{} is unreadable at line {}: {e}", self.name, self.line_no))
        };
        match read {
            Ok(0) => {
                self.reader = None;
                None
            }
            Ok(_) => Some(serde_json::from_str(&text).map_err(|e| failed(&e))),
            Err(e) => {
                self.reader = None;
                Some(Err(failed(&e)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sb-outbox-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn usage(line: &str, sms: i64) -> LineUsage {
        LineUsage {
            line: line.into(),
            date: chrono::NaiveDate::from_ymd_opt(2026, 11, 30),
            sms_out: sms,
            ..Default::default()
        }
    }

    #[test]
    fn an_outbox_reads_back_what_was_written_in_order() {
        let d = dir("round-trip");
        let counts = Counts { rows_read: 3, rows_loaded: 3, ..Counts::default() };
        let header = Header::new("c1".into(), counts, 12, Some("c0".into()));
        write(&d, &header, [usage("a", 1), usage("b", 2)].into_iter().map(Ok)).unwrap();
        let (h, lines) = open(&d, "c1").unwrap().unwrap();
        assert_eq!((h.commit_id.as_str(), h.took_ms, h.replaces.as_deref(), h.legacy), ("c1", 12, Some("c0"), false));
        assert_eq!(h.counts.rows_read, 3);
        let lines: Vec<LineUsage> = lines.map(Result::unwrap).collect();
        assert_eq!(lines, vec![usage("a", 1), usage("b", 2)]);
        assert!(open(&d, "c2").unwrap().is_none());
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn an_outbox_of_an_earlier_version_is_still_read() {
        let d = dir("legacy");
        std::fs::create_dir_all(&d).unwrap();
        let old = serde_json::json!({
            "commit_id": "c1", "counts": Counts::default(), "took_ms": 5,
            "aggregates": [usage("a", 1)],
        });
        std::fs::write(d.join("c1.json"), serde_json::to_vec(&old).unwrap()).unwrap();
        let (h, lines) = open(&d, "c1").unwrap().unwrap();
        assert!(h.legacy);
        assert_eq!(lines.map(Result::unwrap).collect::<Vec<_>>(), vec![usage("a", 1)]);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_damaged_outbox_is_an_error_naming_it() {
        let d = dir("damaged");
        write(&d, &Header::new("c1".into(), Counts::default(), 1, None), [usage("a", 1)].into_iter().map(Ok)).unwrap();
        let p = path(&d, "c1");
        let mut bytes = std::fs::read(&p).unwrap();
        bytes.truncate(bytes.len() - 4);
        std::fs::write(&p, bytes).unwrap();
        let result = open(&d, "c1").and_then(|o| o.unwrap().1.collect::<Result<Vec<_>, _>>());
        let err = result.unwrap_err().to_string();
        assert!(err.contains("c1.jsonl.zst"), "{err}");
        std::fs::remove_dir_all(d).unwrap();
    }
}
