//! Files holding personal data, at rest or on their way out, are encrypted with age
//! (X25519 recipients). Encryption streams: memory stays flat whatever the file size.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::secrecy::ExposeSecret;
/// An age X25519 recipient (`age1…`).
pub use age::x25519::Recipient;

use crate::PrivacyError;

fn io(what: &str, path: &Path, e: impl std::fmt::Display) -> PrivacyError {
    PrivacyError::Io(format!("{what} {}: {e}", path.display()))
}

/// Parses age recipients (`age1…`); the error names the bad one by position.
pub fn parse_recipients(recipients: &[String]) -> Result<Vec<age::x25519::Recipient>, PrivacyError> {
    recipients
        .iter()
        .enumerate()
        .map(|(i, r)| {
            age::x25519::Recipient::from_str(r.trim())
                .map_err(|e| PrivacyError::Config(format!("privacy.file_recipients[{i}] is not an age recipient: {e}")))
        })
        .collect()
}

/// Creates an age identity file (mode 0600) if `path` does not exist; returns its recipient.
pub fn ensure_identity(path: &Path) -> Result<String, PrivacyError> {
    if path.exists() {
        return identity_recipient(path);
    }
    let identity = age::x25519::Identity::generate();
    let text = format!(
        "# Switchboard file-encryption identity: decrypts quarantine and exports.\n# public key: {}\n{}\n",
        identity.to_public(),
        identity.to_string().expose_secret()
    );
    write_private(path, text.as_bytes())?;
    Ok(identity.to_public().to_string())
}

/// The recipient (public key) of an identity file.
pub fn identity_recipient(path: &Path) -> Result<String, PrivacyError> {
    let text = std::fs::read_to_string(path).map_err(|e| io("cannot read identity", path, e))?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .ok_or_else(|| PrivacyError::Config(format!("{} holds no age identity", path.display())))?;
    let identity = age::x25519::Identity::from_str(line)
        .map_err(|e| PrivacyError::Config(format!("{} holds an invalid age identity: {e}", path.display())))?;
    Ok(identity.to_public().to_string())
}

/// Writes a secret file readable by its owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), PrivacyError> {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io("cannot create", dir, e))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path).map_err(|e| io("cannot create", path, e))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(|e| io("cannot write", path, e))
}

/// A writer that encrypts to recipients as it goes; call [`EncryptingWriter::finish`].
pub struct EncryptingWriter<W: Write>(age::stream::StreamWriter<W>);

impl<W: Write> EncryptingWriter<W> {
    /// Starts an age stream to `recipients` over `inner`.
    pub fn new(inner: W, recipients: &[age::x25519::Recipient]) -> Result<Self, PrivacyError> {
        let encryptor = age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| PrivacyError::Config(format!("cannot encrypt to these recipients: {e}")))?;
        let stream =
            encryptor.wrap_output(inner).map_err(|e| PrivacyError::Io(format!("cannot start encryption: {e}")))?;
        Ok(Self(stream))
    }

    /// Writes the last chunk and the authentication tag; returns the inner writer.
    pub fn finish(self) -> std::io::Result<W> {
        self.0.finish()
    }
}

impl<W: Write> Write for EncryptingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Encrypts `input` to `recipients` into `output` (temp file + rename: never half written).
pub fn encrypt_file(input: &Path, output: &Path, recipients: &[age::x25519::Recipient]) -> Result<u64, PrivacyError> {
    let mut reader = BufReader::new(File::open(input).map_err(|e| io("cannot open", input, e))?);
    atomic_output(output, |file| {
        let mut w = EncryptingWriter::new(BufWriter::new(file), recipients)?;
        let n = std::io::copy(&mut reader, &mut w).map_err(|e| io("cannot encrypt", input, e))?;
        let buf = w.finish().map_err(|e| io("cannot finish", output, e))?;
        buf.into_inner()
            .map_err(|e| io("cannot write", output, e.error()))?
            .sync_all()
            .map_err(|e| io("cannot sync", output, e))?;
        Ok(n)
    })
}

/// Decrypts an age file with the identities in `identity_file` into `output`.
pub fn decrypt_file(input: &Path, output: &Path, identity_file: &Path) -> Result<u64, PrivacyError> {
    let mut reader = open_decrypting(input, identity_file)?;
    atomic_output(output, |file| {
        let mut w = BufWriter::new(file);
        let n = std::io::copy(&mut reader, &mut w).map_err(|e| io("cannot decrypt", input, e))?;
        w.into_inner()
            .map_err(|e| io("cannot write", output, e.error()))?
            .sync_all()
            .map_err(|e| io("cannot sync", output, e))?;
        Ok(n)
    })
}

/// A reader of the cleartext of an age file.
pub fn open_decrypting(input: &Path, identity_file: &Path) -> Result<Box<dyn Read>, PrivacyError> {
    let identities = age::IdentityFile::from_file(identity_file.display().to_string())
        .map_err(|e| io("cannot read identity", identity_file, e))?
        .into_identities()
        .map_err(|e| PrivacyError::Config(format!("{}: {e}", identity_file.display())))?;
    let file = BufReader::new(File::open(input).map_err(|e| io("cannot open", input, e))?);
    let decryptor = age::Decryptor::new_buffered(file).map_err(|e| io("not an age file:", input, e))?;
    let reader = decryptor
        .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .map_err(|e| io("cannot decrypt", input, e))?;
    Ok(Box::new(reader))
}

fn atomic_output<T>(output: &Path, write: impl FnOnce(File) -> Result<T, PrivacyError>) -> Result<T, PrivacyError> {
    let dir = output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io("cannot create", dir, e))?;
    let tmp: PathBuf = dir.join(format!(
        ".{}.{}.tmp",
        output.file_name().and_then(|n| n.to_str()).unwrap_or("out"),
        std::process::id()
    ));
    let file = File::create(&tmp).map_err(|e| io("cannot create", &tmp, e))?;
    match write(file)
        .and_then(|v| std::fs::rename(&tmp, output).map(|()| v).map_err(|e| io("cannot rename to", output, e)))
    {
        Ok(v) => Ok(v),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}
