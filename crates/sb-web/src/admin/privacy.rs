//! Privacy: reveal a token for a stated purpose (shown once, audited), and erasure requests
//! with their receipts.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use sb_privacy::ErasureReceipt;
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::{Layout, ValidForm, render, render_with};
use crate::app::AppState;
use crate::error::{FieldErrors, WebError, WebResult};
use crate::routes::CallerExt;

#[derive(Template)]
#[template(path = "privacy.html")]
struct PrivacyPage {
    layout: Layout,
    can_reveal: bool,
    can_erase: bool,
    receipts: Vec<ErasureReceipt>,
    errors: FieldErrors,
    handle: String,
    purpose: String,
    revealed: Option<(String, String)>,
    erased: Option<ErasureReceipt>,
}

impl PrivacyPage {
    fn at(&self, ms: &i64) -> String {
        super::when(Some(sb_store::time::from_ms(*ms)))
    }
}

async fn page(state: &AppState, caller: &CallerExt) -> WebResult<PrivacyPage> {
    let perms = caller.permissions();
    Ok(PrivacyPage {
        layout: Layout::new(caller, "Reveal & erasure", "/admin/privacy"),
        can_reveal: perms.allows("privacy.reveal"),
        can_erase: perms.allows("privacy.erase"),
        receipts: state.vault()?.receipts(50).await?,
        errors: FieldErrors::new(),
        handle: String::new(),
        purpose: String::new(),
        revealed: None,
        erased: None,
    })
}

/// `GET /admin/privacy`.
pub async fn show(State(state): State<AppState>, caller: CallerExt) -> WebResult<Response> {
    render(&page(&state, &caller).await?)
}

/// The reveal form.
#[derive(Debug, Deserialize)]
pub struct RevealForm {
    #[serde(default)]
    handle: String,
    #[serde(default)]
    purpose: String,
}

/// `POST /admin/privacy/reveal`: the value is in this response only (never stored, never
/// cached: every response is `Cache-Control: no-store`).
pub async fn reveal(
    State(state): State<AppState>,
    caller: CallerExt,
    ValidForm(form): ValidForm<RevealForm>,
) -> WebResult<Response> {
    let mut p = page(&state, &caller).await?;
    let handle = form.handle.trim().to_owned();
    let purpose = form.purpose.trim().to_owned();
    if handle.is_empty() {
        p.errors.insert("handle".into(), "Paste the token to reveal.".into());
    }
    if purpose.len() < 5 {
        p.errors.insert("purpose".into(), "State why you need the value (at least a few words); it is audited.".into());
    }
    if p.errors.is_empty() {
        let principal = caller.permissions().principal(&caller.audit_id());
        match state.vault()?.reveal(&principal, &handle, &purpose).await {
            Ok(r) => {
                p.revealed = Some((r.kind.to_string(), r.value.expose_secret().to_owned()));
                return render(&p);
            }
            Err(sb_privacy::PrivacyError::Denied(_)) => {
                p.errors.insert(
                    "handle".into(),
                    "Your role may not reveal this kind of data. The refusal was audited.".into(),
                );
            }
            Err(sb_privacy::PrivacyError::UnknownToken) => {
                p.errors.insert("handle".into(), "Unknown token: it never existed, or its subject was erased.".into());
            }
            Err(sb_privacy::PrivacyError::Invalid(m)) => {
                p.errors.insert("handle".into(), format!("Not a token: {m}."));
            }
            Err(e) => return Err(WebError::from(e)),
        }
    }
    p.handle = handle;
    p.purpose = purpose;
    let status = if matches!(p.errors.get("handle"), Some(m) if m.starts_with("Your role")) {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    render_with(status, &p)
}

/// The erasure form.
#[derive(Debug, Deserialize)]
pub struct EraseForm {
    #[serde(default)]
    customer: String,
}

/// `POST /admin/privacy/erasures`: erases a customer and shows the receipt.
pub async fn erase(
    State(state): State<AppState>,
    caller: CallerExt,
    ValidForm(form): ValidForm<EraseForm>,
) -> WebResult<Response> {
    let customer = form.customer.trim();
    if customer.is_empty() || customer.len() > 100 {
        let mut p = page(&state, &caller).await?;
        p.errors.insert("customer".into(), "The operator's customer id (1 to 100 characters).".into());
        return render_with(StatusCode::UNPROCESSABLE_ENTITY, &p);
    }
    let principal = caller.permissions().principal(&caller.audit_id());
    let receipt = state.vault()?.erase_customer(&principal, customer).await?;
    let mut p = page(&state, &caller).await?;
    p.erased = Some(receipt);
    render(&p)
}
