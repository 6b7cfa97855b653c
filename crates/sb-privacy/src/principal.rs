//! Who asks, and what they may do.

use std::collections::BTreeSet;

/// A person or system acting on the vault, with the permissions its roles grant.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Who: a back-office user name, an API client, `cli:<user>`. Recorded in the audit log.
    pub id: String,
    permissions: BTreeSet<String>,
}

impl Principal {
    /// A principal holding `permissions` (`privacy.reveal.msisdn`, `privacy.reveal.*`, `*`).
    pub fn new(id: impl Into<String>, permissions: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self { id: id.into(), permissions: permissions.into_iter().map(Into::into).collect() }
    }

    /// Whether the principal holds `permission`, directly or through a `prefix.*` wildcard.
    pub fn can(&self, permission: &str) -> bool {
        if self.permissions.contains(permission) || self.permissions.contains("*") {
            return true;
        }
        let mut prefix = permission;
        while let Some((head, _)) = prefix.rsplit_once('.') {
            if self.permissions.contains(&format!("{head}.*")) {
                return true;
            }
            prefix = head;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::Principal;

    #[test]
    fn wildcards_grant_what_they_cover_only() {
        let p = Principal::new("ann", ["privacy.reveal.*"]);
        assert!(p.can("privacy.reveal.msisdn"));
        assert!(!p.can("privacy.erase"));
        assert!(Principal::new("root", ["*"]).can("privacy.erase"));
        assert!(!Principal::new("bob", ["privacy.reveal.imei"]).can("privacy.reveal.msisdn"));
    }
}
