//! An SFTP server as a source: key-based login, a pinned host key, a primary and backup hosts.
//!
//! One SSH session per source is kept between calls and opened again once it has closed (the
//! server or the network dropped it, or it sat idle for [`IDLE_CLOSE`]). Opening one tries the
//! hosts of `hosts` in order, each `attempts` times with a pause that starts at `backoff_ms` and
//! doubles; a host whose login is refused is not tried again, and a host key that is not the
//! pinned one stops everything at once (it is not failed over: a wrong key is an alarm, not an
//! outage). An operation that fails because a kept session turned out to be dead is run once
//! more on a new session; everything is bounded.
//!
//! Host keys are pinned by `SHA256:` fingerprints or by a known_hosts file, read when the source
//! is built. Its lines may use `host`, `[host]:port`, several names separated by commas, `*`/`?`
//! wildcards, `!negated` names, hashed names (`|1|…`, as `ssh-keygen -H` writes them) and the
//! `@revoked` marker; `@cert-authority` lines are ignored (host certificates are not supported).

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use russh::client;
use russh::keys::ssh_encoding::base64::{Base64, Encoding};
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh_sftp::client::SftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

use super::{RemoteFile, Source, SourceError, glob_match};
use crate::config::{AfterCommit, SftpConfig};

/// A kept session idle this long is closed by the client; the next call opens a new one.
pub const IDLE_CLOSE: Duration = Duration::from_secs(60);

/// How long one SFTP request may wait for its answer before the session is taken as dead.
const REQUEST_TIMEOUT_S: u64 = 30;

/// Longest pause between two connection attempts, however many there are.
const MAX_PAUSE: Duration = Duration::from_secs(60);

/// Bytes read from the server per step of a transfer. The SFTP client keeps a bounded number of
/// reads in flight, so a transfer holds a few MiB at most, whatever the file's size.
const CHUNK: usize = 256 * 1024;

/// Files in one folder of an SFTP server (not its subfolders).
pub struct SftpSource {
    name: String,
    hosts: Vec<HostPort>,
    user: String,
    key: Arc<PrivateKey>,
    pins: Arc<HostKeyPins>,
    remote_dir: String,
    connect_timeout: Duration,
    attempts: u32,
    backoff: Duration,
    ssh_config: Arc<client::Config>,
    pattern: String,
    min_age: Duration,
    after_commit: AfterCommit,
    move_to: String,
    session: Mutex<Option<Arc<Session>>>,
}

impl fmt::Debug for SftpSource {
    // By hand, so that the private key can never end up in a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SftpSource")
            .field("name", &self.name)
            .field("hosts", &self.hosts)
            .field("user", &self.user)
            .field("remote_dir", &self.remote_dir)
            .field("pattern", &self.pattern)
            .field("min_age", &self.min_age)
            .field("after_commit", &self.after_commit)
            .field("move_to", &self.move_to)
            .finish_non_exhaustive()
    }
}

