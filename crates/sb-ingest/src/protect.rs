//! Personal fields through the vault's policy, a column at a time.

use std::sync::Arc;

use sb_privacy::{Method, PiiKind, Subject, Vault};

use crate::IngestError;

/// Applies `kind`'s policy to a column; `None` stays `None`, and so does a dropped value.
pub async fn column(
    vault: &Vault,
    kind: PiiKind,
    values: &[Option<&str>],
    subjects: &[&Subject],
) -> Result<Vec<Option<Arc<str>>>, IngestError> {
    let method = vault.method(kind);
    match method {
        Method::Token => {
            let items: Vec<(&str, &Subject)> =
                values.iter().zip(subjects).filter_map(|(v, s)| v.map(|v| (v, *s))).collect();
            let mut tokens = vault.tokenize_batch(kind, &items).await?.into_iter();
            Ok(values.iter().map(|v| v.and_then(|_| tokens.next())).collect())
        }
        Method::Drop => Ok(vec![None; values.len()]),
        _ => {
            let items: Vec<(&str, &Subject)> =
                values.iter().zip(subjects).filter_map(|(v, s)| v.map(|v| (v, *s))).collect();
            let mut protected = vault.protect_batch(kind, &items).await?.into_iter();
            Ok(values.iter().map(|v| v.and_then(|_| protected.next().flatten().map(Arc::from))).collect())
        }
    }
}
