//! The command line: `switchboard [GLOBAL FLAGS] <domain> <verb>`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Switchboard: customer operations for mobile operators and utilities.
///
/// Exit codes: 0 success, 1 the command failed, 2 usage or configuration error.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// Config file [default: ./switchboard.toml when it exists].
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory; wins over `data_dir` in the config and environment [default: ./data].
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The domains.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented switchboard.toml and create the data directory and store.
    Init(InitArgs),
    /// Show the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage the operational database.
    #[command(subcommand)]
    Db(DbCommand),
    /// List, run and inspect scheduled jobs.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Load usage files into the lake: sources, one-off files, the journal, replays.
    #[command(subcommand)]
    Ingest(IngestCommand),
    /// Run SQL over every lake dataset (DataFusion).
    Sql(SqlArgs),
    /// Protect personal data: reveal, erase, audit, rotate keys, encrypt files, scan for leaks.
    #[command(subcommand)]
    Privacy(PrivacyCommand),
    /// Serve the back office and the API (and run the scheduler, unless --no-jobs).
    Serve(ServeArgs),
    /// Manage back-office users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage API keys of partners and integrations.
    #[command(subcommand)]
    Apikeys(ApiKeysCommand),
    /// Run the demo operator end to end, or generate operator data.
    Demo(Box<DemoArgs>),
}

/// `switchboard init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Overwrite an existing config file.
    #[arg(long)]
    pub force: bool,
}

/// `switchboard config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (defaults, file, environment, flags), secrets masked.
    Show,
}

/// `switchboard db …`.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Apply pending migrations (also done on every start).
    Migrate,
    /// Show each migration and whether it is applied.
    Status,
}

