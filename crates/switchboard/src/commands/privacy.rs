use anyhow::Context as _;
use sb_privacy::{Principal, Scanner, files};
use secrecy::ExposeSecret;

use crate::app;
use crate::cli::{AuditCommand, PrivacyCommand};
use crate::config::Config;
use crate::output::{Output, table, when};

/// The shell user, with every privacy permission: whoever holds the master key can do all
/// of this anyway; what matters is that it is audited under a name.
fn cli_principal() -> Principal {
    let user = std::env::var("SUDO_USER").or_else(|_| std::env::var("USER")).unwrap_or_else(|_| "unknown".into());
    Principal::new(format!("cli:{user}"), ["privacy.*"])
}

pub async fn run(cmd: PrivacyCommand, config: &Config, out: Output) -> anyhow::Result<()> {
    match cmd {
        PrivacyCommand::EncryptFile { input, output, recipient } => {
            let recipients = if recipient.is_empty() { default_recipients(config)? } else { recipient };
            let parsed = files::parse_recipients(&recipients)?;
            let bytes = files::encrypt_file(&input, &output, &parsed)?;
            return report(
                out,
                serde_json::json!({ "output": output, "bytes": bytes, "recipients": recipients.len() }),
                &format!("encrypted {bytes} bytes to {} for {} recipient(s)", output.display(), recipients.len()),
            );
        }
        PrivacyCommand::DecryptFile { input, output, identity } => {
            let identity = identity.unwrap_or_else(|| config.files_identity());
            let bytes = files::decrypt_file(&input, &output, &identity)?;
            return report(
                out,
                serde_json::json!({ "output": output, "bytes": bytes }),
                &format!("decrypted {bytes} bytes to {}", output.display()),
            );
        }
        PrivacyCommand::Scan { paths } => {
            let report = Scanner::new().scan(&paths)?;
            if out.json {
                out.json(&report)?;
            } else if report.findings.is_empty() {
                out.text(&format!(
                    "{} file(s) scanned ({} encrypted with age, not searched): no cleartext personal data found",
                    report.files, report.encrypted
                ))?;
            } else {
                let rows: Vec<Vec<String>> = report
                    .findings
                    .iter()
                    .map(|f| vec![f.path.display().to_string(), f.location.clone(), f.kind.to_owned()])
                    .collect();
                out.text(&table(&["file", "where", "looks like"], &rows))?;
            }
            anyhow::ensure!(
                report.findings.is_empty(),
                "cleartext personal data found: {} finding(s){}",
                report.findings.len(),
                if report.truncated { " (list truncated)" } else { "" }
            );
            return Ok(());
        }
        _ => {}
    }

    let vault = app::open_vault(config).await?;
    let who = cli_principal();
    match cmd {
        PrivacyCommand::Reveal { handle, purpose } => {
            let revealed = vault.reveal(&who, &handle, &purpose).await?;
            if out.json {
                out.json(&serde_json::json!({ "kind": revealed.kind, "value": revealed.value.expose_secret() }))
            } else {
                out.text(revealed.value.expose_secret())
            }
        }
        PrivacyCommand::Erase { customer } => {
            let r = vault.erase_customer(&who, &customer).await?;
            let text = format!(
                "{} customer {}: {} key(s) and {} token mapping(s) destroyed at {} (audit entry {})",
                if r.repeated { "already erased:" } else { "erased" },
                r.customer,
                r.subjects_destroyed,
                r.tokens_destroyed,
                when(Some(sb_store::time::from_ms(r.completed_at_ms))),
                r.audit_seq
            );
            report(out, &r, &text)
        }
        PrivacyCommand::Receipts { limit } => {
            let receipts = vault.receipts(limit).await?;
            let rows: Vec<Vec<String>> = receipts
                .iter()
                .map(|r| {
                    vec![
                        r.customer.clone(),
                        when(Some(sb_store::time::from_ms(r.completed_at_ms))),
                        r.requested_by.clone(),
                        r.subjects_destroyed.to_string(),
                        r.tokens_destroyed.to_string(),
                        r.audit_seq.to_string(),
                    ]
                })
                .collect();
            report(out, &receipts, &table(&["customer", "erased", "by", "keys", "tokens", "audit entry"], &rows))
        }
        PrivacyCommand::Audit(AuditCommand::Verify) => {
            let r = vault.verify_audit().await?;
            let text = match &r.problem {
                None => format!("audit chain intact: {} entries", r.entries),
                Some(p) => format!("audit chain BROKEN after {} good entries: {p}", r.entries),
            };
            report(out, &r, &text)?;
            anyhow::ensure!(r.intact, "the audit chain is broken");
            Ok(())
        }
        PrivacyCommand::Audit(AuditCommand::List { limit }) => {
            let entries = vault.audit_log(None, limit).await?;
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|e| {
                    vec![
                        e.seq.to_string(),
                        when(Some(sb_store::time::from_ms(e.at_ms))),
                        e.actor.clone(),
                        e.action.clone(),
                        e.kind.clone().unwrap_or_default(),
                        e.target.clone().unwrap_or_default(),
                        e.purpose.clone().unwrap_or_default(),
                        e.outcome.clone(),
                        e.detail.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            let header = ["seq", "at", "actor", "action", "kind", "target", "purpose", "outcome", "detail"];
            report(out, &entries, &table(&header, &rows))
        }
        PrivacyCommand::Keys => {
            let keys = vault.key_versions().await?;
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| {
                    vec![
                        k.purpose.clone(),
                        k.version.to_string(),
                        k.state.clone(),
                        k.subject_keys.to_string(),
                        k.fingerprints.to_string(),
                    ]
                })
                .collect();
            report(out, &keys, &table(&["purpose", "version", "state", "subject keys", "fingerprints"], &rows))
        }
        PrivacyCommand::Rotate | PrivacyCommand::Rewrap => {
            let r = if matches!(cmd, PrivacyCommand::Rotate) {
                vault.rotate(&who).await?
            } else {
                vault.rewrap(&who).await?
            };
            let text = format!(
                "current root key version {}: {} subject key(s) rewrapped, {} fingerprint(s) recomputed",
                r.current_version, r.subject_keys_rewrapped, r.fingerprints_recomputed
            );
            report(out, &r, &text)
        }
        PrivacyCommand::Retire { version } => {
            vault.retire(&who, version).await?;
            report(out, serde_json::json!({ "retired": version }), &format!("root key version {version} retired"))
        }
        PrivacyCommand::EncryptFile { .. } | PrivacyCommand::DecryptFile { .. } | PrivacyCommand::Scan { .. } => {
            unreachable!("handled before the vault is opened")
        }
    }
}

fn report<T: serde::Serialize>(out: Output, value: T, text: &str) -> anyhow::Result<()> {
    if out.json { out.json(&value) } else { out.text(text) }
}

fn default_recipients(config: &Config) -> anyhow::Result<Vec<String>> {
    if !config.privacy.file_recipients.is_empty() {
        return Ok(config.privacy.file_recipients.clone());
    }
    let identity = config.files_identity();
    Ok(vec![files::ensure_identity(&identity).with_context(|| format!("using {}", identity.display()))?])
}
