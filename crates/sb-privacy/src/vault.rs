//! The vault: the only place where personal data and its tokens meet.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, RwLock};

use sb_store::sqlx::{self, Row};
use sb_store::{Db, StoreError, time};
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::audit::{self, NewEntry};
use crate::cache::TokenCache;
use crate::crypto::{self, Key};
use crate::ff1::Ff1;
use crate::keys::{Keyring, MasterKey};
use crate::known::{Directory, Known};
use crate::other_party;
use crate::subject::{self, Subject};
use crate::token_id::{self, PackedToken};
use crate::{Method, PiiKind, Principal, PrivacyConfig, PrivacyError};

/// Rows per multi-row statement: 400 × 8 columns stays far below both engines' bind limits.
const CHUNK: usize = 400;
/// Longest purpose accepted for a reveal.
const MAX_PURPOSE: usize = 500;
/// Prefix of values encrypted with the `encrypt` method.
const ENCRYPTED_PREFIX: &str = "enc1";

/// A value revealed to a permitted principal; the cleartext stays secret until exposed.
#[derive(Debug)]
pub struct Revealed {
    /// What kind of data it is.
    pub kind: PiiKind,
    /// The cleartext.
    pub value: SecretString,
}

/// The tokens of a batch of values, in order, as one text and the offsets of each token in it
/// (Arrow's layout of a string column, so a caller can hand both over without copying).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tokens {
    text: String,
    /// `offsets[i]..offsets[i + 1]` is token `i`; one more offset than tokens.
    offsets: Vec<u32>,
}

impl Tokens {
    fn with_capacity(tokens: usize) -> Self {
        let mut offsets = Vec::with_capacity(tokens + 1);
        offsets.push(0);
        Self { text: String::with_capacity(tokens * 32), offsets }
    }

    fn end(&mut self) {
        self.offsets.push(u32::try_from(self.text.len()).expect("a batch's tokens fit in 4 GiB"));
    }

    /// How many tokens.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Token `i`.
    pub fn get(&self, i: usize) -> &str {
        &self.text[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    /// The tokens in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.offsets.windows(2).map(|w| &self.text[w[0] as usize..w[1] as usize])
    }

    /// The text and the offsets (`len() + 1` of them, the first 0).
    pub fn into_parts(self) -> (String, Vec<u32>) {
        (self.text, self.offsets)
    }
}

/// The privacy vault over its own database.
pub struct Vault {
    pub(crate) db: Db,
    pub(crate) master: MasterKey,
    pub(crate) keys: RwLock<Arc<Keyring>>,
    pub(crate) config: PrivacyConfig,
    pub(crate) cache: TokenCache,
    /// Every row's fingerprint and token body, per kind (see [`crate::known`]).
    directory: Directory,
    month_keys: Mutex<HashMap<String, Arc<other_party::MonthCipher>>>,
    /// The vault's change generation this process's memory reflects (see [`Vault::sync_changes`]).
    generation: std::sync::atomic::AtomicI64,
    subject_keys: Mutex<HashMap<i64, Key>>,
    /// The open write transaction of deferred tokens, if any (see [`Vault::tokenize_column_deferred`]).
    deferred: tokio::sync::Mutex<Option<Deferred>>,
    /// Deferred transactions lost so far (see [`Vault::commit_deferred`]).
    deferred_failures: std::sync::atomic::AtomicU64,
}

/// A write transaction holding new tokens, committed later in one go.
struct Deferred {
    tx: sb_store::WriteTx,
    since: std::time::Instant,
}

/// What [`Vault::commit_deferred`] compares against: the deferred transactions lost before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeferredMark(u64);

/// A token about to be inserted (its miss and fingerprint are beside it, in the same order).
struct NewToken {
    id: i64,
    salt: i64,
    body: u128,
    token: String,
    sid: i64,
    sealed: Vec<u8>,
}

/// A token's row.
#[derive(Clone)]
struct Found {
    id: i64,
    token: Arc<str>,
    subject: i64,
}

struct Miss<'a> {
    value: &'a str,
    subject: &'a Subject,
    cache_key: u128,
    found: Option<Arc<str>>,
    /// The token was computed (a month-block token), not read or stored.
    computed: bool,
}

impl Vault {
    /// Opens the vault on `db` (its own database), applying its migrations and creating its
    /// keys on first use. Fails when `master` is not the key the vault was made with.
    pub async fn open(db: Db, master: MasterKey, config: PrivacyConfig) -> Result<Self, PrivacyError> {
        db.migrate(&[&crate::MIGRATIONS]).await?;
        let keys = Keyring::load(&db, &master).await?;
        Ok(Self {
            db,
            master,
            keys: RwLock::new(Arc::new(keys)),
            cache: TokenCache::new(config.cache_capacity.max(16)),
            config,
            directory: Directory::default(),
            month_keys: Mutex::new(HashMap::new()),
            generation: std::sync::atomic::AtomicI64::new(i64::MIN),
            subject_keys: Mutex::new(HashMap::new()),
            deferred: tokio::sync::Mutex::new(None),
            deferred_failures: std::sync::atomic::AtomicU64::new(0),
        })
    }

