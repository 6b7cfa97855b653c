use sb_store::MigrationState;

use crate::app;
use crate::cli::DbCommand;
use crate::config::Config;
use crate::output::{Output, table, when};

pub async fn run(cmd: &DbCommand, config: &Config, out: Output) -> anyhow::Result<()> {
    let db = app::connect_store(config).await?;
    let sets = app::migrations();
    match cmd {
        DbCommand::Migrate => {
            let applied = db.migrate(&sets).await?;
            if out.json {
                out.json(&serde_json::json!({ "applied": applied }))
            } else {
                out.text(&format!("{applied} migration(s) applied; the schema is up to date."))
            }
        }
        DbCommand::Status => {
            let status = db.migration_status(&sets).await?;
            if out.json {
                return out.json(&status);
            }
            let rows: Vec<Vec<String>> = status
                .iter()
                .map(|s| {
                    let state = match &s.state {
                        MigrationState::Pending => "pending".to_owned(),
                        MigrationState::Changed => "CHANGED after it was applied".to_owned(),
                        MigrationState::Applied { at_ms } => {
                            format!("applied {}", when(Some(sb_store::time::from_ms(*at_ms))))
                        }
                    };
                    vec![s.domain.to_owned(), s.version.to_string(), s.name.to_owned(), state]
                })
                .collect();
            out.text(&format!(
                "store: {} ({})\n{}",
                sb_store::redact_url(&config.store_url()),
                db.backend().as_str(),
                table(&["domain", "version", "name", "state"], &rows)
            ))
        }
    }
}
