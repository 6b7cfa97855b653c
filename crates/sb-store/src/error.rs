use sqlx::error::ErrorKind;

/// What went wrong in the store, in words the domain understands.
///
/// Messages never carry row values: constraint violations name the constraint, not the data.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row asked for does not exist.
    #[error("not found")]
    NotFound,
    /// A uniqueness, foreign-key or check constraint refused the change.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database cannot be reached or is too busy; retrying later may succeed.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug, a schema mismatch, corrupt data.
    #[error("database error: {0}")]
    Other(String),
}

impl StoreError {
    /// Whether this is a constraint conflict (typically: the row is already there).
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict(_))
    }
}

/// SQLite's "database is locked" and "database is busy" result codes.
const SQLITE_BUSY_CODES: [&str; 2] = ["5", "6"];

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => Self::NotFound,
            sqlx::Error::Database(db) => {
                // Only the message: PostgreSQL puts offending values in `detail`, never read here.
                let message = db.message().to_owned();
                match db.kind() {
                    ErrorKind::UniqueViolation
                    | ErrorKind::ForeignKeyViolation
                    | ErrorKind::NotNullViolation
                    | ErrorKind::CheckViolation => Self::Conflict(message),
                    _ if db.code().is_some_and(|c| SQLITE_BUSY_CODES.contains(&c.as_ref())) => {
                        Self::Unavailable(message)
                    }
                    // Class 08 is connection exceptions; 57P is operator intervention (shutdown).
                    _ if db.code().is_some_and(|c| c.starts_with("08") || c.starts_with("57P")) => {
                        Self::Unavailable(message)
                    }
                    _ => Self::Other(message),
                }
            }
            sqlx::Error::PoolTimedOut => Self::Unavailable("timed out waiting for a connection".into()),
            sqlx::Error::PoolClosed => Self::Unavailable("the connection pool is closed".into()),
            sqlx::Error::Io(io) => Self::Unavailable(format!("i/o: {io}")),
            sqlx::Error::Tls(tls) => Self::Unavailable(format!("tls: {tls}")),
            sqlx::Error::Configuration(c) => Self::Other(format!("configuration: {c}")),
            other => Self::Other(other.to_string()),
        }
    }
}