    pub(crate) fn keys(&self) -> Arc<Keyring> {
        Arc::clone(&self.keys.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub(crate) async fn reload_keys(&self) -> Result<(), PrivacyError> {
        let fresh = Keyring::load(&self.db, &self.master).await?;
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(fresh);
        // Rotation recomputes fingerprints in place: the directory starts again from the vault.
        self.directory.clear();
        Ok(())
    }

    /// The vault's database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The configured method for `kind`.
    pub fn method(&self, kind: PiiKind) -> Method {
        self.config.method(kind)
    }

    /// Applies `kind`'s policy to one value: a token, an FF1 ciphertext, an encrypted value,
    /// an HMAC, a generalised value, or `None` when the policy drops it.
    pub async fn protect(&self, kind: PiiKind, value: &str, subject: &Subject) -> Result<Option<String>, PrivacyError> {
        Ok(match self.method(kind) {
            Method::Token => Some(self.tokenize(kind, value, subject).await?.to_string()),
            Method::Fpe => Some(self.fpe_encrypt(kind, kind.as_str(), value)?),
            Method::Encrypt => Some(self.encrypt(kind, value, subject).await?),
            Method::Hmac => Some(self.hmac(kind, value)),
            Method::Drop => None,
            Method::Generalize => Some(crate::generalize(kind, value)?),
        })
    }

    /// The token of one value (see [`Vault::tokenize_batch`]).
    pub async fn tokenize(&self, kind: PiiKind, value: &str, subject: &Subject) -> Result<Arc<str>, PrivacyError> {
        let mut out = self.tokenize_batch(kind, &[(value, subject)]).await?;
        Ok(out.pop().expect("one token per value"))
    }

    /// The tokens of many values, in order. A value seen before gets its token back (from
    /// memory when recently used, else through its fingerprint in the vault); a new value
    /// gets a new random token, stored encrypted under `subject`'s key. An other-party
    /// number that is one of our customers' lines gets that line's token.
    pub async fn tokenize_batch(
        &self,
        kind: PiiKind,
        items: &[(&str, &Subject)],
    ) -> Result<Vec<Arc<str>>, PrivacyError> {
        Ok(self.tokenize_column(kind, items).await?.iter().map(Arc::from).collect())
    }

    /// [`Vault::tokenize_batch`], the tokens written into one text: no allocation per token
    /// (the ingestion hands them to Arrow as they are).
    pub async fn tokenize_column(&self, kind: PiiKind, items: &[(&str, &Subject)]) -> Result<Tokens, PrivacyError> {
        self.tokenize_items(kind, items, false).await
    }

    /// [`Vault::tokenize_column`], the rows of new tokens left in a write transaction that
    /// stays open across calls — the next calls' new rows join it — and is committed by
    /// [`Vault::commit_deferred`], by any other write of the vault, or once it has been open
    /// for `privacy.deferred_commit_ms` (two seconds by default). A bulk load makes a few
    /// large transactions instead of one per call: each page of the fingerprint index is
    /// written once per commit, not once per call.
    ///
    /// Until they are committed the tokens must only go where a failed commit discards them
    /// (a staged lake commit, say): take a [`Vault::deferred_mark`] first, and call
    /// [`Vault::commit_deferred`] with it before publishing anything made with them.
    pub async fn tokenize_column_deferred(
        &self,
        kind: PiiKind,
        items: &[(&str, &Subject)],
    ) -> Result<Tokens, PrivacyError> {
        self.tokenize_items(kind, items, true).await
    }

    async fn tokenize_items(
        &self,
        kind: PiiKind,
        items: &[(&str, &Subject)],
        deferred: bool,
    ) -> Result<Tokens, PrivacyError> {
        {
            // A deferred transaction is committed once it is old, also when no write comes.
            let mut state = self.deferred.lock().await;
            if state.as_ref().is_some_and(|d| d.since.elapsed() >= self.deferred_max_open()) {
                self.commit_open(&mut state).await?;
            }
        }
        /// Where a value's token is: held in the cache, or to be found or made.
        enum Slot {
            Hit(PackedToken),
            Miss(usize),
        }
        self.sync_changes().await?;
        let mut misses: Vec<Miss<'_>> = Vec::new();
        // Cache keys are keyed hashes already: no need to hash them again.
        let mut index: HashMap<u128, usize, sb_core::hash::BuildIdentity> = HashMap::default();
        let keys: Vec<u128> =
            items.iter().map(|(value, subject)| self.cache.key(kind, subject.scope(kind), value)).collect();
        // Stored other-party tokens exist only from before month-block tokens (ADR 0003):
        // while there are none, other parties who are not customers are in no cache and no
        // index, and neither is worth searching (nearly every other party of an hour is new).
        let stored = kind != PiiKind::OtherParty || self.directory.may_hold_any(&self.db, &self.keys(), kind).await?;
        let mut cached = if stored { self.cache.get_many(&keys) } else { vec![None; keys.len()] };
        if kind == PiiKind::OtherParty {
            // A customer's number has its line's token, cached once under the line's key.
            let lines: Vec<u128> = items.iter().map(|(value, _)| self.cache.key(PiiKind::Msisdn, "", value)).collect();
            for (hit, line) in cached.iter_mut().zip(self.cache.get_many(&lines)) {
                if line.is_some() {
                    *hit = line;
                }
            }
        }
        let mut slots = Vec::with_capacity(items.len());
        for ((value, subject), (cache_key, hit)) in items.iter().zip(keys.into_iter().zip(cached)) {
            if let Some(t) = hit {
                slots.push(Slot::Hit(t));
                continue;
            }
            match index.entry(cache_key) {
                Entry::Occupied(e) => slots.push(Slot::Miss(*e.get())),
                Entry::Vacant(e) => {
                    e.insert(misses.len());
                    slots.push(Slot::Miss(misses.len()));
                    misses.push(Miss { value, subject, cache_key, found: None, computed: false });
                }
            }
        }
        if !misses.is_empty() {
            self.resolve(kind, &mut misses, stored, deferred).await?;
        }
        for m in &misses {
            let token = m.found.as_deref().expect("resolve fills every miss");
            // Month-block tokens are cheaper to make again than to hold: keeping millions of
            // one-off numbers would push the lines' tokens out of the cache.
            if !m.computed {
                let line = kind == PiiKind::OtherParty && token.starts_with(PiiKind::Msisdn.token_prefix());
                let key = if line { self.cache.key(PiiKind::Msisdn, "", m.value) } else { m.cache_key };
                self.cache.insert(key, token);
            }
        }
        let mut out = Tokens::with_capacity(slots.len());
        for slot in slots {
            match slot {
                Slot::Hit(t) => t.push_to(&mut out.text),
                Slot::Miss(m) => out.text.push_str(misses[m].found.as_deref().expect("resolve fills every miss")),
            }
            out.end();
        }
        Ok(out)
    }

    /// Finds existing tokens of `misses` by fingerprint, and creates the rest; `stored` is
    /// false when the vault holds no value of `kind` (then there is nothing to look up).
    async fn resolve(
        &self,
        kind: PiiKind,
        misses: &mut [Miss<'_>],
        stored: bool,
        deferred: bool,
    ) -> Result<(), PrivacyError> {
        let keys = self.keys();
        if kind == PiiKind::OtherParty {
            // Calls between our own customers keep the customer's line token.
            let fps: Vec<FpSet> = misses.iter().map(|m| fingerprints(&keys, PiiKind::Msisdn, "", m.value)).collect();
            let found = self.lookup(PiiKind::Msisdn, &fps).await?;
            for (m, f) in misses.iter_mut().zip(found) {
                m.found = f;
            }
        }
        let fps: Vec<FpSet> = misses
            .iter()
            .map(|m| {
                if m.found.is_some() || !stored {
                    FpSet::new()
                } else {
                    fingerprints(&keys, kind, m.subject.scope(kind), m.value)
                }
            })
            .collect();
        let found = self.lookup(kind, &fps).await?;
        for (m, f) in misses.iter_mut().zip(found) {
            if m.found.is_none() {
                m.found = f;
            }
        }
        if kind == PiiKind::OtherParty {
            // Non-customers: tokens encrypted under the month's key, stored nowhere.
            for m in misses.iter_mut() {
                if m.found.is_none()
                    && other_party::fits(m.value)
                    && let Subject::OtherParty { month } = m.subject
                {
                    let cipher = self.month_cipher(&keys, month, m.subject).await?;
                    m.found = Some(Arc::from(cipher.encode(m.value)));
                    m.computed = true;
                }
            }
        }
        if misses.iter().all(|m| m.found.is_some()) {
            return Ok(());
        }
        self.create(kind, &keys, misses, deferred).await
    }

    /// Saves the vault's directory as this process holds it (see [`crate::known`]), so that
    /// the next process reads it in a few rows instead of one row per token: call it after a
    /// batch of work that made or read many tokens (the ingestion does, after each file).
    /// Only a speed-up: a failure loses nothing. Returns the entries written.
    pub async fn save_directory(&self) -> Result<usize, PrivacyError> {
        // It writes to the vault, and saves only rows that are there.
        self.commit_waiting().await?;
        self.sync_changes().await?;
        let generation = self.generation.load(std::sync::atomic::Ordering::Acquire);
        self.directory.save(&self.db, &self.keys(), generation).await
    }

    /// Drops what this process holds in memory (tokens, subject and month keys) when any
    /// process erased a customer or destroyed a month since it last looked: one small query.
    async fn sync_changes(&self) -> Result<(), PrivacyError> {
        use std::sync::atomic::Ordering;
        let now: i64 = sqlx::query_scalar("SELECT next_id FROM vault_counters WHERE name = 'changes'")
            .fetch_one(self.db.pool())
            .await
            .map_err(StoreError::from)?;
        let seen = self.generation.swap(now, Ordering::AcqRel);
        if seen != now && seen != i64::MIN {
            self.cache.clear();
            self.directory.clear();
            self.subject_keys.lock().unwrap_or_else(|p| p.into_inner()).clear();
            self.month_keys.lock().unwrap_or_else(|p| p.into_inner()).clear();
        }
        Ok(())
    }

    /// The token cipher of an other-party month, its subject made on first use; held in memory
    /// until the retention job destroys it (in this process: `forget`; in another: `sync_changes`).
    async fn month_cipher(
        &self,
        keys: &Keyring,
        month: &str,
        subject: &Subject,
    ) -> Result<Arc<other_party::MonthCipher>, PrivacyError> {
        if let Some(found) = self.month_keys.lock().unwrap_or_else(|p| p.into_inner()).get(month) {
            return Ok(Arc::clone(found));
        }
        let mut tx = self.begin_write().await?;
        let (sid, key) = subject::get_or_create(&mut tx, keys, subject).await?;
        tx.commit().await.map_err(StoreError::from)?;
        let cipher = Arc::new(other_party::MonthCipher::new(&key, sid));
        self.month_keys.lock().unwrap_or_else(|p| p.into_inner()).insert(month.to_owned(), Arc::clone(&cipher));
        Ok(cipher)
    }

    /// The token of each fingerprint set, where the vault holds one: from the directory, and
    /// only for what it cannot tell, from the database.
    async fn lookup(&self, kind: PiiKind, fps: &[FpSet]) -> Result<Vec<Option<Arc<str>>>, PrivacyError> {
        let keys = self.keys();
        let known = self.directory.tokens(&self.db, &keys, kind, fps).await?;
        let asked = if known.contains(&Known::Ask) {
            let ask: Vec<FpSet> = fps
                .iter()
                .zip(&known)
                .map(|(set, k)| if *k == Known::Ask { set.clone() } else { FpSet::new() })
                .collect();
            self.query(kind, &ask).await?
        } else {
            vec![None; fps.len()]
        };
        Ok(known
            .into_iter()
            .zip(asked)
            .map(|(k, asked)| match k {
                Known::Token(t) => Some(t.to_arc()),
                Known::Ask => asked.map(|f| f.token),
                Known::Absent => None,
            })
            .collect())
    }

    /// The row of each fingerprint set, where one exists (the directory spares the query for
    /// values the vault does not hold).
    async fn find(&self, kind: PiiKind, fps: &[FpSet]) -> Result<Vec<Option<Found>>, PrivacyError> {
        let keys = self.keys();
        let known = self.directory.tokens(&self.db, &keys, kind, fps).await?;
        let held: Vec<FpSet> = fps
            .iter()
            .zip(&known)
            .map(|(set, k)| if *k == Known::Absent { FpSet::new() } else { set.clone() })
            .collect();
        self.query(kind, &held).await
    }

    /// The row of each fingerprint set, read from the database.
    async fn query(&self, kind: PiiKind, fps: &[FpSet]) -> Result<Vec<Option<Found>>, PrivacyError> {
        let keys = self.keys();
        let mut by_fp: HashMap<Vec<u8>, Found> = HashMap::new();
        let all: Vec<&Fp> = fps.iter().flatten().collect();
        for chunk in all.chunks(CHUNK) {
            let sql = format!(
                "SELECT id, token, fingerprint, subject_id, salt FROM vault_tokens WHERE kind = {} AND fingerprint IN ({})",
                self.db.params(1, 1),
                self.db.params(2, chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(kind.as_str());
            for fp in chunk {
                q = q.bind(fp.to_vec());
            }
            for row in q.fetch_all(self.db.pool()).await.map_err(StoreError::from)? {
                let id: i64 = row.try_get(0).map_err(StoreError::from)?;
                let legacy: Option<String> = row.try_get(1).map_err(StoreError::from)?;
                let fp: Vec<u8> = row.try_get(2).map_err(StoreError::from)?;
                let subject: i64 = row.try_get(3).map_err(StoreError::from)?;
                let salt: Option<i64> = row.try_get(4).map_err(StoreError::from)?;
                let token = legacy.unwrap_or_else(|| keys.token_ids.encode(kind, id, salt.unwrap_or(0)));
                by_fp.insert(fp, Found { id, token: Arc::from(token), subject });
            }
        }
        Ok(fps.iter().map(|set| set.iter().find_map(|fp| by_fp.get(&fp[..]).cloned())).collect())
    }

    /// The next `n` token row ids, from the never-decreasing counter (inside `tx`, so a
    /// rolled-back transaction gives its ids back and a committed one never sees them reused).
    async fn allocate_ids(tx: &mut sb_store::WriteTx, n: usize) -> Result<i64, PrivacyError> {
        let next: i64 = sqlx::query_scalar(
            "UPDATE vault_counters SET next_id = next_id + $1 WHERE name = 'tokens' RETURNING next_id",
        )
        .bind(n as i64)
        .fetch_one(&mut **tx)
        .await
        .map_err(StoreError::from)?;
        Ok(next - n as i64)
    }

    /// New tokens for the misses still unresolved: in a write transaction of their own, or,
    /// when `deferred`, in the vault's deferred transaction (see [`Vault::tokenize_column_deferred`]).
    async fn create(
        &self,
        kind: PiiKind,
        keys: &Keyring,
        misses: &mut [Miss<'_>],
        deferred: bool,
    ) -> Result<(), PrivacyError> {
        // Fingerprints before the transaction, which holds the database's write lock.
        let mut todo: Vec<(usize, Fp)> = misses
            .iter()
            .enumerate()
            .filter(|(_, m)| m.found.is_none())
            .map(|(i, m)| (i, fingerprint(keys.current().fingerprint_key(kind), m.subject.scope(kind), m.value)))
            .collect();
        // In the order of the unique index on (kind, fingerprint): each row goes next to the
        // one before in the index's B-tree, whose pages are then at hand, instead of to a
        // random page of it.
        todo.sort_unstable_by_key(|t| t.1);
        let lost = if deferred && self.can_defer() {
            let mut state = self.deferred.lock().await;
            let open = match &mut *state {
                Some(open) => open,
                None => state.insert(Deferred { tx: self.db.begin_write().await?, since: std::time::Instant::now() }),
            };
            let lost = match self.insert_new(&mut open.tx, kind, keys, misses, &todo).await {
                Ok(lost) => lost,
                Err(e) => {
                    // Rolled back: tokens handed out since the transaction began are void.
                    *state = None;
                    self.void_deferred();
                    return Err(e);
                }
            };
            // A conflicting row is looked up below, from the database: commit first, so that
            // the rows before it can be read too; and keep other writers' waits short.
            if !lost.is_empty() || open.since.elapsed() >= self.deferred_max_open() {
                self.commit_open(&mut state).await?;
            }
            lost
        } else {
            let mut tx = self.begin_write().await?;
            let lost = self.insert_new(&mut tx, kind, keys, misses, &todo).await?;
            if let Err(e) = tx.commit().await {
                // The directory already has the rows that did not go in.
                self.forget_all();
                return Err(StoreError::from(e).into());
            }
            lost
        };
        if !lost.is_empty() {
            // Another process tokenised the same values meanwhile: take its tokens.
            let fps: Vec<FpSet> = lost
                .iter()
                .map(|&i| fingerprints(keys, kind, misses[i].subject.scope(kind), misses[i].value))
                .collect();
            for (&i, f) in lost.iter().zip(self.lookup(kind, &fps).await?) {
                misses[i].found = Some(f.ok_or(PrivacyError::Corrupt("a token vanished while it was created"))?);
            }
        }
        Ok(())
    }

    /// Inserts the rows of `todo` (misses and their fingerprints) in `tx`, fills the misses
    /// that went in and records them in the directory; returns the misses that did not go in
    /// (another process tokenised their values meanwhile).
    async fn insert_new(
        &self,
        tx: &mut sb_store::WriteTx,
        kind: PiiKind,
        keys: &Keyring,
        misses: &mut [Miss<'_>],
        todo: &[(usize, Fp)],
    ) -> Result<Vec<usize>, PrivacyError> {
        let now = time::to_ms(chrono::Utc::now());
        let first_id = Self::allocate_ids(tx, todo.len()).await?;
        // One subject per distinct subject of the call: the new values of one batch that are
        // not known yet share one provisional subject until `link` moves each.
        let mut subjects: HashMap<&Subject, (i64, Key)> = HashMap::new();
        for &(i, _) in todo {
            let subject = misses[i].subject;
            if !subjects.contains_key(subject) {
                let made = subject::get_or_create(tx, keys, subject).await?;
                subjects.insert(subject, made);
            }
        }
        // A chunk's rows: ids in order, a random salt each, the value sealed under its subject's key.
        let misses_now: &[Miss<'_>] = misses;
        let make = |first: usize, part: &[(usize, Fp)]| -> Vec<NewToken> {
            part.iter()
                .enumerate()
                .map(|(j, (i, _))| {
                    let m = &misses_now[*i];
                    let (sid, key) = &subjects[m.subject];
                    let id = first_id + (first + j) as i64;
                    let salt = token_id::random_salt();
                    let body = keys.token_ids.body(kind, id, salt);
                    let token = PackedToken::from_body(kind, body).to_string();
                    let sealed = crypto::seal(key, m.value.as_bytes(), token.as_bytes());
                    NewToken { id, salt, body, token, sid: *sid, sealed }
                })
                .collect()
        };
        let insert = |n: usize| {
            format!(
                "INSERT INTO vault_tokens (id, salt, kind, fp_version, fingerprint, subject_id, value, created_at_ms) VALUES {} \
                 ON CONFLICT (kind, fingerprint) DO NOTHING",
                self.db.values(1, n, 8)
            )
        };
        // Chunks of a few fixed sizes, each size's statement made once: the connection caches
        // what it prepares, and a statement per remainder would fill that cache.
        let parts: Vec<&[(usize, Fp)]> = sb_store::statement_chunks(todo, CHUNK).collect();
        let statements = sb_store::statement_texts(todo.len(), CHUNK, insert);
        let mut rows: Vec<NewToken> = Vec::with_capacity(todo.len());
        // Whether each row of `rows` went in (another process may have tokenised its value meanwhile).
        let mut went_in: Vec<bool> = Vec::with_capacity(todo.len());
        let mut next = parts.first().map(|p| make(0, p));
        let mut k = 0;
        while let Some(chunk) = next.take() {
            let mut q = sqlx::query(&statements[&chunk.len()]);
            for (r, (_, fp)) in chunk.iter().zip(parts[k]) {
                q = q
                    .bind(r.id)
                    .bind(r.salt)
                    .bind(kind.as_str())
                    .bind(keys.current)
                    .bind(fp.to_vec())
                    .bind(r.sid)
                    .bind(r.sealed.clone())
                    .bind(now);
            }
            // The next chunk is made and sealed here while this one is inserted (on SQLite,
            // on the driver's own thread); its rows follow this chunk's and those in `rows`.
            let first = rows.len() + chunk.len();
            let (done, following) =
                tokio::join!(q.execute(&mut **tx), async { parts.get(k + 1).map(|p| make(first, p)) });
            let affected = done.map_err(StoreError::from)?.rows_affected();
            // Usually every row goes in; only when some conflicted (another process tokenised
            // the same values meanwhile) ask which (returning every id costs a round trip each).
            if affected == chunk.len() as u64 {
                went_in.extend(std::iter::repeat_n(true, chunk.len()));
            } else {
                let sql = format!("SELECT id FROM vault_tokens WHERE id IN ({})", self.db.params(1, chunk.len()));
                // Rare (a conflict), so not kept among the connection's statements.
                let mut q = sqlx::query_scalar::<_, i64>(&sql).persistent(false);
                for r in &chunk {
                    q = q.bind(r.id);
                }
                let ids: std::collections::HashSet<i64> =
                    q.fetch_all(&mut **tx).await.map_err(StoreError::from)?.into_iter().collect();
                went_in.extend(chunk.iter().map(|r| ids.contains(&r.id)));
            }
            rows.extend(chunk);
            next = following;
            k += 1;
        }
        let mut lost: Vec<usize> = Vec::new();
        let mut stored: Vec<(&[u8], u128)> = Vec::with_capacity(rows.len());
        for ((r, (miss, fp)), &went) in rows.iter().zip(todo).zip(&went_in) {
            if went {
                misses[*miss].found = Some(Arc::from(r.token.as_str()));
                stored.push((&fp[..], r.body));
            } else {
                lost.push(*miss);
            }
        }
        // Only rows that went in: a conflicting one's token is the other process's.
        self.directory.add(kind, stored);
        if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
            self.directory.advance(first.id, last.id);
        }
        Ok(lost)
    }

    /// Whether new tokens may wait in a deferred transaction: it holds a connection of the
    /// pool for its lifetime, so the pool needs another for everything else.
    fn can_defer(&self) -> bool {
        self.config.deferred_commit_ms > 0 && self.db.pool().options().get_max_connections() >= 2
    }

    /// The longest a deferred transaction stays open once it has rows
    /// (`privacy.deferred_commit_ms`): other writers of the vault (other processes, or on
    /// PostgreSQL anyone allocating row ids) wait for it at most about this long.
    fn deferred_max_open(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.config.deferred_commit_ms)
    }

    /// Commits the deferred transaction in `state`, if one is open. On failure the tokens it
    /// made are void: they are forgotten, and every caller's [`Vault::commit_deferred`] since
    /// their mark reports it.
    async fn commit_open(&self, state: &mut Option<Deferred>) -> Result<(), PrivacyError> {
        let Some(open) = state.take() else { return Ok(()) };
        open.tx.commit().await.map_err(|e| {
            self.void_deferred();
            PrivacyError::from(StoreError::from(e))
        })
    }

    /// The deferred transaction was lost: what this process learnt from it goes.
    fn void_deferred(&self) {
        self.deferred_failures.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.forget_all();
    }

    /// Drops every token, fingerprint and key this process holds in memory (read again on use).
    fn forget_all(&self) {
        self.cache.clear();
        self.directory.clear();
        self.subject_keys.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Commits the deferred transaction, if one is open (see [`Vault::commit_open`]).
    pub(crate) async fn commit_waiting(&self) -> Result<(), PrivacyError> {
        self.commit_open(&mut *self.deferred.lock().await).await
    }

    /// A write transaction on the vault's database, once the deferred one (if any) is
    /// committed: every write of the vault goes through here, so that none waits for the
    /// deferred transaction's write lock.
    pub(crate) async fn begin_write(&self) -> Result<sb_store::WriteTx, PrivacyError> {
        self.commit_waiting().await?;
        Ok(self.db.begin_write().await?)
    }

    /// Where a caller of [`Vault::tokenize_column_deferred`] starts: give it to
    /// [`Vault::commit_deferred`] when done.
    pub fn deferred_mark(&self) -> DeferredMark {
        DeferredMark(self.deferred_failures.load(std::sync::atomic::Ordering::Acquire))
    }

    /// Commits the tokens made by [`Vault::tokenize_column_deferred`] and still waiting; fails
    /// when they, or any deferred tokens made since `mark`, could not be committed (the caller
    /// must then discard what it made with them, and may try again: nothing was stored).
    pub async fn commit_deferred(&self, mark: DeferredMark) -> Result<(), PrivacyError> {
        self.commit_waiting().await?;
        if self.deferred_failures.load(std::sync::atomic::Ordering::Acquire) != mark.0 {
            return Err(PrivacyError::DeferredLost);
        }
        Ok(())
    }

    /// Encrypts `value` under `subject`'s key: `enc1.<kind>.<subject>.<hex>`. Revealable by
    /// permitted principals; unreadable for ever once the subject is erased.
    pub async fn encrypt(&self, kind: PiiKind, value: &str, subject: &Subject) -> Result<String, PrivacyError> {
        Ok(self.encrypt_batch(kind, &[(value, subject)]).await?.pop().expect("one value in, one out"))
    }

    /// [`Vault::encrypt`] for many values, with one subject-key lookup per distinct subject.
    async fn encrypt_batch(&self, kind: PiiKind, items: &[(&str, &Subject)]) -> Result<Vec<String>, PrivacyError> {
        let keys = self.keys();
        // Subjects in a fixed order, so that two batches at once cannot deadlock.
        let mut distinct: Vec<&Subject> = items.iter().map(|(_, s)| *s).collect();
        distinct.sort_by(|a, b| (a.db_kind(), a.db_ref()).cmp(&(b.db_kind(), b.db_ref())));
        distinct.dedup();
        let mut subjects: HashMap<&Subject, (i64, Key)> = HashMap::new();
        let mut tx = self.begin_write().await?;
        for subject in distinct {
            let found = subject::get_or_create(&mut tx, &keys, subject).await?;
            subjects.insert(subject, found);
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(items
            .iter()
            .map(|(value, subject)| {
                let (sid, key) = &subjects[subject];
                let sealed = crypto::seal(key, value.as_bytes(), kind.as_str().as_bytes());
                format!("{ENCRYPTED_PREFIX}.{}.{sid}.{}", kind.as_str(), hex::encode(sealed))
            })
            .collect())
    }

    /// FF1 of `value` (digits), keeping `privacy.fpe_keep_digits` leading digits; `field`
    /// is the tweak, so the same number in two fields encrypts differently.
    pub fn fpe_encrypt(&self, kind: PiiKind, field: &str, value: &str) -> Result<String, PrivacyError> {
        Ff1::new(self.keys().ff1_key(kind)).encrypt(field.as_bytes(), value, self.config.fpe_keep_digits)
    }

    /// Reverses [`Vault::fpe_encrypt`] for a permitted principal with a purpose; audited.
    pub async fn fpe_reveal(
        &self,
        who: &Principal,
        kind: PiiKind,
        field: &str,
        value: &str,
        purpose: &str,
    ) -> Result<Revealed, PrivacyError> {
        self.authorize(who, kind, value, purpose).await?;
        let clear =
            Ff1::new(self.keys().ff1_key(kind)).decrypt(field.as_bytes(), value, self.config.fpe_keep_digits)?;
        self.record_reveal(who, kind, value, purpose).await?;
        Ok(Revealed { kind, value: SecretString::from(clear) })
    }

    /// Keyed, one-way: `h.<prefix>.<26 chars>`; equal values give equal outputs, nothing
    /// gives the value back.
    pub fn hmac(&self, kind: PiiKind, value: &str) -> String {
        let mac = crypto::hmac(self.keys().hmac_key(kind), &[value.as_bytes()]);
        let body = token_id::encode_body(u128::from_be_bytes(mac[..16].try_into().expect("16 bytes")));
        format!("h.{}.{}", kind.token_prefix(), String::from_utf8_lossy(&body))
    }

    /// Gives back the cleartext behind a token (`msi_…`) or an encrypted value (`enc1.…`) to
    /// a principal holding `privacy.reveal.<kind>`, for a stated purpose. Every reveal and
    /// every refusal is audited; if the audit entry cannot be written, nothing is revealed.
    pub async fn reveal(&self, who: &Principal, handle: &str, purpose: &str) -> Result<Revealed, PrivacyError> {
        let kind =
            handle_kind(handle).ok_or_else(|| PrivacyError::Invalid("not a token or an encrypted value".into()))?;
        self.authorize(who, kind, handle, purpose).await?;
        self.sync_changes().await?;
        let clear = match self.open_handle(kind, handle).await? {
            Some(c) => c,
            None => {
                self.audit(who, "reveal", Some(kind), Some(handle), Some(purpose), "not_found", None).await?;
                return Err(PrivacyError::UnknownToken);
            }
        };
        self.record_reveal(who, kind, handle, purpose).await?;
        let text =
            String::from_utf8(clear.to_vec()).map_err(|_| PrivacyError::Corrupt("a stored value is not text"))?;
        Ok(Revealed { kind, value: SecretString::from(text) })
    }

    async fn authorize(&self, who: &Principal, kind: PiiKind, target: &str, purpose: &str) -> Result<(), PrivacyError> {
        let purpose = purpose.trim();
        let refusal = if !who.can(&kind.reveal_permission()) {
            Some(format!("{} lacks permission {}", who.id, kind.reveal_permission()))
        } else if purpose.is_empty() {
            Some("no purpose stated".to_owned())
        } else if purpose.len() > MAX_PURPOSE {
            Some(format!("the purpose is longer than {MAX_PURPOSE} characters"))
        } else {
            None
        };
        if let Some(reason) = refusal {
            let purpose = (!purpose.is_empty()).then_some(purpose);
            self.audit(who, "reveal", Some(kind), Some(target), purpose, "refused", Some(&reason)).await?;
            return Err(PrivacyError::Denied(reason));
        }
        Ok(())
    }

    async fn record_reveal(
        &self,
        who: &Principal,
        kind: PiiKind,
        target: &str,
        purpose: &str,
    ) -> Result<(), PrivacyError> {
        self.audit(who, "reveal", Some(kind), Some(target), Some(purpose.trim()), "revealed", None).await
    }

    /// Appends one audit entry in its own transaction.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn audit(
        &self,
        who: &Principal,
        action: &str,
        kind: Option<PiiKind>,
        target: Option<&str>,
        purpose: Option<&str>,
        outcome: &str,
        detail: Option<&str>,
    ) -> Result<(), PrivacyError> {
        let keys = self.keys();
        let entry =
            NewEntry { actor: &who.id, action, kind: kind.map(PiiKind::as_str), target, purpose, outcome, detail };
        let result = async {
            let mut tx = self.begin_write().await?;
            audit::append(&mut tx, self.db.backend(), &keys.audit, entry).await?;
            tx.commit().await.map_err(StoreError::from)?;
            Ok::<_, PrivacyError>(())
        }
        .await;
        result.map_err(|e| PrivacyError::AuditUnavailable(e.to_string()))
    }

    async fn open_handle(&self, kind: PiiKind, handle: &str) -> Result<Option<Zeroizing<Vec<u8>>>, PrivacyError> {
        if let Some(rest) = handle.strip_prefix(ENCRYPTED_PREFIX).and_then(|r| r.strip_prefix('.')) {
            let mut parts = rest.splitn(3, '.');
            let (_, sid, hex_ct) = (parts.next(), parts.next(), parts.next());
            let sid: i64 =
                sid.and_then(|s| s.parse().ok()).ok_or(PrivacyError::Invalid("malformed encrypted value".into()))?;
            let sealed = hex::decode(hex_ct.unwrap_or_default())
                .map_err(|_| PrivacyError::Invalid("malformed encrypted value".into()))?;
            let Some(key) = self.subject_key(sid).await? else { return Ok(None) };
            return crypto::open(&key, &sealed, kind.as_str().as_bytes()).map(Some);
        }
        if kind == PiiKind::OtherParty
            && let Some((sid, body)) = other_party::parse(handle)
        {
            let Some(key) = self.subject_key(sid).await? else { return Ok(None) };
            return Ok(other_party::decode(&key, body).map(|v| Zeroizing::new(v.into_bytes())));
        }
        // Tokens are encrypted row ids; those made before that are found by their text. One
        // random body in 256 passes the kind check and decodes to some id and salt, naming no
        // row: such a token too is then looked up by its text.
        let mut row = None;
        if let Some((id, salt)) = self.keys().token_ids.decode(kind, handle) {
            row = sqlx::query(
                "SELECT subject_id, value FROM vault_tokens WHERE id = $1 AND kind = $2 AND salt = $3 AND token IS NULL",
            )
            .bind(id)
            .bind(kind.as_str())
            .bind(salt)
            .fetch_optional(self.db.pool())
            .await
            .map_err(StoreError::from)?;
        }
        if row.is_none() {
            row = sqlx::query("SELECT subject_id, value FROM vault_tokens WHERE token = $1")
                .bind(handle)
                .fetch_optional(self.db.pool())
                .await
                .map_err(StoreError::from)?;
        }
        let Some(row) = row else { return Ok(None) };
        let sid: i64 = row.try_get(0).map_err(StoreError::from)?;
        let sealed: Vec<u8> = row.try_get(1).map_err(StoreError::from)?;
        let Some(key) = self.subject_key(sid).await? else { return Ok(None) };
        crypto::open(&key, &sealed, handle.as_bytes()).map(Some)
    }

    /// A subject's data key, `None` once erased.
    pub(crate) async fn subject_key(&self, sid: i64) -> Result<Option<Key>, PrivacyError> {
        if let Some(k) = self.subject_keys.lock().unwrap_or_else(|p| p.into_inner()).get(&sid) {
            return Ok(Some(k.clone()));
        }
        let row = sqlx::query("SELECT key_version, wrapped_key FROM vault_subjects WHERE id = $1")
            .bind(sid)
            .fetch_optional(self.db.pool())
            .await
            .map_err(StoreError::from)?;
        let Some(row) = row else { return Ok(None) };
        let version: Option<i64> = row.try_get(0).map_err(StoreError::from)?;
        let wrapped: Option<Vec<u8>> = row.try_get(1).map_err(StoreError::from)?;
        let (Some(version), Some(wrapped)) = (version, wrapped) else { return Ok(None) };
        let key = crypto::unwrap(&self.keys().version(version)?.kek, &wrapped)?;
        let mut cache = self.subject_keys.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= 100_000 {
            cache.clear();
        }
        cache.insert(sid, key.clone());
        Ok(Some(key))
    }

    /// Forgets cached tokens and keys of destroyed subjects.
    pub(crate) fn forget(&self, subjects: &[i64]) {
        if subjects.is_empty() {
            return;
        }
        self.cache.clear();
        self.directory.clear();
        self.forget_keys(subjects);
    }

    /// Forgets the cached keys of destroyed subjects.
    fn forget_keys(&self, subjects: &[i64]) {
        self.month_keys.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, c| !subjects.contains(&c.sid()));
        let mut keys = self.subject_keys.lock().unwrap_or_else(|p| p.into_inner());
        for s in subjects {
            keys.remove(s);
        }
    }

    /// Moves a value tokenised under a provisional subject to its customer, keeping its
    /// token (so the lake stays consistent) and re-encrypting it under the customer's key.
    /// A value already owned by a customer is left alone. Returns whether it moved.
    pub async fn link(&self, kind: PiiKind, value: &str, customer: &str) -> Result<bool, PrivacyError> {
        Ok(self.link_batch(kind, &[(value, customer)]).await? > 0)
    }

    /// [`Vault::link`] for many values at once (the daily master-data load): each
    /// `(value, customer)` whose token is held by a provisional subject moves to that customer,
    /// in one transaction. Returns how many moved.
    pub async fn link_batch(&self, kind: PiiKind, items: &[(&str, &str)]) -> Result<u64, PrivacyError> {
        let keys = self.keys();
        let fps: Vec<FpSet> = items.iter().map(|(v, _)| fingerprints(&keys, kind, "", v)).collect();
        let found = self.find(kind, &fps).await?;
        let mut sids: Vec<i64> = found.iter().flatten().map(|f| f.subject).collect();
        sids.sort_unstable();
        sids.dedup();
        let mut provisional: std::collections::HashSet<i64> = std::collections::HashSet::new();
        for chunk in sids.chunks(CHUNK) {
            let sql = format!(
                "SELECT id FROM vault_subjects WHERE kind = 'provisional' AND id IN ({})",
                self.db.params(1, chunk.len())
            );
            let mut q = sqlx::query_scalar::<_, i64>(&sql);
            for sid in chunk {
                q = q.bind(*sid);
            }
            provisional.extend(q.fetch_all(self.db.pool()).await.map_err(StoreError::from)?);
        }
        let moves: Vec<(&Found, &str, &str)> = found
            .iter()
            .zip(items)
            .filter_map(|(f, (value, customer))| f.as_ref().map(|f| (f, *value, *customer)))
            .filter(|(f, _, _)| provisional.contains(&f.subject))
            .collect();
        if moves.is_empty() {
            return Ok(0);
        }
        let mut tx = self.begin_write().await?;
        let mut customers: HashMap<&str, (i64, Key)> = HashMap::new();
        let mut moved = 0u64;
        for (f, value, customer) in &moves {
            let (customer_sid, key) = match customers.get(customer) {
                Some(c) => c.clone(),
                None => {
                    let c = subject::get_or_create(&mut tx, &keys, &Subject::Customer((*customer).to_owned())).await?;
                    customers.insert(customer, c.clone());
                    c
                }
            };
            let sealed = crypto::seal(&key, value.as_bytes(), f.token.as_bytes());
            // Only if still provisional (a value repeated in the batch, or moved meanwhile by
            // another process, stays with its first owner).
            let updated =
                sqlx::query("UPDATE vault_tokens SET subject_id = $1, value = $2 WHERE id = $3 AND subject_id = $4")
                    .bind(customer_sid)
                    .bind(sealed)
                    .bind(f.id)
                    .bind(f.subject)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::from)?
                    .rows_affected();
            moved += updated;
        }
        let emptied: Vec<i64> = provisional.iter().copied().collect();
        for sid in &emptied {
            // A provisional subject left without values is destroyed with its key.
            sqlx::query("DELETE FROM vault_subjects WHERE id = $1 AND kind = 'provisional' AND NOT EXISTS (SELECT 1 FROM vault_tokens WHERE subject_id = $1)")
                .bind(*sid)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from)?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        // The moved values keep their tokens: cached tokens stay right.
        self.forget_keys(&emptied);
        Ok(moved)
    }

    /// [`Vault::protect`] for many values of one kind, each with its subject: tokens in one
    /// batch, encrypted values with one subject-key lookup per distinct subject.
    pub async fn protect_batch(
        &self,
        kind: PiiKind,
        items: &[(&str, &Subject)],
    ) -> Result<Vec<Option<String>>, PrivacyError> {
        match self.method(kind) {
            Method::Token => {
                Ok(self.tokenize_batch(kind, items).await?.into_iter().map(|t| Some(t.to_string())).collect())
            }
            Method::Encrypt => Ok(self.encrypt_batch(kind, items).await?.into_iter().map(Some).collect()),
            _ => {
                let mut out = Vec::with_capacity(items.len());
                for (value, subject) in items {
                    out.push(self.protect(kind, value, subject).await?);
                }
                Ok(out)
            }
        }
    }

    /// Entries in the token cache now (for metrics and tests).
    pub fn cached_tokens(&self) -> usize {
        self.cache.len()
    }

    /// The audit log, newest first.
    pub async fn audit_log(&self, before: Option<i64>, limit: u32) -> Result<Vec<audit::AuditEntry>, PrivacyError> {
        Ok(audit::list(&self.db, before, i64::from(limit)).await?)
    }

    /// Checks the whole audit chain.
    pub async fn verify_audit(&self) -> Result<audit::AuditReport, PrivacyError> {
        audit::verify(&self.db, &self.keys().audit).await
    }
}

fn fingerprint(key: &crypto::MacKey, scope: &str, value: &str) -> Fp {
    key.mac(&[scope.as_bytes(), value.as_bytes()])
}

/// A fingerprint: the HMAC-SHA-256 of a value under its kind's fingerprint key.
pub(crate) type Fp = [u8; 32];

/// A value's fingerprints under every live root version: one, held inline (no allocation for
/// each value looked up), or two during a rotation.
pub(crate) type FpSet = smallvec::SmallVec<[Fp; 1]>;

/// The value's fingerprint under every live root version (one, or two during a rotation).
fn fingerprints(keys: &Keyring, kind: PiiKind, scope: &str, value: &str) -> FpSet {
    keys.versions.values().map(|v| fingerprint(v.fingerprint_key(kind), scope, value)).collect()
}

/// The kind a token or encrypted value stands for.
pub fn handle_kind(handle: &str) -> Option<PiiKind> {
    if let Some(rest) = handle.strip_prefix(ENCRYPTED_PREFIX).and_then(|r| r.strip_prefix('.')) {
        return rest.split('.').next()?.parse().ok();
    }
    if other_party::parse(handle).is_some() {
        return Some(PiiKind::OtherParty);
    }
    let (prefix, body) = handle.split_once('_')?;
    (body.len() == 26).then_some(())?;
    PiiKind::from_token_prefix(prefix)
}

#[cfg(test)]
mod tests {
    use sb_store::{MigrationSet, PoolOptions, TestDb};
    use secrecy::ExposeSecret;

    use super::*;

    const MASTER: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    async fn vault_on(test: &TestDb) -> Vault {
        let options = PoolOptions { schema: Some("vault".into()), ..Default::default() };
        let db = Db::connect_with(test.url(), &options).await.unwrap();
        Vault::open(db, MasterKey::parse(MASTER).unwrap(), PrivacyConfig::default()).await.unwrap()
    }

    /// What the ingestion relies on when a deferred transaction is lost (an insert or its
    /// commit failed): the caller's commit reports it, and no token of it is served again.
    #[tokio::test]
    async fn a_lost_deferred_transaction_is_reported_and_its_tokens_are_not_served_again() {
        let test = TestDb::new().await;
        let vault = vault_on(&test).await;
        let c = Subject::Provisional;
        let before = vault.deferred_mark();
        let kept = vault.tokenize_column_deferred(PiiKind::Msisdn, &[("393401110001", &c)]).await.unwrap();
        vault.commit_deferred(before).await.unwrap();

        let mark = vault.deferred_mark();
        let lost = vault.tokenize_column_deferred(PiiKind::Msisdn, &[("393401110002", &c)]).await.unwrap();
        // As `create` does when a statement fails: the transaction rolls back, its tokens are void.
        let open = vault.deferred.lock().await.take();
        assert!(open.is_some(), "the new token waits in the deferred transaction");
        drop(open);
        vault.void_deferred();
        assert!(matches!(vault.commit_deferred(mark).await, Err(PrivacyError::DeferredLost)));
        assert!(vault.commit_deferred(vault.deferred_mark()).await.is_ok(), "a later caller starts afresh");

        // The same value again: a token that is in the database (another process agrees), and
        // the committed one unchanged.
        let again = vault.tokenize_column(PiiKind::Msisdn, &[("393401110002", &c)]).await.unwrap();
        let other = vault_on(&test).await;
        let there =
            other.tokenize_column(PiiKind::Msisdn, &[("393401110002", &c), ("393401110001", &c)]).await.unwrap();
        assert_eq!((there.get(0), there.get(1)), (again.get(0), kept.get(0)));
        assert_ne!(again.get(0), lost.get(0), "a new row, with a salt of its own");
    }

    /// A vault made before tokens were row ids (migration 0001 only), holding tokens in the old
    /// form: after the upgrade they still reveal, and the same values keep their tokens. Of old
    /// random bodies one in 256 passes the new scheme's kind check and decodes to some id: the
    /// test holds one of each, so that case is always covered.
    #[tokio::test]
    async fn tokens_made_before_migration_0002_keep_working_after_it() {
        let test = TestDb::new().await;
        let options = PoolOptions { schema: Some("vault".into()), ..Default::default() };
        let db = Db::connect_with(test.url(), &options).await.unwrap();
        static V1: MigrationSet =
            MigrationSet { domain: "privacy", migrations: &[sb_store::migration!(1, "0001_vault")] };
        db.migrate(&[&V1]).await.unwrap();
        let master = MasterKey::parse(MASTER).unwrap();
        let keys = Keyring::load(&db, &master).await.unwrap();
        let old_token = |decodes: bool| loop {
            let t = format!("{}_{}", PiiKind::Msisdn.token_prefix(), crypto::random_token_body());
            if keys.token_ids.decode(PiiKind::Msisdn, &t).is_some() == decodes {
                break t;
            }
        };
        let old = [(old_token(false), "393401234567"), (old_token(true), "393401234568")];
        let mut tx = db.begin_write().await.unwrap();
        let (sid, key) = subject::get_or_create(&mut tx, &keys, &Subject::Customer("C1".into())).await.unwrap();
        for (token, value) in &old {
            sqlx::query(
                "INSERT INTO vault_tokens (token, kind, fp_version, fingerprint, subject_id, value, created_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, 0)",
            )
            .bind(token)
            .bind(PiiKind::Msisdn.as_str())
            .bind(keys.current)
            .bind(fingerprint(keys.current().fingerprint_key(PiiKind::Msisdn), "", value).to_vec())
            .bind(sid)
            .bind(crypto::seal(&key, value.as_bytes(), token.as_bytes()))
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();

        let vault = Vault::open(db, master, PrivacyConfig::default()).await.unwrap();
        let who = Principal::new("olivia", ["privacy.reveal.*"]);
        let c1 = Subject::Customer("C1".into());
        for (token, value) in &old {
            let revealed = vault.reveal(&who, token, "upgrade check").await.unwrap();
            assert_eq!(revealed.value.expose_secret(), *value);
            assert_eq!(vault.tokenize(PiiKind::Msisdn, value, &c1).await.unwrap().as_ref(), token);
        }
        // New values get row-id tokens, numbered after the old rows.
        let new = vault.tokenize(PiiKind::Msisdn, "393409999999", &c1).await.unwrap();
        assert_eq!(vault.keys().token_ids.decode(PiiKind::Msisdn, &new).map(|(id, _)| id), Some(3));
        assert_eq!(vault.reveal(&who, &new, "upgrade check").await.unwrap().value.expose_secret(), "393409999999");
    }

    /// The next process reads the saved directory in a few rows and gets the same tokens; rows
    /// added after the save are read after it; a snapshot of another change generation is not
    /// read, and an erasure deletes every snapshot.
    #[tokio::test]
    async fn the_saved_directory_gives_the_next_process_the_same_tokens_and_goes_with_an_erasure() {
        let test = TestDb::new().await;
        let options = PoolOptions { schema: Some("vault".into()), ..Default::default() };
        let db = Db::connect_with(test.url(), &options).await.unwrap();
        let open = || Vault::open(db.clone(), MasterKey::parse(MASTER).unwrap(), PrivacyConfig::default());
        let first = open().await.unwrap();
        let c1 = Subject::Customer("C1".into());
        let values: Vec<String> = (0..300).map(|i| format!("39340{i:07}")).collect();
        let items: Vec<(&str, &Subject)> = values.iter().map(|v| (v.as_str(), &c1)).collect();
        let tokens = first.tokenize_batch(PiiKind::Msisdn, &items).await.unwrap();
        assert_eq!(first.save_directory().await.unwrap(), 300);
        assert_eq!(first.save_directory().await.unwrap(), 0, "nothing new, nothing written");
        let late = first.tokenize(PiiKind::Msisdn, "393409999999", &c1).await.unwrap();

        let second = open().await.unwrap();
        assert_eq!(second.tokenize_batch(PiiKind::Msisdn, &items).await.unwrap(), tokens);
        assert_eq!(second.directory.saved_len(PiiKind::Msisdn), Some(300), "read from the snapshot");
        assert_eq!(second.tokenize(PiiKind::Msisdn, "393409999999", &c1).await.unwrap(), late, "read after it");

        sqlx::query("UPDATE vault_counters SET next_id = next_id + 1 WHERE name = 'changes'")
            .execute(db.pool())
            .await
            .unwrap();
        let third = open().await.unwrap();
        assert_eq!(third.tokenize_batch(PiiKind::Msisdn, &items).await.unwrap(), tokens);
        assert_eq!(third.directory.saved_len(PiiKind::Msisdn), None, "another generation's snapshot is not read");
        assert_eq!(third.save_directory().await.unwrap(), 301);

        let officer = Principal::new("olivia", ["privacy.erase"]);
        third.erase_customer(&officer, "C1").await.unwrap();
        let parts: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM vault_directory_parts").fetch_one(db.pool()).await.unwrap();
        assert_eq!(parts, 0, "the erased rows' fingerprints leave with them");
    }

    /// A token is never handed out twice, even after the newest rows are erased.
    #[tokio::test]
    async fn row_ids_are_not_reused_after_erasure() {
        let test = TestDb::new().await;
        let options = PoolOptions { schema: Some("vault".into()), ..Default::default() };
        let db = Db::connect_with(test.url(), &options).await.unwrap();
        let vault = Vault::open(db, MasterKey::parse(MASTER).unwrap(), PrivacyConfig::default()).await.unwrap();
        let who = Principal::new("olivia", ["privacy.reveal.*", "privacy.erase"]);
        let first = vault.tokenize(PiiKind::Msisdn, "393401111111", &Subject::Customer("C9".into())).await.unwrap();
        vault.erase_customer(&who, "C9").await.unwrap();
        let second = vault.tokenize(PiiKind::Msisdn, "393402222222", &Subject::Customer("C10".into())).await.unwrap();
        assert_ne!(first, second);
        assert!(
            matches!(vault.reveal(&who, &first, "check").await, Err(PrivacyError::UnknownToken)),
            "the erased token stays dead"
        );
    }
}
