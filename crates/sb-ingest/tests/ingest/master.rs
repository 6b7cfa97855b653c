//! Master data: the generator's CRM database into the store (type-2 history, protected) and
//! the lake's dimensions.

use std::sync::Arc;

use sb_ingest::{MasterConfig, MasterData};
use sb_privacy::{Principal, Scanner};
use sb_store::sqlx::{self, Connection};
use secrecy::ExposeSecret;

use super::{Fixture, generate, sql};

fn officer() -> Principal {
    Principal::new("olivia", ["privacy.reveal.*", "privacy.erase"])
}

async fn source(url: &str) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(url).await.unwrap()
}

#[tokio::test]
async fn master_data_loads_as_scd2_and_a_changed_plan_makes_exactly_one_new_version() {
    let f = Fixture::new().await;
    let op = f.test.dir().join("operator");
    let m = generate(&op, 11, 1, false).await;
    let url = sb_sim::GenerateConfig::new(11, &op).source_db_url();
    // Traffic first: its lines are tokenised before the master data names their customers.
    let ingestor = f.ingestor(&[("MED01", &op.join("mediation"))]);
    ingestor.run_source("MED01", &|_| {}).await.unwrap();

    let config = MasterConfig { url: Some(url.clone().into()), ..MasterConfig::default() };
    let master = MasterData::new(sb_store::Db::clone(&f.test), Arc::clone(&f.vault), ingestor.lake().clone(), config);
    let first = master.run().await.unwrap();
    assert_eq!(first.customers.new, m.customers, "{first:?}");
    assert_eq!(first.lines.new, m.lines, "{first:?}");
    assert!(first.plans.new > 0 && first.lines.exported && first.customers.exported, "{first:?}");
    assert_eq!(first.lines.rejected + first.customers.rejected, 0);
    assert!(first.linked > 0, "lines seen in traffic moved to their customers: {first:?}");
    let lines = m.lines;
    assert_eq!(sql(&ingestor, "SELECT COUNT(*) AS n FROM dim_line WHERE is_current").await, format!("n\n{lines}\n"));

    // Facts join their line through the token: every usage row finds its line.
    let joined = sql(
        &ingestor,
        "SELECT COUNT(*) AS n FROM usage u LEFT JOIN dim_line l ON l.msisdn = u.line WHERE l.line_id IS NULL",
    )
    .await;
    assert_eq!(joined, "n\n0\n");

    // The MSISDN behind a line's token only through the vault, and it is the source's.
    let mut src = source(&url).await;
    let (line_id, msisdn, customer): (i64, String, i64) =
        sqlx::query_as("SELECT line_id, msisdn, customer_id FROM lines ORDER BY line_id LIMIT 1")
            .fetch_one(&mut src)
            .await
            .unwrap();
    let token = sql(&ingestor, &format!("SELECT msisdn FROM dim_line WHERE line_id = '{line_id}'")).await;
    let token = token.lines().nth(1).unwrap().to_owned();
    assert!(token.starts_with("msi_"), "{token}");
    let revealed = f.vault.reveal(&officer(), &token, "master-data test").await.unwrap();
    assert_eq!(revealed.value.expose_secret(), msisdn);
    // Nothing changed: nothing written, the lake copy is not rewritten.
    let again = master.run().await.unwrap();
    assert_eq!((again.lines.new, again.lines.changed, again.lines.closed), (0, 0, 0), "{again:?}");
    assert_eq!(again.lines.unchanged, lines);
    assert!(!again.lines.exported && !again.customers.exported && !again.plans.exported);

    // A changed plan: exactly one new version, the old one closed.
    let new_plan: (String,) = sqlx::query_as(
        "SELECT plan_code FROM plans WHERE plan_code <> (SELECT plan_code FROM lines WHERE line_id = $1) LIMIT 1",
    )
    .bind(line_id)
    .fetch_one(&mut src)
    .await
    .unwrap();
    sqlx::query("UPDATE lines SET plan_code = $1 WHERE line_id = $2")
        .bind(&new_plan.0)
        .bind(line_id)
        .execute(&mut src)
        .await
        .unwrap();
    let changed = master.run().await.unwrap();
    assert_eq!((changed.lines.changed, changed.lines.new, changed.lines.unchanged), (1, 0, lines - 1), "{changed:?}");
    assert!(changed.lines.exported && !changed.customers.exported);
    assert_eq!(sql(&ingestor, "SELECT COUNT(*) AS n FROM dim_line").await, format!("n\n{}\n", lines + 1));
    let versions = sql(
        &ingestor,
        &format!(
            "SELECT version, plan_code = '{}' AS new_plan, is_current, valid_to IS NULL AS open, msisdn = '{token}' AS same_token \
             FROM dim_line WHERE line_id = '{line_id}' ORDER BY version",
            new_plan.0
        ),
    )
    .await;
    assert_eq!(
        versions,
        "version,new_plan,is_current,open,same_token\n1,false,false,false,true\n2,true,true,true,true\n"
    );

    // A line gone from the source: its version is closed, nothing is deleted.
    sqlx::query("DELETE FROM line_options WHERE line_id = $1").bind(line_id).execute(&mut src).await.unwrap();
    sqlx::query("DELETE FROM lines WHERE line_id = $1").bind(line_id).execute(&mut src).await.unwrap();
    let gone = master.run().await.unwrap();
    assert_eq!(gone.lines.closed, 1, "{gone:?}");
    assert_eq!(
        sql(&ingestor, "SELECT COUNT(*) AS n FROM dim_line WHERE is_current").await,
        format!("n\n{}\n", lines - 1)
    );

    // It comes back: a third version, valid from now (not a second "first" version).
    sqlx::query(
        "INSERT INTO lines (line_id, customer_id, msisdn, iccid, imsi, imei, plan_code, payment_type, status, device_type, \
         auto_topup, activated_at, updated_at) VALUES ($1, $2, $3, '8939010000000000000', '222019999999999', \
         '356938035643809', $4, 'prepaid', 'active', 'smartphone', 0, '2026-01-01T00:00:00+01:00', '2026-11-23T00:00:00+01:00')",
    )
    .bind(line_id)
    .bind(customer)
    .bind(&msisdn)
    .bind(&new_plan.0)
    .execute(&mut src)
    .await
    .unwrap();
    let back = master.run().await.unwrap();
    assert_eq!((back.lines.changed, back.lines.new, back.lines.rejected), (1, 0, 0), "{back:?}");
    let versions = sql(
        &ingestor,
        &format!(
            "SELECT version, is_current, valid_from > TIMESTAMP '2000-01-01' AS later FROM dim_line \
             WHERE line_id = '{line_id}' ORDER BY version"
        ),
    )
    .await;
    assert_eq!(versions, "version,is_current,later\n1,false,false\n2,false,true\n3,true,true\n");
    assert_eq!(
        sql(&ingestor, &format!("SELECT msisdn FROM dim_line WHERE line_id = '{line_id}' AND is_current")).await,
        format!("msisdn\n{token}\n"),
        "the same number keeps its token"
    );

    // A row that turns bad keeps its current version instead of being closed.
    sqlx::query("UPDATE lines SET msisdn = '' WHERE line_id = $1").bind(line_id).execute(&mut src).await.unwrap();
    let bad = master.run().await.unwrap();
    assert_eq!((bad.lines.rejected, bad.lines.closed), (1, 0), "{bad:?}");
    sqlx::query("UPDATE lines SET msisdn = $1 WHERE line_id = $2")
        .bind(&msisdn)
        .bind(line_id)
        .execute(&mut src)
        .await
        .unwrap();

    // The line's MSISDN was linked to its customer: erasing the customer kills its token.
    f.vault.erase_customer(&officer(), &customer.to_string()).await.unwrap();
    assert!(f.vault.reveal(&officer(), &token, "master-data test").await.is_err());
    // The operator's CRM still holds them and their row changes: the daily load must not
    // bring their personal data back.
    sqlx::query("UPDATE customers SET email = 'new.address@example.org' WHERE customer_id = $1")
        .bind(customer)
        .execute(&mut src)
        .await
        .unwrap();
    sqlx::query("UPDATE lines SET status = 'suspended' WHERE customer_id = $1")
        .bind(customer)
        .execute(&mut src)
        .await
        .unwrap();
    let after = master.run().await.unwrap();
    assert_eq!(after.customers.changed, 1, "{after:?}");
    let (email, name, tax): (Option<String>, Option<String>, Option<String>) = sqlx::query_as(
        "SELECT email, name, tax_code FROM master_customers WHERE customer_id = $1 AND valid_to_ms IS NULL",
    )
    .bind(customer.to_string())
    .fetch_one(f.test.pool())
    .await
    .unwrap();
    assert_eq!((email, name, tax), (None, None, None), "an erased customer's personal fields stay out");
    let line_token: Option<String> =
        sqlx::query_scalar("SELECT msisdn FROM master_lines WHERE line_id = $1 AND valid_to_ms IS NULL")
            .bind(line_id.to_string())
            .fetch_one(f.test.pool())
            .await
            .unwrap();
    assert_eq!(line_token, None);
    src.close().await.unwrap();

    // No cleartext in the lake, the quarantine, nor the store's files (the operator's own
    // files, which hold cleartext by nature, are not ours).
    let mut paths = vec![f.data.clone()];
    for e in std::fs::read_dir(f.test.dir()).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            paths.push(p);
        }
    }
    let report = Scanner::new().scan(&paths).unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings.iter().map(|x| &x.path).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_query_without_its_key_column_is_a_clear_error_and_an_empty_source_closes_nothing() {
    let f = Fixture::new().await;
    let op = f.test.dir().join("operator");
    generate(&op, 12, 1, false).await;
    let url = sb_sim::GenerateConfig::new(12, &op).source_db_url();
    let ingestor = f.ingestor(&[]);
    let lake = ingestor.lake().clone();
    let bad = MasterConfig {
        url: Some(url.clone().into()),
        plans_query: "SELECT name FROM plans".into(),
        ..MasterConfig::default()
    };
    let e = MasterData::new(sb_store::Db::clone(&f.test), Arc::clone(&f.vault), lake.clone(), bad)
        .run()
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("plans_query") && e.contains("plan_code"), "{e}");

    let good = MasterConfig { url: Some(url.clone().into()), ..MasterConfig::default() };
    MasterData::new(sb_store::Db::clone(&f.test), Arc::clone(&f.vault), lake.clone(), good).run().await.unwrap();
    // A broken query that returns nothing must not close every customer.
    let empty = MasterConfig {
        url: Some(url.into()),
        customers_query: "SELECT * FROM customers WHERE 1 = 0".into(),
        ..MasterConfig::default()
    };
    let e = MasterData::new(sb_store::Db::clone(&f.test), Arc::clone(&f.vault), lake, empty)
        .run()
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("refusing to close"), "{e}");
}