impl SftpSource {
    /// A source over `sftp.remote_dir` on `sftp.hosts`. Reads the private key and the
    /// known_hosts file now: a key that cannot be read, no pinned host key, or a host no pin
    /// covers is a [`SourceError::Config`].
    pub fn new(
        name: &str,
        sftp: &SftpConfig,
        pattern: &str,
        min_age: Duration,
        after_commit: AfterCommit,
        move_to: &str,
    ) -> Result<Self, SourceError> {
        let config_err = |reason: String| SourceError::Config { source_name: name.to_owned(), reason };
        if sftp.hosts.is_empty() {
            return Err(config_err("sftp.hosts is empty".into()));
        }
        let hosts = sftp
            .hosts
            .iter()
            .map(|h| HostPort::parse(h).ok_or_else(|| config_err(format!("sftp.hosts: {h:?} is not host:port"))))
            .collect::<Result<Vec<_>, _>>()?;
        if sftp.user.is_empty() {
            return Err(config_err("sftp.user is empty".into()));
        }
        let key = russh::keys::load_secret_key(&sftp.private_key_file, None).map_err(|e| {
            config_err(format!("sftp.private_key_file {}: cannot be read: {e}", sftp.private_key_file.display()))
        })?;

        let mut fingerprints = Vec::new();
        for fp in &sftp.host_key_fingerprints {
            let fp = fp.trim().trim_end_matches('=');
            if !fp.starts_with("SHA256:") || fp.len() <= "SHA256:".len() {
                return Err(config_err(format!(
                    "sftp.host_key_fingerprints: {fp:?} is not a SHA256:… fingerprint (ssh-keygen -lf prints them)"
                )));
            }
            fingerprints.push(fp.to_owned());
        }
        let mut known_hosts = Vec::new();
        if let Some(path) = &sftp.known_hosts_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| config_err(format!("sftp.known_hosts_file {}: cannot be read: {e}", path.display())))?;
            let (entries, skipped) = parse_known_hosts(&text);
            for (line, why) in skipped {
                tracing::warn!(source = name, file = %path.display(), line, "known_hosts line ignored: {why}");
            }
            known_hosts = entries;
        }
        let pins = HostKeyPins { fingerprints, known_hosts };
        if pins.fingerprints.is_empty() {
            if sftp.known_hosts_file.is_none() {
                return Err(config_err(
                    "no pinned host key: set sftp.known_hosts_file or sftp.host_key_fingerprints".into(),
                ));
            }
            if let Some(hp) = hosts.iter().find(|hp| !pins.known_hosts.iter().any(|e| !e.revoked && e.matches(hp))) {
                return Err(config_err(format!(
                    "sftp.known_hosts_file has no key for {} (write it with ssh-keyscan -p PORT HOST)",
                    hp.known_hosts_name()
                )));
            }
        }

        let move_to = move_to.trim_matches('/').to_owned();
        if after_commit == AfterCommit::Move && move_to.is_empty() {
            return Err(config_err("after_commit = \"move\" needs a move_to folder".into()));
        }
        // "/" must stay the root; "" and "./" mean the login folder.
        let remote_dir = match sftp.remote_dir.trim_end_matches('/') {
            "" if sftp.remote_dir.starts_with('/') => "/".to_owned(),
            "" => ".".to_owned(),
            dir => dir.to_owned(),
        };
        let ssh_config = client::Config { inactivity_timeout: Some(IDLE_CLOSE), ..client::Config::default() };
        Ok(Self {
            name: name.to_owned(),
            hosts,
            user: sftp.user.clone(),
            key: Arc::new(key),
            pins: Arc::new(pins),
            remote_dir,
            connect_timeout: Duration::from_secs(sftp.connect_timeout_s.max(1)),
            attempts: sftp.attempts.max(1),
            backoff: Duration::from_millis(sftp.backoff_ms),
            ssh_config: Arc::new(ssh_config),
            pattern: pattern.to_owned(),
            min_age,
            after_commit,
            move_to,
            session: Mutex::new(None),
        })
    }

    /// `name` inside the remote folder.
    fn remote_path(&self, name: &str) -> String {
        join(&self.remote_dir, name)
    }

    /// The kept session if it is still open, or a new one; and whether it is new.
    async fn session(&self) -> Result<(Arc<Session>, bool), SourceError> {
        let mut kept = self.session.lock().await;
        if let Some(session) = kept.as_ref() {
            if !session.handle.is_closed() {
                return Ok((Arc::clone(session), false));
            }
            tracing::debug!(source = %self.name, host = %session.host, "sftp session closed; opening another");
        }
        *kept = None;
        let session = Arc::new(self.connect().await?);
        *kept = Some(Arc::clone(&session));
        Ok((session, true))
    }

    /// After `err` on `session`: drops the session when the connection is what failed, and says
    /// whether the operation should run once more on a new one (only if the session was an old
    /// one that died while kept, and only once).
    async fn should_retry(&self, session: &Arc<Session>, fresh_or_retried: bool, err: &OpError) -> bool {
        if !err.transport && !session.handle.is_closed() {
            return false;
        }
        {
            let mut kept = self.session.lock().await;
            if kept.as_ref().is_some_and(|k| Arc::ptr_eq(k, session)) {
                *kept = None;
            }
        }
        let _ = session.handle.disconnect(russh::Disconnect::ByApplication, "", "en").await;
        if fresh_or_retried {
            return false;
        }
        tracing::info!(source = %self.name, host = %session.host, "sftp connection lost ({}); reconnecting", err.reason);
        true
    }

    /// Opens a session: every host in order, `attempts` times each with a doubling pause.
    async fn connect(&self) -> Result<Session, SourceError> {
        let mut failures = Vec::new();
        for host in &self.hosts {
            let mut last = String::new();
            for attempt in 0..self.attempts {
                if attempt > 0 {
                    tokio::time::sleep(pause(self.backoff, attempt)).await;
                }
                let started = Instant::now();
                match self.connect_once(host).await {
                    Ok(session) => {
                        tracing::info!(
                            source = %self.name, host = %host, attempt = attempt + 1,
                            ms = started.elapsed().as_millis() as u64, "sftp connected"
                        );
                        return Ok(session);
                    }
                    Err(Failure::HostKey(detail)) => {
                        tracing::error!(source = %self.name, host = %host, "sftp host key refused: {detail}");
                        return Err(SourceError::HostKeyMismatch {
                            source_name: self.name.clone(),
                            host: host.to_string(),
                            detail,
                        });
                    }
                    Err(Failure::Refused(reason)) => {
                        tracing::warn!(source = %self.name, host = %host, "sftp login refused: {reason}");
                        last = reason;
                        break;
                    }
                    Err(Failure::Transient(reason)) => {
                        tracing::warn!(
                            source = %self.name, host = %host, attempt = attempt + 1, of = self.attempts,
                            "sftp connection failed: {reason}"
                        );
                        last = reason;
                    }
                }
            }
            failures.push(format!("{host}: {last}"));
        }
        Err(SourceError::Unavailable { source_name: self.name.clone(), reason: failures.join("; ") })
    }

    /// One attempt on one host: TCP, key exchange, host key check, login, SFTP, within the
    /// connect timeout.
    async fn connect_once(&self, host: &HostPort) -> Result<Session, Failure> {
        let attempt = async {
            let handler = Client { pins: Arc::clone(&self.pins), host: host.clone() };
            let mut handle = client::connect(Arc::clone(&self.ssh_config), (host.host.as_str(), host.port), handler)
                .await
                .map_err(|e| match e {
                    ClientError::HostKey(detail) => Failure::HostKey(detail),
                    ClientError::Ssh(e) => Failure::Transient(e.to_string()),
                })?;
            let hash_alg = if self.key.algorithm().is_rsa() {
                // A server that does not say which RSA signatures it takes is asked for
                // rsa-sha2-256: OpenSSH has refused SHA-1 ones since 8.8.
                match handle.best_supported_rsa_hash().await {
                    Ok(Some(hash)) => hash,
                    _ => Some(HashAlg::Sha256),
                }
            } else {
                None
            };
            let key = PrivateKeyWithHashAlg::new(Arc::clone(&self.key), hash_alg);
            let auth = handle
                .authenticate_publickey(self.user.clone(), key)
                .await
                .map_err(|e| Failure::Transient(e.to_string()))?;
            if !auth.success() {
                return Err(Failure::Refused(format!("the server does not accept the key of user {}", self.user)));
            }
            let channel = handle.channel_open_session().await.map_err(|e| Failure::Transient(e.to_string()))?;
            channel.request_subsystem(true, "sftp").await.map_err(|e| Failure::Transient(e.to_string()))?;
            let sftp_config =
                russh_sftp::client::Config { request_timeout_secs: REQUEST_TIMEOUT_S, ..Default::default() };
            let sftp = SftpSession::new_with_config(channel.into_stream(), sftp_config)
                .await
                .map_err(|e| Failure::Transient(format!("sftp subsystem: {e}")))?;
            Ok(Session { host: host.clone(), handle, sftp })
        };
        match tokio::time::timeout(self.connect_timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Transient(format!("no answer within {} s", self.connect_timeout.as_secs()))),
        }
    }

    async fn list_on(&self, session: &Session) -> Result<Vec<RemoteFile>, OpError> {
        let entries = session
            .sftp
            .read_dir(self.remote_dir.as_str())
            .await
            .map_err(|e| OpError::sftp("cannot list", &self.remote_dir, e))?;
        let now = SystemTime::now();
        let mut files = Vec::new();
        let mut young = 0usize;
        for entry in entries {
            let name = entry.file_name();
            if name.starts_with('.') || !glob_match(&self.pattern, &name) {
                continue;
            }
            let meta = entry.metadata();
            if !meta.file_type().is_file() {
                continue;
            }
            let Some(size) = meta.size else {
                tracing::warn!(source = %self.name, host = %session.host, path = %self.remote_path(&name), "sftp server sent no size; skipped");
                continue;
            };
            // The server's clock set the mtime and ours measures the age: a server clock running
            // ahead only delays files, it never takes one early.
            let modified = meta.mtime.map(|s| UNIX_EPOCH + Duration::from_secs(u64::from(s)));
            let age = modified.and_then(|m| now.duration_since(m).ok()).unwrap_or_default();
            if age < self.min_age {
                young += 1;
                continue;
            }
            files.push(RemoteFile { name, size, modified: modified.map(DateTime::<Utc>::from) });
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        tracing::debug!(
            source = %self.name, host = %session.host, dir = %self.remote_dir, ready = files.len(), young,
            "sftp listed"
        );
        Ok(files)
    }

    async fn fetch_on(&self, session: &Session, file: &RemoteFile, dest: &Path, tmp: &Path) -> Result<u64, OpError> {
        let path = self.remote_path(&file.name);
        let local_err =
            |what: &'static str, p: &Path, e: std::io::Error| OpError::local(what, &p.display().to_string(), e);
        let mut remote = session.sftp.open(path.as_str()).await.map_err(|e| OpError::sftp("cannot open", &path, e))?;
        let mut local = tokio::fs::File::create(tmp).await.map_err(|e| local_err("cannot create", tmp, e))?;
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0u64;
        loop {
            let n = remote.read(&mut buf).await.map_err(|e| OpError::read(&path, e))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > file.size {
                break;
            }
            local.write_all(&buf[..n]).await.map_err(|e| local_err("cannot write", tmp, e))?;
        }
        if total != file.size {
            // A cut transfer can look like an early end of file: only the listed size tells.
            let reason = if total > file.size {
                format!("more than the {} bytes listed: the file changed since it was listed", file.size)
            } else {
                format!("end of file after {total} of the {} bytes listed", file.size)
            };
            // Fewer bytes usually means the connection went (its end may reach the SFTP reader
            // as an end of file before the session notices): treat it so, a new session is cheap.
            let transport = total < file.size || session.handle.is_closed();
            return Err(OpError { what: "cannot fetch", path, reason, transport });
        }
        if let Err(e) = remote.close().await {
            tracing::debug!(source = %self.name, host = %session.host, path = %path, "closing remote file: {e}");
        }
        local.sync_all().await.map_err(|e| local_err("cannot sync", tmp, e))?;
        drop(local);
        tokio::fs::rename(tmp, dest).await.map_err(|e| local_err("cannot rename", tmp, e))?;
        Ok(total)
    }

    async fn after_commit_on(&self, session: &Session, file: &RemoteFile) -> Result<(), OpError> {
        let sftp = &session.sftp;
        let path = self.remote_path(&file.name);
        match self.after_commit {
            AfterCommit::Keep => Ok(()),
            AfterCommit::Delete => match sftp.remove_file(path.as_str()).await {
                Ok(()) => Ok(()),
                Err(e) if is_no_such_file(&e) => Ok(()),
                Err(e) => Err(OpError::sftp("cannot delete", &path, e)),
            },
            AfterCommit::Move => {
                let dir = self.remote_path(&self.move_to);
                let target = join(&dir, &file.name);
                match sftp.rename(path.as_str(), target.as_str()).await {
                    Ok(()) => return Ok(()),
                    Err(e) if is_transport(&e) => return Err(OpError::sftp("cannot move", &path, e)),
                    Err(_) => {}
                }
                // SFTP v3 rename fails when the folder is missing or the target exists; and
                // when the file is gone, it was moved (or removed) by an earlier call.
                if !exists(sftp, &path).await.map_err(|e| OpError::sftp("cannot stat", &path, e))? {
                    return Ok(());
                }
                if exists(sftp, &target).await.map_err(|e| OpError::sftp("cannot stat", &target, e))? {
                    // Replaced, as the folder source's rename does.
                    sftp.remove_file(target.as_str()).await.map_err(|e| OpError::sftp("cannot replace", &target, e))?;
                } else {
                    self.create_move_to(sftp).await?;
                }
                sftp.rename(path.as_str(), target.as_str()).await.map_err(|e| OpError::sftp("cannot move", &path, e))
            }
        }
    }

    /// Creates `move_to` and its missing parents in the remote folder.
    async fn create_move_to(&self, sftp: &SftpSession) -> Result<(), OpError> {
        let mut current = self.remote_dir.clone();
        for part in self.move_to.split('/').filter(|p| !p.is_empty()) {
            current = join(&current, part);
            if exists(sftp, &current).await.map_err(|e| OpError::sftp("cannot stat", &current, e))? {
                continue;
            }
            if let Err(e) = sftp.create_dir(current.as_str()).await {
                // Another worker may have created it meanwhile.
                if !exists(sftp, &current).await.unwrap_or(false) {
                    return Err(OpError::sftp("cannot create", &current, e));
                }
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Source for SftpSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn list(&self) -> Result<Vec<RemoteFile>, SourceError> {
        let mut retried = false;
        loop {
            let (session, fresh) = self.session().await?;
            match self.list_on(&session).await {
                Ok(files) => return Ok(files),
                Err(e) if self.should_retry(&session, fresh || retried, &e).await => retried = true,
                Err(e) => return Err(e.into_source_error(&self.name)),
            }
        }
    }

    async fn fetch(&self, file: &RemoteFile, dest: &Path) -> Result<(), SourceError> {
        let tmp = dest.with_file_name(format!(".{}.part", file.name));
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                OpError::local("cannot create", &dir.display().to_string(), e).into_source_error(&self.name)
            })?;
        }
        let mut retried = false;
        loop {
            let (session, fresh) = self.session().await?;
            let started = Instant::now();
            let result = self.fetch_on(&session, file, dest, &tmp).await;
            if result.is_err() {
                // Nothing half-written is left behind, whatever failed.
                let _ = tokio::fs::remove_file(&tmp).await;
            }
            match result {
                Ok(bytes) => {
                    tracing::info!(
                        source = %self.name, host = %session.host, path = %self.remote_path(&file.name), bytes,
                        ms = started.elapsed().as_millis() as u64, "sftp fetched"
                    );
                    return Ok(());
                }
                Err(e) if self.should_retry(&session, fresh || retried, &e).await => retried = true,
                Err(e) => return Err(e.into_source_error(&self.name)),
            }
        }
    }

    async fn after_commit(&self, file: &RemoteFile) -> Result<(), SourceError> {
        if self.after_commit == AfterCommit::Keep {
            return Ok(());
        }
        let mut retried = false;
        loop {
            let (session, fresh) = self.session().await?;
            match self.after_commit_on(&session, file).await {
                Ok(()) => {
                    tracing::info!(
                        source = %self.name, host = %session.host, path = %self.remote_path(&file.name),
                        action = ?self.after_commit, "sftp file committed"
                    );
                    return Ok(());
                }
                Err(e) if self.should_retry(&session, fresh || retried, &e).await => retried = true,
                Err(e) => return Err(e.into_source_error(&self.name)),
            }
        }
    }
}