/// `switchboard jobs …`.
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Every job with its schedule, next run and last run.
    List,
    /// Run a job now, whatever its schedule.
    Run {
        /// The job's name, as in `jobs list`.
        name: String,
    },
    /// Past runs, newest first.
    History {
        /// Only this job's runs.
        name: Option<String>,
        /// How many runs to show.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

/// `switchboard ingest …`.
#[derive(Debug, Subcommand)]
pub enum IngestCommand {
    /// Fetch and load every new file of one source, or of all.
    Run {
        /// Only this source.
        #[arg(long)]
        source: Option<String>,
    },
    /// Load one local file (operators, benchmarks); the same content is never loaded twice.
    File {
        /// The file (plain or .gz).
        path: PathBuf,
        /// Its layout (`reference`, `asterisk`, or one of [ingest.layouts]).
        #[arg(long, default_value = "reference")]
        layout: String,
        /// The source it is filed under in the journal.
        #[arg(long, default_value = "manual")]
        source: String,
    },
    /// The file journal, newest first.
    Files {
        /// Only files in this state (LISTED, FETCHED, LOADED, COMMITTED, REJECTED, DUPLICATE).
        #[arg(long)]
        state: Option<String>,
        /// Only this source.
        #[arg(long)]
        source: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Load a file again on purpose: its rows are replaced, not added.
    Replay {
        /// The file's name, as in `ingest files`.
        name: String,
        /// Its source.
        #[arg(long, default_value = "manual")]
        source: String,
    },
    /// Load the master data (customers, lines, plans) from the operator's database now.
    Master,
    /// Open alerts (missing files, runs over budget, rejected files).
    Alerts,
    /// The layouts known, built-in and configured.
    Layouts,
}

/// `switchboard sql`.
#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The query, e.g. "SELECT record_type, COUNT(*) FROM usage GROUP BY 1".
    pub query: String,
    /// table, csv or json (one object per line).
    #[arg(long, default_value = "table")]
    pub format: String,
}

/// `switchboard privacy …`. Run from a shell that holds the master key, these act as the
/// principal `cli:<user>` with every privacy permission; each action is still audited.
#[derive(Debug, Subcommand)]
pub enum PrivacyCommand {
    /// Show the cleartext behind a token or encrypted value, for a stated purpose (audited).
    Reveal {
        /// The token (`msi_…`) or encrypted value (`enc1.…`).
        handle: String,
        /// Why it is needed; recorded in the audit log.
        #[arg(long)]
        purpose: String,
    },
    /// Erase a customer (right to be forgotten): destroys their key, fingerprints and mappings.
    Erase {
        /// The operator's customer id.
        #[arg(long)]
        customer: String,
    },
    /// Erasure receipts, newest first.
    Receipts {
        /// How many to show.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Key versions and what still uses them.
    Keys,
    /// Add a root key version and rewrap every subject key and fingerprint onto it.
    Rotate,
    /// Finish an interrupted rotation (rewrap what is still on older versions).
    Rewrap,
    /// Destroy an old root key version once nothing uses it.
    Retire {
        /// The version to retire.
        #[arg(long)]
        version: i64,
    },
    /// Encrypt a file with age to the configured recipients (or --recipient).
    EncryptFile {
        /// The cleartext file.
        input: PathBuf,
        /// The encrypted file to write.
        output: PathBuf,
        /// An age recipient (`age1…`); repeatable. Default: privacy.file_recipients.
        #[arg(long)]
        recipient: Vec<String>,
    },
    /// Decrypt an age file with an identity file.
    DecryptFile {
        /// The encrypted file.
        input: PathBuf,
        /// The cleartext file to write.
        output: PathBuf,
        /// The age identity file. Default: privacy.files_identity.
        #[arg(long)]
        identity: Option<PathBuf>,
    },
    /// Find cleartext personal data in files and folders (CSV, Parquet, JSON, logs);
    /// exits 1 when it finds any.
    Scan {
        /// Files or folders to scan.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

/// `switchboard privacy audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the whole hash chain: any edited, inserted or deleted entry is reported.
    Verify,
    /// The newest entries.
    List {
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

/// `switchboard demo [generate …]`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DemoArgs {
    /// Generate operator data only.
    #[command(subcommand)]
    pub command: Option<DemoCommand>,
    /// Folder of the demo operator (generated data and Switchboard's data directory).
    #[arg(long, default_value = "demo")]
    pub dir: PathBuf,
    /// Seed of the generated operator; the same seed gives the same data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Customers of the demo operator.
    #[arg(long, default_value_t = 1000)]
    pub customers: u32,
    /// Hours of usage files.
    #[arg(long, default_value_t = 24)]
    pub hours: u32,
}

/// `switchboard demo generate`.
#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// Generate a deterministic operator: CRM source database and hourly usage files.
    Generate(GenerateArgs),
}

/// Options of the operator data generator.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Seed; the same seed and options give byte-identical output.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Number of customers.
    #[arg(long, default_value_t = 1000)]
    pub customers: u32,
    /// Number of hourly usage files.
    #[arg(long, default_value_t = 24)]
    pub hours: u32,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Target total of usage records (scales activity per line) [default: natural volume].
    #[arg(long)]
    pub records: Option<u64>,
    /// First hour, RFC 3339 [default: 2026-11-22T00:00:00+01:00].
    #[arg(long)]
    pub start: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// URL of the source (CRM) database to create [default: sqlite file OUT/source.db].
    #[arg(long, value_name = "URL")]
    pub source_db: Option<String>,
    /// Name of the mediation source in file names.
    #[arg(long, default_value = "MED01")]
    pub source_name: String,
    /// Write gzip-compressed files (.cdr.gz).
    #[arg(long)]
    pub gzip: bool,
    /// Share of records repeated with the same record id.
    #[arg(long)]
    pub duplicate_record_rate: Option<f64>,
    /// Share of files delivered twice under another name.
    #[arg(long)]
    pub duplicate_file_rate: Option<f64>,
    /// Share of malformed rows.
    #[arg(long)]
    pub malformed_rate: Option<f64>,
    /// Share of records belonging to an earlier hour than their file.
    #[arg(long)]
    pub late_rate: Option<f64>,
    /// Worker threads [default: all cores].
    #[arg(long)]
    pub threads: Option<usize>,
}

/// `switchboard serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Do not run the scheduler in this process (another instance runs the jobs).
    #[arg(long)]
    pub no_jobs: bool,
}

/// `switchboard users …`.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user with a one-time password (printed once; changed at first sign-in).
    Add {
        /// The sign-in name (lower-case letters, digits, `.`, `_`, `-`).
        name: String,
        /// The role (`admin`, `operations`, `marketing`, `loyalty_operator`, `qa_evaluator`,
        /// `privacy_officer`, `auditor`, or one from `[auth.roles]`).
        #[arg(long)]
        role: String,
    },
    /// Every user with role and state.
    List,
    /// Give a user another role.
    SetRole {
        /// The user.
        name: String,
        /// The new role.
        role: String,
    },
    /// Disable a user: sign-in is refused and their sessions end.
    Disable {
        /// The user.
        name: String,
    },
    /// Enable a disabled user again (also lifts a lockout after failed sign-ins).
    Enable {
        /// The user.
        name: String,
    },
    /// Give a user a new one-time password (printed once) for a forgotten password; their
    /// sessions end and any lockout is lifted.
    ResetPassword {
        /// The user.
        name: String,
    },
}

/// `switchboard apikeys …`
#[derive(Debug, Subcommand)]
pub enum ApiKeysCommand {
    /// Create a key for a partner or system; the key is printed once and stored hashed.
    Create {
        /// Who it is for (`billing`, `partner-acme`).
        name: String,
        /// A permission it holds (repeat the flag); `switchboard apikeys permissions` lists them.
        #[arg(long = "permission", required = true)]
        permissions: Vec<String>,
        /// Days until it expires; without it, it never does.
        #[arg(long)]
        expires_days: Option<i64>,
    },
    /// Every key with its state (never the secret).
    List,
    /// Revoke a key by its id: it is refused from now on.
    Revoke {
        /// The key's id (the public part, as `apikeys list` shows it).
        id: String,
    },
    /// The permissions a key can hold.
    Permissions,
}