/// The operator's database on MySQL/MariaDB (`SWITCHBOARD_TEST_MYSQL`, set by scripts/test.sh
/// when a server answers on 127.0.0.1:3306), with mapping queries in MySQL's dialect.
#[tokio::test]
async fn master_data_reads_a_mysql_operator_database_through_mapping_queries() {
    let Some(url) = std::env::var("SWITCHBOARD_TEST_MYSQL").ok().filter(|u| !u.is_empty()) else {
        eprintln!("SWITCHBOARD_TEST_MYSQL is not set: master data from MySQL is not tested here");
        return;
    };
    let mut src = source(&url).await;
    let t = format!("sbm_{}_{}", std::process::id(), chrono::Utc::now().timestamp_micros());
    for stmt in [
        format!(
            "CREATE TABLE {t}_cust (id BIGINT PRIMARY KEY, first VARCHAR(40), last VARCHAR(40), cf VARCHAR(16), mail VARCHAR(80), prov CHAR(2))"
        ),
        format!("CREATE TABLE {t}_sim (id BIGINT PRIMARY KEY, cust BIGINT, num VARCHAR(20), plan VARCHAR(10))"),
        format!("CREATE TABLE {t}_plan (code VARCHAR(10) PRIMARY KEY, label VARCHAR(40), fee INT)"),
        format!(
            "INSERT INTO {t}_cust VALUES (1, 'Maria', 'Bianchi', 'BNCMRA85T50H501Z', 'maria@example.org', 'RM'), (2, 'Luca', 'Verdi', 'VRDLCU80A01F205X', 'luca@example.org', 'MI')"
        ),
        format!("INSERT INTO {t}_sim VALUES (10, 1, '3401234567', 'P1'), (11, 2, '3409876543', 'P2')"),
        format!("INSERT INTO {t}_plan VALUES ('P1', 'Basic', 900), ('P2', 'Giga', 1500)"),
    ] {
        sqlx::query(&stmt).execute(&mut src).await.unwrap();
    }
    let config = MasterConfig {
        url: Some(url.clone().into()),
        customers_query: format!(
            "SELECT id AS customer_id, CONCAT(first, ' ', last) AS name, cf AS tax_code, mail AS email, prov AS province FROM {t}_cust"
        ),
        lines_query: format!(
            "SELECT id AS line_id, cust AS customer_id, CONCAT('39', num) AS msisdn, plan AS plan_code FROM {t}_sim"
        ),
        plans_query: format!("SELECT code AS plan_code, label AS name, fee AS monthly_fee_cents FROM {t}_plan"),
        ..MasterConfig::default()
    };
    let f = Fixture::new().await;
    let ingestor = f.ingestor(&[]);
    let master = MasterData::new(sb_store::Db::clone(&f.test), Arc::clone(&f.vault), ingestor.lake().clone(), config);
    let result = master.run().await;
    for table in ["cust", "sim", "plan"] {
        sqlx::query(&format!("DROP TABLE {t}_{table}")).execute(&mut src).await.unwrap();
    }
    src.close().await.unwrap();
    let s = result.unwrap();
    assert_eq!((s.customers.new, s.lines.new, s.plans.new), (2, 2, 2), "{s:?}");
    assert_eq!(
        sql(&ingestor, "SELECT plan_code, name, monthly_fee_cents FROM dim_plan ORDER BY 1").await,
        "plan_code,name,monthly_fee_cents\nP1,Basic,900\nP2,Giga,1500\n"
    );
    let token = sql(&ingestor, "SELECT msisdn FROM dim_line WHERE line_id = '10'").await;
    let token = token.lines().nth(1).unwrap().to_owned();
    assert_eq!(f.vault.reveal(&officer(), &token, "mysql test").await.unwrap().value.expose_secret(), "393401234567");
    // The name is encrypted in the store and absent from the lake.
    assert_eq!(sql(&ingestor, "SELECT COUNT(*) AS n FROM dim_customer WHERE name IS NULL").await, "n\n2\n");
}
