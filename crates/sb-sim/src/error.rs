//! The one error type of the generator.

use std::io;
use std::path::PathBuf;

/// Why a generation run failed. Messages name the path or (password-free) URL involved.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A configuration value is out of range.
    #[error("invalid generator configuration: {field}: {reason}")]
    InvalidConfig {
        /// The offending field of [`crate::GenerateConfig`].
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading or writing a file or folder failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done (`creating folder`, `writing`, …).
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The source database refused a connection or a statement.
    #[error("source database {url}: {action}: {source}")]
    SourceDb {
        /// The database URL with any password replaced by `***`.
        url: String,
        /// What was being done (`connecting`, `inserting customers`, …).
        action: &'static str,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// Writing the manifest as JSON failed.
    #[error("writing manifest {path}: {source}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// The serialisation error.
        source: serde_json::Error,
    },
    /// The generator built an identifier that its own parser refuses: a bug in sb-sim.
    #[error("generated an invalid {what} (a bug in the generator): {source}")]
    InvalidIdentifier {
        /// Which identifier.
        what: &'static str,
        /// Why sb-core refused it.
        source: sb_core::IdError,
    },
    /// A generator thread panicked: a bug in sb-sim.
    #[error("a usage-file generator thread panicked")]
    WorkerPanicked,
}

impl SimError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { action, path, source }
    }

    pub(crate) fn db(url: &str, action: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        let url = redact_url(url);
        move |source| Self::SourceDb { url, action, source }
    }
}

/// `url` with any password (in the user info or a `password=` parameter) replaced by `***`.
///
/// ```
/// assert_eq!(
///     sb_sim::redact_url("postgres://app:s3cret@db:5432/crm"),
///     "postgres://app:***@db:5432/crm"
/// );
/// assert_eq!(sb_sim::redact_url("sqlite:///tmp/x.db?mode=rwc"), "sqlite:///tmp/x.db?mode=rwc");
/// ```
pub fn redact_url(url: &str) -> String {
    redact_query_password(&redact_user_info(url))
}

fn redact_user_info(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    // The last `@` ends the user info: passwords may themselves contain `@` when not escaped.
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let user_info = &authority[..at];
    match user_info.find(':') {
        Some(colon) => format!("{}{}:***{}", &url[..scheme_end + 3], &user_info[..colon], &url[scheme_end + 3 + at..]),
        None => url.to_owned(),
    }
}

fn redact_query_password(url: &str) -> String {
    let Some(query_start) = url.find('?') else {
        return url.to_owned();
    };
    let (base, query) = url.split_at(query_start + 1);
    let params: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
            _ => p.to_owned(),
        })
        .collect();
    format!("{base}{}", params.join("&"))
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn a_password_never_survives_redaction() {
        assert_eq!(redact_url("postgres://u:p@w@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("postgres://h/db?sslmode=off&password=x"), "postgres://h/db?sslmode=off&password=***");
        assert_eq!(redact_url("not a url"), "not a url");
    }
}
