//! A fresh database per test, on either backend.

use std::ops::Deref;

use crate::{Db, PoolOptions};

/// The environment variable holding a PostgreSQL server URL for tests
/// (e.g. `postgres://postgres@127.0.0.1:5432/postgres`). Unset: tests use SQLite.
pub const TEST_PG_ENV: &str = "SWITCHBOARD_TEST_PG";

/// A database that exists for one test: a SQLite file in a temporary folder, or — when
/// `SWITCHBOARD_TEST_PG` is set — a uniquely named PostgreSQL database, dropped on `Drop`.
#[derive(Debug)]
pub struct TestDb {
    db: Db,
    url: String,
    dir: tempfile::TempDir,
    pg: Option<PgDatabase>,
}

#[derive(Debug)]
struct PgDatabase {
    admin_url: String,
    name: String,
}

impl TestDb {
    /// Creates the database and connects to it. Panics when that is impossible: a test
    /// cannot do anything useful without its database.
    pub async fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("sb-test-").tempdir().expect("temp dir");
        match std::env::var(TEST_PG_ENV).ok().filter(|u| !u.is_empty()) {
            Some(admin_url) => {
                let name = format!("sb_test_{}", uuid::Uuid::new_v4().simple());
                let admin = Db::connect_with(&admin_url, &PoolOptions { max_connections: 1, ..Default::default() })
                    .await
                    .expect("connect to SWITCHBOARD_TEST_PG");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(admin.pool())
                    .await
                    .expect("create test database");
                admin.close().await;
                let url = replace_database(&admin_url, &name);
                let db = Db::connect_with(&url, &PoolOptions::default()).await.expect("connect to test database");
                Self { db, url, dir, pg: Some(PgDatabase { admin_url, name }) }
            }
            None => {
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                let db = Db::connect_with(&url, &PoolOptions::default()).await.expect("open test database");
                Self { db, url, dir, pg: None }
            }
        }
    }

    /// The database's URL, to open a second, independent pool on it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A temporary folder that lives as long as the database, for the test's files.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Whether this test runs on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }
}

impl Deref for TestDb {
    type Target = Db;

    fn deref(&self) -> &Db {
        &self.db
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(pg) = self.pg.take() else { return };
        // Drop runs outside async context (or inside a runtime that cannot block), so the
        // database is dropped from a thread of its own with a small runtime.
        let handle = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                let Ok(admin) =
                    Db::connect_with(&pg.admin_url, &PoolOptions { max_connections: 1, ..Default::default() }).await
                else {
                    return;
                };
                let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", pg.name);
                if let Err(e) = sqlx::query(&drop).execute(admin.pool()).await {
                    eprintln!("could not drop test database {}: {e}", pg.name);
                }
                admin.close().await;
            });
        });
        let _ = handle.join();
    }
}

/// `postgres://u@h:p/old?x` → `postgres://u@h:p/NAME?x`.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_database_name_is_replaced_in_a_url() {
        assert_eq!(super::replace_database("postgres://p@h:5432/postgres", "t1"), "postgres://p@h:5432/t1");
        assert_eq!(
            super::replace_database("postgres://p@h/x?sslmode=disable", "t1"),
            "postgres://p@h/t1?sslmode=disable"
        );
        assert_eq!(super::replace_database("postgres://p@h", "t1"), "postgres://p@h/t1");
    }
}