/// An open SSH connection with its SFTP channel.
struct Session {
    host: HostPort,
    handle: client::Handle<Client>,
    sftp: SftpSession,
}

/// Why one connection attempt failed.
enum Failure {
    /// The server's key is not the pinned one: stop.
    HostKey(String),
    /// The server refused the login: trying this host again will not help.
    Refused(String),
    /// Network, timeout or protocol trouble: worth another attempt.
    Transient(String),
}

/// The SSH client's callbacks: only the host key check.
struct Client {
    pins: Arc<HostKeyPins>,
    host: HostPort,
}

#[derive(Debug)]
enum ClientError {
    Ssh(russh::Error),
    HostKey(String),
}

impl From<russh::Error> for ClientError {
    fn from(e: russh::Error) -> Self {
        Self::Ssh(e)
    }
}

impl client::Handler for Client {
    type Error = ClientError;

    async fn check_server_key(&mut self, server_key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        match server_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                self.pins.check(&self.host, key).map_err(ClientError::HostKey)?;
                Ok(true)
            }
            PublicKeyOrCertificate::Certificate(_) => {
                Err(ClientError::HostKey("the server offered a host certificate; only plain keys can be pinned".into()))
            }
        }
    }
}

/// `host:port` as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostPort {
    host: String,
    port: u16,
}

