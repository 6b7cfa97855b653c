//! Alerts: logged, stored (`ingest_alerts`, once per source, kind and subject), and posted to
//! a webhook when one is configured. Messages never hold personal data.

use sb_store::sqlx::{self, Row};
use sb_store::{Db, StoreError, time};
use serde::Serialize;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// An expected hour has no file by its deadline.
    MissingFile,
    /// A run took longer than the source's time budget.
    OverBudget,
    /// A file was rejected as a whole.
    Rejected,
    /// The source could not be reached.
    SourceDown,
}

impl AlertKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::MissingFile => "missing_file",
            Self::OverBudget => "over_budget",
            Self::Rejected => "rejected",
            Self::SourceDown => "source_down",
        }
    }
}

/// A stored alert.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    /// Its id.
    pub id: i64,
    /// When (epoch ms).
    pub at_ms: i64,
    /// The source.
    pub source: String,
    /// What happened.
    pub kind: String,
    /// For people.
    pub message: String,
    /// What it is about (an hour, a file name).
    pub subject: Option<String>,
}

/// Raises alerts.
#[derive(Debug, Clone)]
pub struct Alerts {
    db: Db,
    webhook: Option<String>,
}

impl Alerts {
    /// Alerts stored in `db`, and posted to `webhook` if set.
    pub fn new(db: Db, webhook: Option<String>) -> Self {
        Self { db, webhook }
    }

    /// Raises an alert, once per (source, kind, subject): returns whether it is new.
    pub async fn raise(&self, source: &str, kind: AlertKind, subject: &str, message: &str) -> Result<bool, StoreError> {
        let new = sqlx::query(
            "INSERT INTO ingest_alerts (at_ms, source, kind, message, subject) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (source, kind, subject) DO NOTHING",
        )
        .bind(time::to_ms(chrono::Utc::now()))
        .bind(source)
        .bind(kind.as_str())
        .bind(message)
        .bind(subject)
        .execute(self.db.pool())
        .await?
        .rows_affected()
            == 1;
        if new {
            tracing::warn!(source, kind = kind.as_str(), subject, message, "ingestion alert");
            if let Some(url) = &self.webhook {
                post(url, source, kind, subject, message).await;
            }
        }
        Ok(new)
    }

    /// Open alerts, newest first.
    pub async fn open(&self, limit: i64) -> Result<Vec<Alert>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at_ms, source, kind, message, subject FROM ingest_alerts WHERE resolved_at_ms IS NULL ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Alert {
                    id: r.try_get(0)?,
                    at_ms: r.try_get(1)?,
                    source: r.try_get(2)?,
                    kind: r.try_get(3)?,
                    message: r.try_get(4)?,
                    subject: r.try_get(5)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }
}

/// Posts the alert as JSON over plain HTTP/1.1 (`http://host:port/path`); failures are logged,
/// never fatal: the alert is stored either way.
async fn post(url: &str, source: &str, kind: AlertKind, subject: &str, message: &str) {
    let body =
        serde_json::json!({ "source": source, "kind": kind, "subject": subject, "message": message }).to_string();
    let result = async {
        let rest = url.strip_prefix("http://").ok_or("only http:// webhooks are supported")?;
        let (host, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
        let mut stream = tokio::time::timeout(std::time::Duration::from_secs(5), tokio::net::TcpStream::connect(host))
            .await
            .map_err(|_| "connect timed out")?
            .map_err(|_| "cannot connect")?;
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream.write_all(request.as_bytes()).await.map_err(|_| "cannot send")?;
        let mut response = [0u8; 32];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut response))
            .await
            .map_err(|_| "no response")?
            .map_err(|_| "cannot read the response")?;
        let status = String::from_utf8_lossy(&response[..n]);
        if status.starts_with("HTTP/1.1 2") || status.starts_with("HTTP/1.0 2") { Ok(()) } else { Err("the webhook did not answer 2xx") }
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = e, "alert webhook failed");
    }
}
