//! A local or mounted folder as a source.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use super::{RemoteFile, Source, SourceError, glob_match};
use crate::config::AfterCommit;

/// Files in one folder (not its subfolders).
#[derive(Debug, Clone)]
pub struct FolderSource {
    name: String,
    dir: PathBuf,
    pattern: String,
    min_age: Duration,
    after_commit: AfterCommit,
    move_to: String,
}

impl FolderSource {
    /// A source over `dir`.
    pub fn new(
        name: &str,
        dir: &Path,
        pattern: &str,
        min_age: Duration,
        after_commit: AfterCommit,
        move_to: &str,
    ) -> Self {
        Self {
            name: name.to_owned(),
            dir: dir.to_owned(),
            pattern: pattern.to_owned(),
            min_age,
            after_commit,
            move_to: move_to.to_owned(),
        }
    }

    fn err(&self, what: &'static str, path: &Path, e: impl std::fmt::Display) -> SourceError {
        SourceError::Io {
            source_name: self.name.clone(),
            what,
            path: path.display().to_string(),
            reason: e.to_string(),
        }
    }
}

#[async_trait::async_trait]
impl Source for FolderSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn list(&self) -> Result<Vec<RemoteFile>, SourceError> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| self.err("cannot list", &self.dir, e))?;
        let now = SystemTime::now();
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| self.err("cannot list", &self.dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !glob_match(&self.pattern, &name) {
                continue;
            }
            let meta = entry.metadata().map_err(|e| self.err("cannot stat", &entry.path(), e))?;
            if !meta.is_file() {
                continue;
            }
            let modified = meta.modified().ok();
            let age = modified.and_then(|m| now.duration_since(m).ok()).unwrap_or_default();
            if age < self.min_age {
                continue;
            }
            files.push(RemoteFile { name, size: meta.len(), modified: modified.map(DateTime::<Utc>::from) });
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(files)
    }

    async fn fetch(&self, file: &RemoteFile, dest: &Path) -> Result<(), SourceError> {
        let from = self.dir.join(&file.name);
        let tmp = dest.with_file_name(format!(".{}.part", file.name));
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(|e| self.err("cannot create", dir, e))?;
        }
        let result = std::fs::copy(&from, &tmp)
            .and_then(|_| std::fs::File::open(&tmp)?.sync_all())
            .and_then(|()| std::fs::rename(&tmp, dest));
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(self.err("cannot fetch", &from, e));
        }
        Ok(())
    }

    async fn after_commit(&self, file: &RemoteFile) -> Result<(), SourceError> {
        let path = self.dir.join(&file.name);
        match self.after_commit {
            AfterCommit::Keep => Ok(()),
            AfterCommit::Delete => match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(self.err("cannot delete", &path, e)),
                _ => Ok(()),
            },
            AfterCommit::Move => {
                let dir = self.dir.join(&self.move_to);
                std::fs::create_dir_all(&dir).map_err(|e| self.err("cannot create", &dir, e))?;
                match std::fs::rename(&path, dir.join(&file.name)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(self.err("cannot move", &path, e)),
                    _ => Ok(()),
                }
            }
        }
    }
}