impl HostPort {
    /// `host`, `host:port`, `[v6]:port`, or a bare IPv6 address; port 22 when none is given.
    fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (host, after) = rest.split_once(']')?;
            let port = if after.is_empty() { 22 } else { after.strip_prefix(':')?.parse().ok()? };
            (host, port)
        } else {
            match s.rsplit_once(':') {
                Some((host, port)) if !host.contains(':') => (host, port.parse().ok()?),
                _ => (s, 22),
            }
        };
        (!host.is_empty() && !host.contains(char::is_whitespace)).then(|| Self { host: host.to_owned(), port })
    }

    /// The name OpenSSH records the host under: `host` on port 22, `[host]:port` otherwise.
    fn known_hosts_name(&self) -> String {
        if self.port == 22 { self.host.to_lowercase() } else { format!("[{}]:{}", self.host.to_lowercase(), self.port) }
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The host keys a source accepts.
#[derive(Debug)]
struct HostKeyPins {
    /// `SHA256:…` fingerprints, accepted from any of the hosts.
    fingerprints: Vec<String>,
    /// Entries of the known_hosts file.
    known_hosts: Vec<KnownHost>,
}

impl HostKeyPins {
    /// Accepts `key` from `host`, or says what was offered and what is pinned (fingerprints only).
    fn check(&self, host: &HostPort, key: &PublicKey) -> Result<(), String> {
        let offered = format!("{} {}", key.algorithm(), key.fingerprint(HashAlg::Sha256));
        let for_host: Vec<&KnownHost> = self.known_hosts.iter().filter(|e| e.matches(host)).collect();
        if for_host.iter().any(|e| e.revoked && e.key.key_data() == key.key_data()) {
            return Err(format!("the server offered {offered}, which known_hosts marks @revoked"));
        }
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        if self.fingerprints.contains(&fingerprint)
            || for_host.iter().any(|e| !e.revoked && e.key.key_data() == key.key_data())
        {
            return Ok(());
        }
        let pinned: Vec<String> = self
            .fingerprints
            .iter()
            .cloned()
            .chain(for_host.iter().filter(|e| !e.revoked).map(|e| {
                format!("{} {} (known_hosts line {})", e.key.algorithm(), e.key.fingerprint(HashAlg::Sha256), e.line)
            }))
            .collect();
        if pinned.is_empty() {
            Err(format!("the server offered {offered}; no key is pinned for {}", host.known_hosts_name()))
        } else {
            Err(format!("the server offered {offered}; pinned: {}", pinned.join(", ")))
        }
    }
}

/// One usable line of a known_hosts file.
#[derive(Debug)]
struct KnownHost {
    line: usize,
    revoked: bool,
    patterns: Vec<HostPattern>,
    key: PublicKey,
}

#[derive(Debug)]
enum HostPattern {
    /// A name or glob, possibly `!negated`.
    Plain { pattern: String, negated: bool },
    /// `|1|salt|hash`: HMAC-SHA1 of the name under the salt.
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
}

impl KnownHost {
    /// Whether the line names `host`: one of its names matches and no negated one does.
    fn matches(&self, host: &HostPort) -> bool {
        let name = host.known_hosts_name();
        let mut hit = false;
        for p in &self.patterns {
            match p {
                HostPattern::Plain { pattern, negated } if glob_match(pattern, &name) => {
                    if *negated {
                        return false;
                    }
                    hit = true;
                }
                HostPattern::Hashed { salt, hash } => {
                    let Ok(mac) = hmac::Hmac::<sha1::Sha1>::new_from_slice(salt) else { continue };
                    hit |= mac.chain_update(name.as_bytes()).verify_slice(hash).is_ok();
                }
                HostPattern::Plain { .. } => {}
            }
        }
        hit
    }
}

/// The usable entries of a known_hosts file, and the lines passed over with the reason.
fn parse_known_hosts(text: &str) -> (Vec<KnownHost>, Vec<(usize, &'static str)>) {
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let mut hosts = fields.next().unwrap_or_default();
        let mut revoked = false;
        if hosts.starts_with('@') {
            match hosts {
                "@revoked" => revoked = true,
                "@cert-authority" => {
                    skipped.push((line_no, "@cert-authority is not supported"));
                    continue;
                }
                _ => {
                    skipped.push((line_no, "unknown marker"));
                    continue;
                }
            }
            hosts = fields.next().unwrap_or_default();
        }
        let (Some(key_type), Some(key_base64)) = (fields.next(), fields.next()) else {
            skipped.push((line_no, "expected: hosts key-type base64-key"));
            continue;
        };
        let Ok(key) = PublicKey::from_openssh(&format!("{key_type} {key_base64}")) else {
            skipped.push((line_no, "the key cannot be read"));
            continue;
        };
        let mut patterns = Vec::new();
        for p in hosts.split(',').filter(|p| !p.is_empty()) {
            if let Some(hashed) = p.strip_prefix("|1|") {
                let decoded = hashed.split_once('|').and_then(|(salt, hash)| {
                    Some(HostPattern::Hashed {
                        salt: Base64::decode_vec(salt).ok()?,
                        hash: Base64::decode_vec(hash).ok()?,
                    })
                });
                match decoded {
                    Some(h) => patterns.push(h),
                    None => skipped.push((line_no, "a hashed host name cannot be read")),
                }
            } else if let Some(negated) = p.strip_prefix('!') {
                patterns.push(HostPattern::Plain { pattern: negated.to_lowercase(), negated: true });
            } else {
                patterns.push(HostPattern::Plain { pattern: p.to_lowercase(), negated: false });
            }
        }
        entries.push(KnownHost { line: line_no, revoked, patterns, key });
    }
    (entries, skipped)
}

/// An operation that failed on a session.
#[derive(Debug)]
struct OpError {
    what: &'static str,
    path: String,
    reason: String,
    /// The connection failed, not the operation: the session is dropped.
    transport: bool,
}

impl OpError {
    fn sftp(what: &'static str, path: &str, e: SftpError) -> Self {
        let transport = is_transport(&e);
        let reason = if transport { format!("connection lost ({e})") } else { e.to_string() };
        Self { what, path: path.to_owned(), reason, transport }
    }

    fn read(path: &str, e: std::io::Error) -> Self {
        let transport = match e.get_ref().and_then(|inner| inner.downcast_ref::<SftpError>()) {
            Some(inner) => is_transport(inner),
            None => true,
        };
        let reason = if transport { format!("connection lost ({e})") } else { e.to_string() };
        Self { what: "cannot fetch", path: path.to_owned(), reason, transport }
    }

    fn local(what: &'static str, path: &str, e: std::io::Error) -> Self {
        Self { what, path: path.to_owned(), reason: e.to_string(), transport: false }
    }

    fn into_source_error(self, source_name: &str) -> SourceError {
        SourceError::Io { source_name: source_name.to_owned(), what: self.what, path: self.path, reason: self.reason }
    }
}

/// Whether an SFTP error means the connection is gone rather than the request refused.
fn is_transport(e: &SftpError) -> bool {
    match e {
        SftpError::Status(s) => matches!(s.status_code, StatusCode::NoConnection | StatusCode::ConnectionLost),
        SftpError::Limited(_) => false,
        SftpError::IO(_) | SftpError::Timeout | SftpError::UnexpectedPacket | SftpError::UnexpectedBehavior(_) => true,
    }
}

fn is_no_such_file(e: &SftpError) -> bool {
    matches!(e, SftpError::Status(s) if s.status_code == StatusCode::NoSuchFile)
}

async fn exists(sftp: &SftpSession, path: &str) -> Result<bool, SftpError> {
    match sftp.symlink_metadata(path).await {
        Ok(_) => Ok(true),
        Err(e) if is_no_such_file(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// `name` inside remote folder `dir` (SFTP paths always use `/`).
fn join(dir: &str, name: &str) -> String {
    if name.starts_with('/') || dir.is_empty() {
        name.to_owned()
    } else if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// The pause before attempt `attempt` (1-based after the first): `backoff` doubled each time.
fn pause(backoff: Duration, attempt: u32) -> Duration {
    backoff.saturating_mul(1u32 << (attempt - 1).min(16)).min(MAX_PAUSE)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIM+1efQ/okfrhCuvpyiYt/E5dGvaIeS0ADEx72BNcll";
    const OTHER: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAHA8IWyV1L6oWoRK+ApZBCA1hOsx6UIeuJTh/bvoCwC";

    fn hp(s: &str) -> HostPort {
        HostPort::parse(s).unwrap()
    }

    fn key(s: &str) -> PublicKey {
        PublicKey::from_openssh(s).unwrap()
    }

    #[test]
    fn hosts_parse_with_and_without_ports() {
        assert_eq!(hp("sftp.example.com:2222"), HostPort { host: "sftp.example.com".into(), port: 2222 });
        assert_eq!(hp("sftp.example.com"), HostPort { host: "sftp.example.com".into(), port: 22 });
        assert_eq!(hp("[::1]:2200"), HostPort { host: "::1".into(), port: 2200 });
        assert_eq!(hp("::1"), HostPort { host: "::1".into(), port: 22 });
        assert_eq!(HostPort::parse("host:notaport"), None);
        assert_eq!(HostPort::parse(""), None);
        assert_eq!(hp("Host:22").known_hosts_name(), "host");
        assert_eq!(hp("host:2222").known_hosts_name(), "[host]:2222");
    }

    #[test]
    fn known_hosts_lines_match_their_hosts() {
        let text = format!(
            "# comment\n\n{ED25519}\nprimary,backup {ED25519} comment here\n[primary]:2222 {OTHER}\n\
             *.example.com,!bad.example.com\t{ED25519}\n@cert-authority *.example.com {ED25519}\nbroken line\n"
        );
        // Line 3 lacks its host field, line 7 is a CA, line 8 has no key.
        let (entries, skipped) = parse_known_hosts(&text);
        assert_eq!(entries.len(), 3);
        assert_eq!(skipped.iter().map(|s| s.0).collect::<Vec<_>>(), vec![3, 7, 8]);
        let pins = HostKeyPins { fingerprints: vec![], known_hosts: entries };
        assert!(pins.check(&hp("primary:22"), &key(ED25519)).is_ok());
        assert!(pins.check(&hp("backup"), &key(ED25519)).is_ok());
        assert!(pins.check(&hp("primary:2222"), &key(OTHER)).is_ok());
        assert!(pins.check(&hp("primary:2222"), &key(ED25519)).unwrap_err().contains("pinned: ssh-ed25519 SHA256:"));
        assert!(pins.check(&hp("a.example.com"), &key(ED25519)).is_ok());
        assert!(pins.check(&hp("bad.example.com"), &key(ED25519)).unwrap_err().contains("no key is pinned"));
        assert!(pins.check(&hp("elsewhere"), &key(ED25519)).is_err());
    }

    #[test]
    fn hashed_known_hosts_names_match() {
        // `ssh-keygen -H` writes |1|base64(salt)|base64(HMAC-SHA1(salt, name)).
        let salt = [7u8; 20];
        let mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(&salt).unwrap().chain_update(b"[10.0.0.5]:2222");
        let hash = mac.finalize().into_bytes();
        let line = format!("|1|{}|{} {ED25519}\n", Base64::encode_string(&salt), Base64::encode_string(&hash));
        let (entries, skipped) = parse_known_hosts(&line);
        assert!(skipped.is_empty());
        let pins = HostKeyPins { fingerprints: vec![], known_hosts: entries };
        assert!(pins.check(&hp("10.0.0.5:2222"), &key(ED25519)).is_ok());
        assert!(pins.check(&hp("10.0.0.5:22"), &key(ED25519)).is_err());
    }

    #[test]
    fn a_revoked_key_is_refused_even_when_a_fingerprint_pins_it() {
        let k = key(ED25519);
        let (entries, _) = parse_known_hosts(&format!("@revoked * {ED25519}\n"));
        let pins = HostKeyPins { fingerprints: vec![k.fingerprint(HashAlg::Sha256).to_string()], known_hosts: entries };
        assert!(pins.check(&hp("any:22"), &k).unwrap_err().contains("@revoked"));
        assert!(pins.check(&hp("any:22"), &key(OTHER)).is_err());
    }

    #[test]
    fn fingerprints_are_accepted_from_any_host() {
        let k = key(ED25519);
        let pins = HostKeyPins { fingerprints: vec![k.fingerprint(HashAlg::Sha256).to_string()], known_hosts: vec![] };
        assert!(pins.check(&hp("one:22"), &k).is_ok());
        assert!(pins.check(&hp("two:2222"), &k).is_ok());
        let refused = pins.check(&hp("one:22"), &key(OTHER)).unwrap_err();
        assert!(refused.starts_with("the server offered ssh-ed25519 SHA256:"), "{refused}");
    }

    #[test]
    fn pauses_double_and_stay_bounded() {
        let b = Duration::from_millis(500);
        assert_eq!(pause(b, 1), Duration::from_millis(500));
        assert_eq!(pause(b, 2), Duration::from_millis(1000));
        assert_eq!(pause(b, 3), Duration::from_millis(2000));
        assert_eq!(pause(b, 40), MAX_PAUSE);
    }

    #[test]
    fn remote_paths_join_with_slashes() {
        assert_eq!(join(".", "a.cdr"), "./a.cdr");
        assert_eq!(join("/in/", "a.cdr"), "/in/a.cdr");
        assert_eq!(join("", "a.cdr"), "a.cdr");
        assert_eq!(join("/in", "/abs"), "/abs");
    }
}
