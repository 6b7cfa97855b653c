//! `switchboard users`: back-office users from the command line.

use sb_web::auth::users::{self, UserError};
use sb_web::rbac::Roles;

use crate::app;
use crate::cli::UsersCommand;
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
