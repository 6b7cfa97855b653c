//! "Never two runs of one job at once", across processes and machines.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sb_store::sqlx::{self, Any, pool::PoolConnection};
use sb_store::{Backend, Db, StoreError, time};
use sha2::{Digest, Sha256};

/// Proof that this process may run a job now; release it when the run has ended.
pub(crate) enum RunLock {
    /// A session-level `pg_advisory_lock` on a connection held for the whole run. If the
    /// process dies, PostgreSQL drops the connection and with it the lock.
    Advisory { conn: PoolConnection<Any>, key: i64 },
    /// A row in `jobs_leases`, valid until the job's timeout has surely passed; a crashed
    /// holder's lease simply expires.
    Lease { db: Db, job: String, holder: String },
}

/// The advisory-lock key of a job: the first 8 bytes of SHA-256 of its name, so that every
/// instance computes the same key without coordination.
fn advisory_key(job: &str) -> i64 {
    let digest = Sha256::digest(format!("switchboard.jobs:{job}").as_bytes());
    i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

impl RunLock {
    /// Takes the job's lock if nobody holds it; `None` when someone does.
    pub(crate) async fn try_acquire(
        db: &Db,
        job: &str,
        holder: &str,
        now: DateTime<Utc>,
        lease_for: Duration,
    ) -> Result<Option<Self>, StoreError> {
        match db.backend() {
            Backend::Postgres => {
                let mut conn = db.pool().acquire().await?;
                // Should this connection go back to the pool still holding the lock (a panic,
                // a failed unlock), it is closed instead.
                conn.close_on_drop();
                let key = advisory_key(job);
                let got: bool = sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
                    .bind(key)
                    .fetch_one(&mut *conn)
                    .await?;
                Ok(got.then_some(Self::Advisory { conn, key }))
            }
            Backend::Sqlite => {
                let expires = now + chrono::Duration::from_std(lease_for).unwrap_or(chrono::Duration::days(1));
                let done = sqlx::query(
                    "INSERT INTO jobs_leases (job, holder, expires_at_ms) VALUES ($1, $2, $3) \
                     ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, expires_at_ms = excluded.expires_at_ms \
                     WHERE jobs_leases.expires_at_ms < $4",
                )
                .bind(job)
                .bind(holder)
                .bind(time::to_ms(expires))
                .bind(time::to_ms(now))
                .execute(db.pool())
                .await?;
                Ok((done.rows_affected() == 1).then(|| Self::Lease {
                    db: db.clone(),
                    job: job.to_owned(),
                    holder: holder.to_owned(),
                }))
            }
        }
    }

    /// Gives the lock back.
    pub(crate) async fn release(self) -> Result<(), StoreError> {
        match self {
            Self::Advisory { mut conn, key } => {
                sqlx::query("SELECT pg_advisory_unlock($1)").bind(key).execute(&mut *conn).await?;
                Ok(())
            }
            Self::Lease { db, job, holder } => {
                sqlx::query("DELETE FROM jobs_leases WHERE job = $1 AND holder = $2")
                    .bind(job)
                    .bind(holder)
                    .execute(db.pool())
                    .await?;
                Ok(())
            }
        }
    }
}
