use std::path::PathBuf;

use anyhow::Context as _;

use crate::app;
use crate::cli::InitArgs;
use crate::config::{Config, DEFAULT_FILE, Sources, TEMPLATE};
use crate::output::Output;

pub async fn run(args: &InitArgs, sources: &Sources, config: &Config, out: Output) -> anyhow::Result<()> {
    let path = sources.file.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_FILE));
    let wrote_config = if path.exists() && !args.force {
        false
    } else {
        let mut text = TEMPLATE.to_owned();
        if sources.data_dir.is_some() {
            let dir = config.data_dir.display().to_string();
            text = text.replacen("data_dir = \"data\"", &format!("data_dir = {}", toml_string(&dir)), 1);
        }
        sb_core::fs::write_atomically(&path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
        true
    };
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    let db = app::open_store(config).await?;
    let migrated = db.is_migrated(&app::migrations()).await?;
    let first_admin = first_admin(&db, config).await?;
    db.close().await;
    let master_key_created = config.privacy.master_key.is_none()
        && config.privacy.master_key_file.is_none()
        && !config.master_key_file().exists();
    let vault = app::open_vault(config).await?;
    vault.db().close().await;
    let files_recipient = sb_privacy::files::ensure_identity(&config.files_identity())?;

    if out.json {
        return out.json(&serde_json::json!({
            "config_file": path,
            "config_written": wrote_config,
            "data_dir": config.data_dir,
            "store": sb_store::redact_url(&config.store_url()),
            "migrated": migrated,
            "master_key_file": config.master_key_file(),
            "master_key_created": master_key_created,
            "vault": sb_store::redact_url(&config.vault_url()),
            "files_recipient": files_recipient,
            "admin_user": first_admin.as_ref().map(|(name, _)| name),
            "admin_one_time_password": first_admin.as_ref().map(|(_, password)| password),
        }));
    }
    let config_line = if wrote_config {
        format!("wrote {}", path.display())
    } else {
        format!("kept the existing {} (use --force to overwrite it)", path.display())
    };
    let key_line = if master_key_created {
        format!(
            "created the master key {} (mode 0600): back it up and keep it apart from backups of the vault",
            config.master_key_file().display()
        )
    } else {
        "master key found".to_owned()
    };
    let admin_line = match &first_admin {
        Some((name, password)) => format!(
            "\nfirst back-office user `{name}` (role admin) created with the one-time password\n\n    {password}\n\n\
             It is shown only now; change it at first sign-in (`switchboard serve`, then /admin).\n"
        ),
        None => String::new(),
    };
    out.text(&format!(
        "{config_line}\ndata directory {} ready\nstore {} migrated\nvault {} ready; {key_line}\nfiles are encrypted to {files_recipient}\n{admin_line}\n\
         Next: `switchboard jobs list`, or `switchboard demo` for a demo operator.",
        config.data_dir.display(),
        sb_store::redact_url(&config.store_url()),
        sb_store::redact_url(&config.vault_url()),
    ))
}

/// Creates the first administrator when the store has no back-office user yet; returns the
/// name and one-time password to show once.
async fn first_admin(db: &sb_store::Db, config: &Config) -> anyhow::Result<Option<(String, String)>> {
    if sb_web::auth::users::count(db).await? > 0 {
        return Ok(None);
    }
    let roles = sb_web::rbac::Roles::new(&config.auth.roles).map_err(crate::config::ConfigError)?;
    let (user, password) = sb_web::auth::users::add(db, &roles, "admin", "admin", chrono::Utc::now())
        .await
        .map_err(|e| anyhow::anyhow!("creating the first administrator: {e}"))?;
    Ok(Some((user.name, password)))
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}
