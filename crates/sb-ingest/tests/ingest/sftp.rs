//! The SFTP source against a real OpenSSH server: each test starts its own `sshd` on a free
//! loopback port, with a host key and a user key generated for it. Skipped, with a note, only
//! when `/usr/sbin/sshd` is absent (`scripts/test.sh` installs it).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use sb_ingest::source::sftp::SftpSource;
use sb_ingest::source::{RemoteFile, Source, SourceError};
use sb_ingest::{AfterCommit, SftpConfig};

const SSHD: &str = "/usr/sbin/sshd";
const AN_HOUR_AGO: Duration = Duration::from_secs(3600);
const MINUTE: Duration = Duration::from_secs(60);

/// An OpenSSH server on a loopback port, with its own keys and folders; killed on drop.
struct Sshd {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Sshd {
    /// A running server, or `None` (with a note) when OpenSSH's server is not installed.
    fn start() -> Option<Self> {
        if !Path::new(SSHD).exists() {
            eprintln!("note: {SSHD} is absent; SFTP tests skipped (scripts/test.sh installs openssh-server)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("user_key"));
        std::fs::copy(d.join("user_key.pub"), d.join("authorized_keys")).unwrap();
        std::fs::create_dir(d.join("remote")).unwrap();
        // As root, sshd wants its privilege separation folder, which the package makes at boot.
        let _ = std::fs::create_dir_all("/run/sshd");
        // The port was free when chosen; should another process take it before sshd binds it,
        // sshd exits at once, and a new port is tried.
        let mut sshd = Self { dir, port: 0, child: None };
        for _ in 0..5 {
            sshd.port = free_port();
            sshd.write_config();
            let _ = std::fs::remove_file(sshd.path("sshd.log"));
            match sshd.try_run() {
                Ok(()) => return Some(sshd),
                Err(log) if log.contains("Address already in use") => continue,
                Err(log) => panic!("sshd exited: {log}"),
            }
        }
        panic!("sshd found no free port in 5 tries: {}", sshd.log());
    }

    fn write_config(&self) {
        std::fs::write(
            self.path("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n\
                 PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 StrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\nPidFile {d}/sshd.pid\n\
                 Subsystem sftp internal-sftp\n",
                port = self.port,
                d = self.dir.path().display()
            ),
        )
        .unwrap();
    }

    /// Starts the server again on its port and waits until the port takes connections.
    fn run(&mut self) {
        if let Err(log) = self.try_run() {
            panic!("sshd exited: {log}");
        }
    }

    /// Starts the server and waits until its port takes connections; its log if it exits first.
    fn try_run(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.path("sshd.log")).unwrap();
        let mut child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(self.path("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Err(format!("({status}) {}", self.log()));
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "sshd not listening after 10 s: {}", self.log());
            std::thread::sleep(Duration::from_millis(10));
        }
        self.child = Some(child);
        Ok(())
    }

    /// Stops the listening server (connections it already handed off are not its own).
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn remote(&self) -> PathBuf {
        self.path("remote")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("sshd.log")).unwrap_or_default()
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The host key's `SHA256:` fingerprint, as `ssh-keygen -lf` prints it.
    fn host_fingerprint(&self) -> String {
        fingerprint(&self.path("host_key.pub"))
    }

    /// Settings for this server, pinned by fingerprint, trying `hosts` in order.
    fn config(&self, hosts: &[String]) -> SftpConfig {
        SftpConfig {
            hosts: hosts.to_vec(),
            user: current_user(),
            private_key_file: self.path("user_key"),
            known_hosts_file: None,
            host_key_fingerprints: vec![self.host_fingerprint()],
            remote_dir: self.remote().display().to_string(),
            connect_timeout_s: 5,
            attempts: 2,
            backoff_ms: 20,
        }
    }

    /// A source over this server's remote folder.
    fn source(&self, min_age: Duration, after_commit: AfterCommit) -> SftpSource {
        SftpSource::new("TEST", &self.config(&[self.host()]), "*.cdr", min_age, after_commit, "processed").unwrap()
    }

    /// Writes a remote file last modified `age` ago.
    fn put(&self, name: &str, content: &[u8], age: Duration) {
        let path = self.remote().join(name);
        std::fs::write(&path, content).unwrap();
        set_age(&path, age);
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn keygen(path: &Path) {
    let out =
        Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", "", "-f"]).arg(path).output().unwrap();
    assert!(out.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&out.stderr));
}

fn fingerprint(pub_key: &Path) -> String {
    let out = Command::new("ssh-keygen").arg("-lf").arg(pub_key).output().unwrap();
    assert!(out.status.success(), "ssh-keygen -lf: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().split_whitespace().nth(1).unwrap().to_owned()
}

fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A port nothing listens on (it was free a moment ago).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn set_age(path: &Path, age: Duration) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

/// Deterministic bytes that do not repeat in any useful way.
fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn names(files: &[RemoteFile]) -> Vec<&str> {
    files.iter().map(|f| f.name.as_str()).collect()
}

fn local_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

fn file(files: &[RemoteFile], name: &str) -> RemoteFile {
    files.iter().find(|f| f.name == name).cloned().unwrap_or_else(|| panic!("{name} not listed"))
}

#[tokio::test]
async fn files_are_listed_fetched_and_moved_byte_for_byte() {
    let Some(sshd) = Sshd::start() else { return };
    let small = b"MED01;393331234567;20261122130000;60\n".to_vec();
    let large = content(6 * 1024 * 1024 + 123, 1);
    sshd.put("a.cdr", &small, AN_HOUR_AGO);
    sshd.put("b.cdr", &large, AN_HOUR_AGO);
    // Taken now, before the listing's login, which may take seconds on a loaded machine.
    let expected = chrono::DateTime::<chrono::Utc>::from(SystemTime::now() - AN_HOUR_AGO);
    sshd.put("c.txt", b"not a cdr", AN_HOUR_AGO);
    sshd.put(".hidden.cdr", b"hidden", AN_HOUR_AGO);
    std::fs::create_dir(sshd.remote().join("folder.cdr")).unwrap();
    let source = sshd.source(MINUTE, AfterCommit::Move);

    let files = source.list().await.unwrap();
    assert_eq!(names(&files), ["a.cdr", "b.cdr"]);
    assert_eq!(files[0].size, small.len() as u64);
    assert_eq!(files[1].size, large.len() as u64);
    let modified = files[1].modified.expect("the server sends mtimes");
    assert!((modified - expected).num_seconds().abs() < 5, "mtime {modified} vs {expected}");

    let local = tempfile::tempdir().unwrap();
    for f in &files {
        source.fetch(f, &local.path().join(&f.name)).await.unwrap();
    }
    assert_eq!(local_names(local.path()), ["a.cdr", "b.cdr"], "no temp file left beside them");
    assert_eq!(std::fs::read(local.path().join("a.cdr")).unwrap(), small);
    assert!(std::fs::read(local.path().join("b.cdr")).unwrap() == large, "b.cdr differs");

    for f in &files {
        source.after_commit(f).await.unwrap();
        source.after_commit(f).await.unwrap();
    }
    assert!(!sshd.remote().join("a.cdr").exists());
    assert_eq!(std::fs::read(sshd.remote().join("processed/a.cdr")).unwrap(), small);
    assert!(std::fs::read(sshd.remote().join("processed/b.cdr")).unwrap() == large);
    assert!(source.list().await.unwrap().is_empty());

    // A file of the same name arriving later replaces the moved one, as with the folder source.
    sshd.put("a.cdr", b"second delivery\n", AN_HOUR_AGO);
    let again = source.list().await.unwrap();
    source.after_commit(&file(&again, "a.cdr")).await.unwrap();
    assert_eq!(std::fs::read(sshd.remote().join("processed/a.cdr")).unwrap(), b"second delivery\n");
}

#[tokio::test]
async fn files_are_deleted_or_kept_after_commit_and_a_repeat_is_harmless() {
    let Some(sshd) = Sshd::start() else { return };
    sshd.put("gone.cdr", b"delete me", AN_HOUR_AGO);
    let delete = sshd.source(MINUTE, AfterCommit::Delete);
    let f = file(&delete.list().await.unwrap(), "gone.cdr");
    let local = tempfile::tempdir().unwrap();
    delete.fetch(&f, &local.path().join("gone.cdr")).await.unwrap();
    delete.after_commit(&f).await.unwrap();
    delete.after_commit(&f).await.unwrap();
    assert!(!sshd.remote().join("gone.cdr").exists());
    assert_eq!(std::fs::read(local.path().join("gone.cdr")).unwrap(), b"delete me");

    sshd.put("stays.cdr", b"keep me", AN_HOUR_AGO);
    let keep = sshd.source(MINUTE, AfterCommit::Keep);
    let f = file(&keep.list().await.unwrap(), "stays.cdr");
    keep.after_commit(&f).await.unwrap();
    assert!(sshd.remote().join("stays.cdr").exists());
}

#[tokio::test]
async fn a_file_younger_than_the_minimum_age_is_skipped() {
    let Some(sshd) = Sshd::start() else { return };
    sshd.put("old.cdr", b"complete", AN_HOUR_AGO);
    sshd.put("new.cdr", b"still being writ", Duration::ZERO);
    let files = sshd.source(MINUTE, AfterCommit::Keep).list().await.unwrap();
    assert_eq!(names(&files), ["old.cdr"]);

    set_age(&sshd.remote().join("new.cdr"), 2 * MINUTE);
    let files = sshd.source(MINUTE, AfterCommit::Keep).list().await.unwrap();
    assert_eq!(names(&files), ["new.cdr", "old.cdr"]);
}

#[tokio::test]
async fn a_server_with_another_host_key_is_refused_and_nothing_is_fetched() {
    let Some(sshd) = Sshd::start() else { return };
    sshd.put("a.cdr", b"secret usage", AN_HOUR_AGO);
    let mut config = sshd.config(&[sshd.host()]);
    // Any other key's fingerprint: the user key's will do.
    config.host_key_fingerprints = vec![fingerprint(&sshd.path("user_key.pub"))];
    let source = SftpSource::new("TEST", &config, "*.cdr", MINUTE, AfterCommit::Delete, "processed").unwrap();

    match source.list().await {
        Err(SourceError::HostKeyMismatch { host, detail, .. }) => {
            assert_eq!(host, sshd.host());
            assert!(detail.contains(&sshd.host_fingerprint()), "names the key offered: {detail}");
        }
        other => panic!("expected a host key mismatch, got {other:?}"),
    }
    let local = tempfile::tempdir().unwrap();
    let f = RemoteFile { name: "a.cdr".into(), size: 12, modified: None };
    let fetched = source.fetch(&f, &local.path().join("a.cdr")).await;
    assert!(matches!(fetched, Err(SourceError::HostKeyMismatch { .. })), "{fetched:?}");
    assert!(matches!(source.after_commit(&f).await, Err(SourceError::HostKeyMismatch { .. })));
    assert!(local_names(local.path()).is_empty(), "nothing written locally");
    assert!(sshd.remote().join("a.cdr").exists(), "nothing deleted remotely");

    // The same through a known_hosts file that records another key for this host and port.
    let other = std::fs::read_to_string(sshd.path("user_key.pub")).unwrap();
    std::fs::write(sshd.path("known_hosts"), format!("[127.0.0.1]:{} {other}", sshd.port)).unwrap();
    config.host_key_fingerprints.clear();
    config.known_hosts_file = Some(sshd.path("known_hosts"));
    let source = SftpSource::new("TEST", &config, "*.cdr", MINUTE, AfterCommit::Keep, "processed").unwrap();
    assert!(matches!(source.list().await, Err(SourceError::HostKeyMismatch { .. })));
}

#[tokio::test]
async fn host_keys_pinned_in_a_known_hosts_file_are_accepted_plain_or_hashed() {
    let Some(sshd) = Sshd::start() else { return };
    sshd.put("a.cdr", b"x", AN_HOUR_AGO);
    let host_key = std::fs::read_to_string(sshd.path("host_key.pub")).unwrap();
    let known_hosts = sshd.path("known_hosts");
    std::fs::write(
        &known_hosts,
        format!("# pinned for the test\nelsewhere {host_key}[127.0.0.1]:{} {host_key}", sshd.port),
    )
    .unwrap();
    let mut config = sshd.config(&[sshd.host()]);
    config.host_key_fingerprints.clear();
    config.known_hosts_file = Some(known_hosts.clone());
    let source = SftpSource::new("TEST", &config, "*.cdr", MINUTE, AfterCommit::Keep, "processed").unwrap();
    assert_eq!(names(&source.list().await.unwrap()), ["a.cdr"]);

    // Hashed by OpenSSH itself, as `HashKnownHosts yes` writes them.
    let out = Command::new("ssh-keygen").arg("-H").arg("-f").arg(&known_hosts).output().unwrap();
    assert!(out.status.success(), "ssh-keygen -H: {}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read_to_string(&known_hosts).unwrap().contains("|1|"));
    let source = SftpSource::new("TEST", &config, "*.cdr", MINUTE, AfterCommit::Keep, "processed").unwrap();
    assert_eq!(names(&source.list().await.unwrap()), ["a.cdr"]);

    // A file that pins nothing for the host stops at start-up, naming the host.
    std::fs::write(&known_hosts, format!("elsewhere {host_key}")).unwrap();
    match SftpSource::new("TEST", &config, "*.cdr", MINUTE, AfterCommit::Keep, "processed") {
        Err(SourceError::Config { reason, .. }) => {
            assert!(reason.contains(&format!("[127.0.0.1]:{}", sshd.port)), "{reason}")
        }
        other => panic!("expected a config error, got {other:?}"),
    }
    config.known_hosts_file = None;
    assert!(matches!(
        SftpSource::new("TEST", &config, "*.cdr", MINUTE, AfterCommit::Keep, "processed"),
        Err(SourceError::Config { .. })
    ));
    config.known_hosts_file = Some(known_hosts);
    config.private_key_file = sshd.path("no_such_key");
    assert!(matches!(
        SftpSource::new("TEST", &config, "*.cdr", MINUTE, AfterCommit::Keep, "processed"),
        Err(SourceError::Config { .. })
    ));
}

#[tokio::test]
async fn a_transfer_cut_midway_leaves_nothing_and_the_next_run_finishes_it() {
    let Some(mut sshd) = Sshd::start() else { return };
    let large = content(50 * 1024 * 1024, 7);
    sshd.put("big.cdr", &large, AN_HOUR_AGO);
    let proxy = CutProxy::start(sshd.port);
    let source =
        SftpSource::new("TEST", &sshd.config(&[proxy.host()]), "*.cdr", MINUTE, AfterCommit::Keep, "processed")
            .unwrap();
    let f = file(&source.list().await.unwrap(), "big.cdr");
    let local = tempfile::tempdir().unwrap();
    let dest = local.path().join("big.cdr");

    // Every connection is cut after 8 MiB: the kept session, then the new one tried once more.
    proxy.set(CutProxy::CUT_EVERY);
    let cut = source.fetch(&f, &dest).await;
    assert!(matches!(cut, Err(SourceError::Io { .. })), "a cut transfer is an error: {cut:?}");
    assert_eq!(proxy.cuts(), 2, "the kept session, then one new one, and no more");
    assert!(local_names(local.path()).is_empty(), "no dest and no temp file: {:?}", local_names(local.path()));

    // The server goes down and comes back; the next run fetches the whole file.
    sshd.stop();
    sshd.run();
    proxy.set(CutProxy::PASS);
    let started = Instant::now();
    source.fetch(&f, &dest).await.unwrap();
    eprintln!("50 MiB fetched in {:?}", started.elapsed());
    assert!(std::fs::read(&dest).unwrap() == large, "the fetched file differs");
    assert_eq!(local_names(local.path()), ["big.cdr"]);

    // One cut within a run: the source reconnects and finishes it in the same call.
    std::fs::remove_file(&dest).unwrap();
    proxy.set(CutProxy::CUT_ONCE);
    source.fetch(&f, &dest).await.unwrap();
    assert_eq!(proxy.mode(), CutProxy::PASS, "the connection was cut once");
    assert_eq!(proxy.cuts(), 3);
    assert!(std::fs::read(&dest).unwrap() == large, "the fetched file differs");
}

#[tokio::test]
async fn a_backup_host_is_used_when_the_primary_is_down() {
    let Some(sshd) = Sshd::start() else { return };
    sshd.put("a.cdr", b"x", AN_HOUR_AGO);
    let down = format!("127.0.0.1:{}", free_port());
    let config = sshd.config(&[down.clone(), sshd.host()]);
    let source = SftpSource::new("TEST", &config, "*.cdr", MINUTE, AfterCommit::Keep, "processed").unwrap();
    assert_eq!(names(&source.list().await.unwrap()), ["a.cdr"]);

    // All hosts down: a bounded number of attempts, then an error naming each host.
    let also_down = format!("127.0.0.1:{}", free_port());
    let config = sshd.config(&[down.clone(), also_down.clone()]);
    let source = SftpSource::new("TEST", &config, "*.cdr", MINUTE, AfterCommit::Keep, "processed").unwrap();
    match source.list().await {
        Err(SourceError::Unavailable { reason, .. }) => {
            assert!(reason.contains(&down) && reason.contains(&also_down), "{reason}");
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_key_the_server_does_not_accept_is_reported_as_unavailable() {
    let Some(sshd) = Sshd::start() else { return };
    keygen(&sshd.path("stranger"));
    let mut config = sshd.config(&[sshd.host()]);
    config.private_key_file = sshd.path("stranger");
    let source = SftpSource::new("TEST", &config, "*.cdr", MINUTE, AfterCommit::Keep, "processed").unwrap();
    match source.list().await {
        Err(SourceError::Unavailable { reason, .. }) => assert!(reason.contains("does not accept the key"), "{reason}"),
        other => panic!("expected unavailable, got {other:?}"),
    }
}

/// A TCP relay in front of sshd that can cut a connection once 8 MiB have gone to the client
/// since the connection opened or the mode was last set, whichever is later.
struct CutProxy {
    port: u16,
    mode: Arc<Mode>,
    stop: Arc<AtomicBool>,
}

#[derive(Default)]
struct Mode {
    mode: AtomicU8,
    generation: AtomicU64,
    cuts: AtomicU64,
}

impl CutProxy {
    const PASS: u8 = 0;
    const CUT_EVERY: u8 = 1;
    const CUT_ONCE: u8 = 2;
    const CUT_AFTER: usize = 8 * 1024 * 1024;

    fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(Mode::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s) = (Arc::clone(&mode), Arc::clone(&stop));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { continue };
                let m = Arc::clone(&m);
                std::thread::spawn(move || relay(client, server, &m));
            }
        });
        Self { port, mode, stop }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn set(&self, mode: u8) {
        self.mode.mode.store(mode, Ordering::SeqCst);
        self.mode.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn mode(&self) -> u8 {
        self.mode.mode.load(Ordering::SeqCst)
    }

    fn cuts(&self) -> u64 {
        self.mode.cuts.load(Ordering::SeqCst)
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Copies both ways until either side closes, or until a cut is due.
fn relay(client: TcpStream, server: TcpStream, mode: &Mode) {
    let (mut c_read, mut s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let upward = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c_read, &mut s_write);
        let _ = s_write.shutdown(Shutdown::Both);
    });
    let (mut s_read, mut c_write) = (server, client);
    let mut buf = vec![0u8; 64 * 1024];
    let mut sent = 0usize;
    let mut generation = mode.generation.load(Ordering::SeqCst);
    loop {
        let n = match s_read.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let now = mode.generation.load(Ordering::SeqCst);
        if now != generation {
            (generation, sent) = (now, 0);
        }
        if sent + n >= CutProxy::CUT_AFTER {
            let cut = match mode.mode.load(Ordering::SeqCst) {
                CutProxy::CUT_EVERY => true,
                CutProxy::CUT_ONCE => mode
                    .mode
                    .compare_exchange(CutProxy::CUT_ONCE, CutProxy::PASS, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok(),
                _ => false,
            };
            if cut {
                mode.cuts.fetch_add(1, Ordering::SeqCst);
                break;
            }
        }
        if c_write.write_all(&buf[..n]).is_err() {
            break;
        }
        sent += n;
    }
    let _ = c_write.shutdown(Shutdown::Both);
    let _ = s_read.shutdown(Shutdown::Both);
    let _ = upward.join();
}

/// Collects call events, for the monitoring assertions.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<sb_core::monitor::CallEvent>>);

impl sb_core::monitor::Monitor for Recorder {
    fn record(&self, event: sb_core::monitor::CallEvent) {
        self.0.lock().unwrap().push(event);
    }
}

impl Recorder {
    fn calls(&self) -> Vec<(String, String, &'static str)> {
        self.0.lock().unwrap().iter().map(|e| (e.system.clone(), e.method.clone(), e.outcome.as_str())).collect()
    }
}

#[tokio::test]
async fn every_call_to_an_sftp_source_reaches_the_monitor() {
    let Some(sshd) = Sshd::start() else { return };
    sshd.put("MED01_20261122_13_001.cdr", b"this is not a CDR file\n", AN_HOUR_AGO);
    let test = sb_store::TestDb::new().await;
    test.migrate(&[&sb_ingest::MIGRATIONS]).await.unwrap();
    let vault_db = sb_store::Db::connect_with(
        test.url(),
        &sb_store::PoolOptions { schema: Some("vault".into()), ..Default::default() },
    )
    .await
    .unwrap();
    let master = sb_privacy::MasterKey::parse(&"07".repeat(32)).unwrap();
    let vault =
        Arc::new(sb_privacy::Vault::open(vault_db, master, sb_privacy::PrivacyConfig::default()).await.unwrap());
    let identity = test.dir().join("files.key");
    sb_privacy::files::ensure_identity(&identity).unwrap();
    let recipients =
        sb_privacy::files::parse_recipients(&[sb_privacy::files::identity_recipient(&identity).unwrap()]).unwrap();
    let mut config = sb_ingest::IngestConfig::default();
    let mut source = sb_ingest::SourceConfig {
        kind: sb_ingest::SourceKind::Sftp,
        layout: "reference".into(),
        pattern: "*.cdr".into(),
        min_age_s: 60,
        after_commit: AfterCommit::Keep,
        move_to: "processed".into(),
        schedule: "5 * * * *".into(),
        expected_deadline_min: 0,
        time_budget_s: 600,
        path: None,
        sftp: Some(sshd.config(&[sshd.host()])),
    };
    config.sources.insert("MED01".into(), source.clone());
    source.sftp = Some(sshd.config(&[format!("127.0.0.1:{}", free_port())]));
    config.sources.insert("DOWN".into(), source);
    let mut ingestor =
        sb_ingest::Ingestor::new(sb_store::Db::clone(&test), vault, &test.dir().join("data"), config, recipients)
            .unwrap();
    let recorder = Arc::new(Recorder::default());
    ingestor.set_monitor(Arc::clone(&recorder) as Arc<dyn sb_core::monitor::Monitor>);

    let run = ingestor.run_source("MED01", &|_| {}).await.unwrap();
    assert_eq!((run.files, run.rejected), (1, 1), "{run:?}");
    let calls = recorder.calls();
    assert!(calls.contains(&("sftp:MED01".into(), "list".into(), "ok")), "{calls:?}");
    assert!(calls.contains(&("sftp:MED01".into(), "fetch".into(), "ok")), "{calls:?}");

    // A server that does not answer: the failed call is recorded as an error.
    assert!(ingestor.run_source("DOWN", &|_| {}).await.is_err());
    assert!(recorder.calls().contains(&("sftp:DOWN".into(), "list".into(), "error")), "{:?}", recorder.calls());
}
