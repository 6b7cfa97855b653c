//! `switchboard users`: back-office users from the command line.

use sb_web::auth::apikeys;
use sb_web::auth::users::{self, UserError};
use sb_web::rbac::Roles;

use crate::app;
use crate::cli::{ApiKeysCommand, UsersCommand};
use crate::config::{Config, ConfigError};
use crate::output::{Output, table, when};

pub async fn run(cmd: &UsersCommand, config: &Config, out: Output) -> anyhow::Result<()> {
    let roles = Roles::new(&config.auth.roles).map_err(ConfigError)?;
    let db = app::open_store(config).await?;
    let now = chrono::Utc::now();
    let result = match cmd {
        UsersCommand::Add { name, role } => {
            let (user, password) = users::add(&db, &roles, name, role, now).await.map_err(usage)?;
            if out.json {
                out.json(&serde_json::json!({ "user": user, "one_time_password": password }))
            } else {
                out.text(&format!(
                    "added {} ({}) with the one-time password\n\n    {password}\n\nIt is shown only now and must be changed at first sign-in.",
                    user.name, user.role
                ))
            }
        }
        UsersCommand::List => {
            let (list, _) = users::list(&db, "", "name", false, 0, i64::MAX).await?;
            if out.json {
                out.json(&list)
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|u| {
                        let state = if u.disabled {
                            "disabled"
                        } else if u.locked_until.is_some_and(|t| t > now) {
                            "locked"
                        } else if u.must_change_password {
                            "one-time password"
                        } else {
                            "active"
                        };
                        vec![u.name.clone(), u.role.clone(), state.to_owned(), when(u.last_sign_in_at)]
                    })
                    .collect();
                out.text(&table(&["user", "role", "state", "last sign-in"], &rows))
            }
        }
        UsersCommand::SetRole { name, role } => {
            let user = users::set_role(&db, &roles, name, role).await.map_err(usage)?;
            if out.json { out.json(&user) } else { out.text(&format!("{} is now {}", user.name, user.role)) }
        }
        UsersCommand::Disable { name } => {
            let user = users::set_disabled(&db, name, true).await.map_err(usage)?;
            if out.json {
                out.json(&user)
            } else {
                out.text(&format!("{} is disabled; their sessions ended", user.name))
            }
        }
        UsersCommand::Enable { name } => {
            let user = users::set_disabled(&db, name, false).await.map_err(usage)?;
            if out.json { out.json(&user) } else { out.text(&format!("{} is enabled", user.name)) }
        }
        UsersCommand::ResetPassword { name } => {
            let (user, password) = users::reset_password(&db, name, now).await.map_err(usage)?;
            if out.json {
                out.json(&serde_json::json!({ "user": user, "one_time_password": password }))
            } else {
                out.text(&format!(
                    "{}'s sessions ended; their new one-time password is\n\n    {password}\n\nIt is shown only now and must be changed at the next sign-in.",
                    user.name
                ))
            }
        }
    };
    db.close().await;
    result
}

/// `switchboard apikeys …`: keys for partners and integrations (the back office's API keys
/// page, from the command line). Created keys are attributed to `cli:<user>`.
pub async fn api_keys(cmd: &ApiKeysCommand, config: &Config, out: Output) -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    if let ApiKeysCommand::Permissions = cmd {
        let rows: Vec<Vec<String>> =
            sb_web::rbac::PERMISSIONS.iter().map(|(p, what)| vec![(*p).into(), (*what).into()]).collect();
        return if out.json {
            out.json(&sb_web::rbac::all_permissions())
        } else {
            out.text(&table(&["permission", "what it allows"], &rows))
        };
    }
    let db = app::open_store(config).await?;
    let result = match cmd {
        ApiKeysCommand::Create { name, permissions, expires_days } => {
            let known = sb_web::rbac::all_permissions();
            if let Some(bad) = permissions.iter().find(|p| !known.contains(*p)) {
                return Err(
                    ConfigError(format!("unknown permission `{bad}` (see `switchboard apikeys permissions`)")).into()
                );
            }
            if name.trim().is_empty() || name.len() > 100 {
                return Err(ConfigError("the key's name must have 1 to 100 characters".into()).into());
            }
            let expires_at = match expires_days {
                None => None,
                Some(d) if (1..=3650).contains(d) => Some(now + chrono::Duration::days(*d)),
                Some(d) => return Err(ConfigError(format!("--expires-days {d}: expected 1 to 3650")).into()),
            };
            let by = format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()));
            let (key, secret) = apikeys::create(&db, name.trim(), permissions, expires_at, &by, now).await?;
            if out.json {
                out.json(&serde_json::json!({ "key": key, "secret": secret }))
            } else {
                out.text(&format!(
                    "created key {} for {}; give them this secret (shown only now, stored hashed):\n\n    {secret}\n",
                    key.id, key.name
                ))
            }
        }
        ApiKeysCommand::List => {
            let keys = apikeys::list(&db).await?;
            if out.json {
                out.json(&keys)
            } else {
                let rows: Vec<Vec<String>> = keys
                    .iter()
                    .map(|k| {
                        let state = if k.revoked_at.is_some() {
                            "revoked"
                        } else if k.is_active(now) {
                            "active"
                        } else {
                            "expired"
                        };
                        vec![
                            k.id.clone(),
                            k.name.clone(),
                            state.into(),
                            k.permissions.join(" "),
                            when(k.expires_at),
                            when(k.last_used_at),
                        ]
                    })
                    .collect();
                out.text(&table(&["id", "name", "state", "permissions", "expires", "last used"], &rows))
            }
        }
        ApiKeysCommand::Revoke { id } => match apikeys::revoke(&db, id, now).await {
            Ok(key) => {
                if out.json {
                    out.json(&key)
                } else {
                    out.text(&format!("key {} ({}) is revoked", key.id, key.name))
                }
            }
            Err(sb_store::StoreError::NotFound) => Err(ConfigError(format!("no API key with id `{id}`")).into()),
            Err(e) => Err(e.into()),
        },
        ApiKeysCommand::Permissions => unreachable!("answered above without the store"),
    };
    db.close().await;
    result
}

/// Mistakes of the person typing (a bad name, an unknown role or user) exit with code 2.
fn usage(e: UserError) -> anyhow::Error {
    match e {
        UserError::Store(s) => s.into(),
        other => ConfigError(other.to_string()).into(),
    }
}
