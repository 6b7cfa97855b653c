//! Roles and permissions, as data.
//!
//! A permission is a dotted name (`jobs.run`, `privacy.reveal.msisdn`). A role is a list of
//! permissions, which may end in `.*` (`privacy.reveal.*`) or be `*`. The built-in roles are
//! in [`BUILT_IN_ROLES`]; `[auth.roles]` adds roles or replaces a built-in one's list.
//! Every route declares the permission it needs ([`crate::routes`]).

use std::collections::{BTreeMap, BTreeSet};

/// Every permission the back office and the API check, with what it allows.
pub const PERMISSIONS: &[(&str, &str)] = &[
    ("dashboard.view", "see the dashboard"),
    ("jobs.view", "see jobs and their runs"),
    ("jobs.run", "run a job now"),
    ("users.view", "see back-office users and roles"),
    ("users.manage", "add users, change their role, disable them"),
    ("apikeys.view", "see API clients"),
    ("apikeys.manage", "create and revoke API keys"),
    ("monitoring.view", "see the monitoring console"),
    ("audit.view", "read the privacy audit log and its verification"),
    ("privacy.view", "see erasure requests and their receipts"),
    ("privacy.tokenize", "turn personal data into tokens (API)"),
    ("privacy.reveal", "open the reveal form; each kind needs privacy.reveal.<kind>"),
    ("customer.self", "a customer app user acting on their own data"),
];

/// The built-in roles. Administrators manage the system but do not see personal data:
/// revealing and erasing belong to the privacy officer.
pub const BUILT_IN_ROLES: &[(&str, &[&str])] = &[
    ("admin", &["dashboard.view", "jobs.*", "users.*", "apikeys.*", "monitoring.view", "audit.view", "privacy.view"]),
    ("operations", &["dashboard.view", "jobs.view", "jobs.run", "monitoring.view"]),
    ("marketing", &["dashboard.view", "campaigns.*"]),
    ("loyalty_operator", &["dashboard.view", "loyalty.*"]),
    ("qa_evaluator", &["dashboard.view", "recordings.evaluate"]),
    ("privacy_officer", &["dashboard.view", "privacy.view", "privacy.reveal.*", "privacy.erase", "audit.view"]),
    ("auditor", &["dashboard.view", "audit.view", "jobs.view", "users.view", "apikeys.view", "monitoring.view"]),
];

/// Every permission name known here and in the vault, for forms and checks.
pub fn all_permissions() -> Vec<String> {
    let mut all: BTreeSet<String> = PERMISSIONS.iter().map(|(p, _)| (*p).to_owned()).collect();
    all.extend(sb_privacy::permissions());
    all.into_iter().collect()
}

/// Whether holding `held` grants `required`.
///
/// `*` grants everything; `a.*` grants `a` and everything under it; a permission grants
/// itself; and a permission under `required` grants it too (`privacy.reveal.msisdn` opens the
/// route that needs `privacy.reveal`, where the vault then checks the kind).
pub fn grants(held: &str, required: &str) -> bool {
    if held == "*" || held == required {
        return true;
    }
    if let Some(prefix) = held.strip_suffix(".*")
        && (required == prefix || required.strip_prefix(prefix).is_some_and(|r| r.starts_with('.')))
    {
        return true;
    }
    held.strip_prefix(required).is_some_and(|rest| rest.starts_with('.'))
}

/// A set of held permissions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions(BTreeSet<String>);

impl Permissions {
    /// The set of `perms`.
    pub fn new(perms: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self(perms.into_iter().map(Into::into).collect())
    }

    /// Whether any held permission grants `required`.
    pub fn allows(&self, required: &str) -> bool {
        self.0.iter().any(|h| grants(h, required))
    }

    /// The held permissions, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// The vault's view of this caller.
    pub fn principal(&self, id: &str) -> sb_privacy::Principal {
        sb_privacy::Principal::new(id, self.0.iter().cloned())
    }
}

/// The role table in force: built-in roles, then `[auth.roles]`.
#[derive(Debug, Clone)]
pub struct Roles(BTreeMap<String, Vec<String>>);

impl Roles {
    /// The built-in roles with `extra` added (a built-in name in `extra` replaces it).
    pub fn new(extra: &BTreeMap<String, Vec<String>>) -> Result<Self, String> {
        let mut roles: BTreeMap<String, Vec<String>> = BUILT_IN_ROLES
            .iter()
            .map(|(r, p)| ((*r).to_owned(), p.iter().map(|s| (*s).to_owned()).collect()))
            .collect();
        for (name, perms) in extra {
            let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !ok {
                return Err(format!("auth.roles.{name}: a role name is lower-case letters, digits and _"));
            }
            roles.insert(name.clone(), perms.clone());
        }
        Ok(Self(roles))
    }

    /// Whether `role` exists.
    pub fn contains(&self, role: &str) -> bool {
        self.0.contains_key(role)
    }

    /// The permissions of `role`; none for an unknown role (a role removed from the config).
    pub fn permissions(&self, role: &str) -> Permissions {
        Permissions::new(self.0.get(role).cloned().unwrap_or_default())
    }

    /// Role names and their permissions, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// Role names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_and_families_grant_what_they_cover_and_nothing_else() {
        assert!(grants("*", "users.manage"));
        assert!(grants("jobs.*", "jobs.run"));
        assert!(!grants("jobs.*", "jobsx.run"));
        assert!(grants("privacy.reveal.msisdn", "privacy.reveal"));
        assert!(!grants("privacy.reveal", "privacy.reveal.msisdn"));
        assert!(!grants("jobs.view", "jobs.run"));
        assert!(grants("privacy.reveal.*", "privacy.reveal"));
    }

    #[test]
    fn the_admin_cannot_reveal_and_the_privacy_officer_can() {
        let roles = Roles::new(&BTreeMap::new()).unwrap();
        assert!(!roles.permissions("admin").allows("privacy.reveal"));
        assert!(roles.permissions("admin").allows("users.manage"));
        assert!(roles.permissions("privacy_officer").principal("po").can("privacy.reveal.msisdn"));
        assert!(!roles.permissions("auditor").allows("jobs.run"));
        assert!(!roles.permissions("no_such_role").allows("dashboard.view"));
    }

    #[test]
    fn config_roles_are_added_and_bad_names_refused() {
        let extra = BTreeMap::from([("campaign_manager".to_owned(), vec!["campaigns.*".to_owned()])]);
        let roles = Roles::new(&extra).unwrap();
        assert!(roles.permissions("campaign_manager").allows("campaigns.send"));
        assert!(roles.contains("auditor"));
        assert!(Roles::new(&BTreeMap::from([("Bad Name".to_owned(), vec![])])).is_err());
    }
}
