//! One suite for both backends: it runs on SQLite, and on PostgreSQL when
//! `SWITCHBOARD_TEST_PG` is set (scripts/test.sh runs it both ways).

use sb_store::sqlx::{self, Row};
use sb_store::{Backend, Migration, MigrationSet, MigrationState, StoreError, TestDb};

const PEOPLE_V1: Migration = Migration {
    version: 1,
    name: "0001_people",
    sqlite: "CREATE TABLE test_people (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE);
             CREATE TABLE test_pets (id INTEGER PRIMARY KEY, owner BIGINT NOT NULL REFERENCES test_people(id));",
    postgres: "CREATE TABLE test_people (id BIGINT PRIMARY KEY, email TEXT NOT NULL UNIQUE);
               CREATE TABLE test_pets (id BIGINT PRIMARY KEY, owner BIGINT NOT NULL REFERENCES test_people(id));",
};
const PEOPLE_V2: Migration = Migration {
    version: 2,
    name: "0002_people_name",
    sqlite: "ALTER TABLE test_people ADD COLUMN name TEXT;",
    postgres: "ALTER TABLE test_people ADD COLUMN name TEXT;",
};
static SET: MigrationSet = MigrationSet { domain: "test", migrations: &[PEOPLE_V1, PEOPLE_V2] };

#[tokio::test]
async fn migrations_apply_to_an_empty_database_and_again_with_no_change() {
    let db = TestDb::new().await;
    let before = db.migration_status(&[&SET]).await.unwrap();
    assert!(before.iter().all(|s| s.state == MigrationState::Pending));

    assert_eq!(db.migrate(&[&SET]).await.unwrap(), 2);
    assert_eq!(db.migrate(&[&SET]).await.unwrap(), 0);
    assert!(db.is_migrated(&[&SET]).await.unwrap());

    sqlx::query("INSERT INTO test_people (id, email, name) VALUES ($1, $2, $3)")
        .bind(1_i64)
        .bind("a@example.org")
        .bind("A")
        .execute(db.pool())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_migration_changed_after_it_was_applied_is_reported() {
    let db = TestDb::new().await;
    db.migrate(&[&SET]).await.unwrap();
    static EDITED: MigrationSet = MigrationSet {
        domain: "test",
        migrations: &[Migration { sqlite: "SELECT 1;", postgres: "SELECT 1;", ..PEOPLE_V1 }, PEOPLE_V2],
    };
    let status = db.migration_status(&[&EDITED]).await.unwrap();
    assert_eq!(status[0].state, MigrationState::Changed);
    let e = db.migrate(&[&EDITED]).await.unwrap_err().to_string();
    assert!(e.contains("test/1") && e.contains("changed"), "{e}");
}

#[tokio::test]
async fn a_unique_violation_surfaces_as_conflict() {
    let db = TestDb::new().await;
    db.migrate(&[&SET]).await.unwrap();
    let insert = || {
        sqlx::query("INSERT INTO test_people (id, email) VALUES ($1, $2)")
            .bind(rand_id())
            .bind("same@example.org")
            .execute(db.pool())
    };
    insert().await.unwrap();
    let err = StoreError::from(insert().await.unwrap_err());
    assert!(err.is_conflict(), "{err:?}");
    assert!(!err.to_string().contains("same@example.org"), "no values in messages: {err}");
}

#[tokio::test]
async fn foreign_keys_are_enforced() {
    let db = TestDb::new().await;
    db.migrate(&[&SET]).await.unwrap();
    let err = sqlx::query("INSERT INTO test_pets (id, owner) VALUES ($1, $2)")
        .bind(1_i64)
        .bind(999_i64)
        .execute(db.pool())
        .await
        .unwrap_err();
    assert!(StoreError::from(err).is_conflict());
}

#[tokio::test]
async fn a_missing_row_is_not_found() {
    let db = TestDb::new().await;
    db.migrate(&[&SET]).await.unwrap();
    let err = sqlx::query_scalar::<_, String>("SELECT email FROM test_people WHERE id = $1")
        .bind(42_i64)
        .fetch_one(db.pool())
        .await
        .unwrap_err();
    assert!(matches!(StoreError::from(err), StoreError::NotFound));
}

#[tokio::test]
async fn placeholders_bind_by_number_on_both_backends() {
    let db = TestDb::new().await;
    let row =
        sqlx::query("SELECT $2 || '-' || $1 AS s").bind("first").bind("second").fetch_one(db.pool()).await.unwrap();
    assert_eq!(row.get::<String, _>("s"), "second-first");
}

#[tokio::test]
async fn a_write_transaction_rolls_back_when_dropped() {
    let db = TestDb::new().await;
    db.migrate(&[&SET]).await.unwrap();
    {
        let mut tx = db.begin_write().await.unwrap();
        sqlx::query("INSERT INTO test_people (id, email) VALUES (1, 'x@example.org')").execute(&mut *tx).await.unwrap();
    }
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM test_people").fetch_one(db.pool()).await.unwrap();
    assert_eq!(n, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_write_transactions_of_one_handle_wait_their_turn_without_the_busy_timeout() {
    let test = TestDb::new().await;
    test.migrate(&[&SET]).await.unwrap();
    // No busy timeout: on SQLite a second `BEGIN IMMEDIATE` beside an open write transaction
    // would fail at once, so every writer must have waited on the handle's own gate.
    let options = sb_store::PoolOptions { busy_timeout: std::time::Duration::ZERO, ..Default::default() };
    let db = sb_store::Db::connect_with(test.url(), &options).await.unwrap();
    const WRITERS: usize = 8;
    // Every writer's connection opened beforehand, and all released at once: their
    // `BEGIN IMMEDIATE`s reach SQLite while the first writer's transaction is open.
    drop(open_connections(&db, WRITERS).await);
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(WRITERS));
    let writers: Vec<_> = (0..WRITERS as i64)
        .map(|i| {
            let (db, start) = (db.clone(), std::sync::Arc::clone(&start));
            tokio::spawn(async move {
                start.wait().await;
                let mut tx = db.begin_write().await?;
                sqlx::query("INSERT INTO test_people (id, email) VALUES ($1, $2)")
                    .bind(i)
                    .bind(format!("{i}@example.org"))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok::<_, StoreError>(())
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap().unwrap();
    }
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM test_people").fetch_one(db.pool()).await.unwrap();
    assert_eq!(n, 8);
}

/// `n` pooled connections open at once (idle in the pool once dropped).
async fn open_connections(db: &sb_store::Db, n: usize) -> Vec<sqlx::pool::PoolConnection<sqlx::Any>> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        held.push(db.pool().acquire().await.unwrap());
    }
    held
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode_with_foreign_keys() {
    let db = TestDb::new().await;
    if db.backend() != Backend::Sqlite {
        return;
    }
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(db.pool()).await.unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_and_its_password_is_not_shown() {
    let url = "postgres://sb:hunter2@127.0.0.1:1/sb";
    let options = sb_store::PoolOptions { acquire_timeout: std::time::Duration::from_secs(2), ..Default::default() };
    let err = sb_store::Db::connect_with(url, &options).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

fn rand_id() -> i64 {
    use std::sync::atomic::{AtomicI64, Ordering};
    static NEXT: AtomicI64 = AtomicI64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
