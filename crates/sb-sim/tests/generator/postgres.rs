//! The source database on PostgreSQL, when a server is at hand.

use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{AnyConnection, Connection};

use crate::common::{assert_same_text, block_on, dump_source_db, generate, query_text, small_config};

/// `server` with its database replaced by `name`.
fn database_url(server: &str, name: &str) -> String {
    let (base, query) = server.split_once('?').map_or((server, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..].find('/').map_or(base.len(), |i| authority_start + i);
    match query {
        Some(q) => format!("{}/{name}?{q}", &base[..path_start]),
        None => format!("{}/{name}", &base[..path_start]),
    }
}

async fn admin(server: &str, sql: &str) {
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(server).await.unwrap();
    sqlx::query(sql).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

#[test]
fn the_source_db_is_written_to_postgresql_as_to_sqlite() {
    // scripts/test.sh sets it empty for the SQLite pass: empty means unset.
    let Some(server) = std::env::var("SWITCHBOARD_TEST_PG").ok().filter(|s| !s.is_empty()) else {
        eprintln!("SWITCHBOARD_TEST_PG is not set: skipping the PostgreSQL source-database test");
        return;
    };
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
    let name = format!("sbsim_test_{}_{nanos}", std::process::id());
    block_on(admin(&server, &format!("CREATE DATABASE {name}")));
    let url = database_url(&server, &name);

    // Assertions run on their own thread so that the database is dropped even when one fails.
    let outcome = std::thread::spawn(move || {
        let (pg_dir, sqlite_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut on_pg = small_config(31, pg_dir.path());
        on_pg.source_db = Some(url.clone());
        let summary = generate(&on_pg);
        assert!(!summary.source_db.contains("sqlite"));
        // Twice: the tables are dropped and recreated.
        generate(&on_pg);

        let counts = block_on(query_text(
            &url,
            "SELECT CAST((SELECT COUNT(*) FROM customers) AS TEXT), CAST((SELECT COUNT(*) FROM lines) AS TEXT), \
             CAST((SELECT COUNT(*) FROM line_options) AS TEXT)",
        ));
        let counts: Vec<u64> = counts[0].iter().map(|c| c.as_deref().unwrap().parse().unwrap()).collect();
        let rows = summary.source_db_rows;
        assert_eq!(counts, vec![120, rows.lines, rows.line_options]);

        let on_sqlite = small_config(31, sqlite_dir.path());
        generate(&on_sqlite);
        let (pg, sqlite) = (block_on(dump_source_db(&url)), block_on(dump_source_db(&on_sqlite.source_db_url())));
        assert_same_text(&pg, &sqlite, "the PostgreSQL and SQLite source databases");
    })
    .join();

    block_on(admin(&server, &format!("DROP DATABASE {name} WITH (FORCE)")));
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn the_database_name_is_replaced_in_a_server_url() {
    assert_eq!(database_url("postgres://u@h:5432/postgres", "x"), "postgres://u@h:5432/x");
    assert_eq!(database_url("postgres://u@h/postgres?sslmode=disable", "x"), "postgres://u@h/x?sslmode=disable");
    assert_eq!(database_url("postgres://h", "x"), "postgres://h/x");
}
