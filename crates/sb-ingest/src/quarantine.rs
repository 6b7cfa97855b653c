//! Rows that failed validation, kept for operators with file, line, field and reason.
//!
//! The raw line is personal data, so the quarantine file is encrypted with age to the
//! configured recipients as it is written (streaming: memory stays flat): at rest it is
//! unreadable without the identity, which `switchboard privacy decrypt-file` uses.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use sb_privacy::files::EncryptingWriter;

use crate::IngestError;
use crate::record::RowError;

/// The quarantine file of one load, created on the first bad row.
pub struct Quarantine {
    final_path: PathBuf,
    tmp: PathBuf,
    recipients: Vec<sb_privacy::files::Recipient>,
    writer: Option<EncryptingWriter<BufWriter<File>>>,
}

impl Quarantine {
    /// A quarantine that will write `final_path` (through a temporary name until committed).
    pub fn new(final_path: PathBuf, recipients: Vec<sb_privacy::files::Recipient>) -> Self {
        let tmp = final_path.with_file_name(format!(
            ".{}.tmp",
            final_path.file_name().and_then(|n| n.to_str()).unwrap_or("quarantine")
        ));
        Self { final_path, tmp, recipients, writer: None }
    }

    /// Records a bad row.
    pub fn push(&mut self, line_no: u64, error: &RowError, raw: &[u8]) -> Result<(), IngestError> {
        if self.writer.is_none() {
            if let Some(dir) = self.tmp.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| IngestError::Io(format!("cannot create {}: {e}", dir.display())))?;
            }
            let file = File::create(&self.tmp)
                .map_err(|e| IngestError::Io(format!("cannot create {}: {e}", self.tmp.display())))?;
            let mut w = EncryptingWriter::new(BufWriter::new(file), &self.recipients)
                .map_err(|e| IngestError::Io(format!("cannot encrypt quarantine: {e}")))?;
            w.write_all(b"line;field;reason;raw\n").map_err(|e| self.io(e))?;
            self.writer = Some(w);
        }
        let w = self.writer.as_mut().expect("created above");
        let raw = String::from_utf8_lossy(raw);
        let raw = raw.trim_end_matches(['\n', '\r']).replace('"', "\"\"");
        writeln!(w, "{line_no};{};{};\"{raw}\"", error.field, error.reason.replace(';', ","))
            .map_err(|e| IngestError::Io(format!("cannot write quarantine: {e}")))?;
        Ok(())
    }

    fn io(&self, e: std::io::Error) -> IngestError {
        IngestError::Io(format!("cannot write {}: {e}", self.tmp.display()))
    }

    /// Closes the encrypted stream; the file stays under its temporary name until [`Quarantine::publish`].
    pub fn close(&mut self) -> Result<(), IngestError> {
        if let Some(w) = self.writer.take() {
            let buf = w.finish().map_err(|e| self.io(e))?;
            let file = buf.into_inner().map_err(|e| self.io(e.into_error()))?;
            file.sync_all().map_err(|e| self.io(e))?;
        }
        Ok(())
    }

    /// Gives the file its final name (after the lake commit).
    pub fn publish(&self) -> Result<Option<PathBuf>, IngestError> {
        publish(&self.tmp, &self.final_path)
    }

    /// Deletes the temporary file (the load was abandoned).
    pub fn discard(mut self) {
        self.writer = None;
        let _ = std::fs::remove_file(&self.tmp);
    }

    /// The paths (temporary, final).
    pub fn paths(&self) -> (&Path, &Path) {
        (&self.tmp, &self.final_path)
    }
}

/// Renames a closed quarantine file into place, if there is one.
pub fn publish(tmp: &Path, final_path: &Path) -> Result<Option<PathBuf>, IngestError> {
    if !tmp.exists() {
        return Ok(final_path.exists().then(|| final_path.to_owned()));
    }
    std::fs::rename(tmp, final_path).map_err(|e| IngestError::Io(format!("cannot rename {}: {e}", tmp.display())))?;
    Ok(Some(final_path.to_owned()))
}
