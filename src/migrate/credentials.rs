//! Registry credentials: from a docker-config-json or `user:pass` file, or from environment variables.
//! The password is never printed: `Debug` redacts it and nothing here logs.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;

/// A username and password (or token used as password).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Account name.
    pub username: String,
    password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Why credentials could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The file cannot be read.
    #[error("cannot read credentials file {0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// The file is neither docker-config-json nor `user:pass`.
    #[error("credentials file {0}: {1}")]
    Format(PathBuf, String),
}

impl Credentials {
    /// Credentials from their parts.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The secret; only for building an Authorization header.
    pub(crate) fn password(&self) -> &str {
        &self.password
    }

    /// Reads `path`: a docker config (`{"auths": {"host": {"auth": base64(user:pass)}}}`, the entry for
    /// `registry_host` or the only entry) or a single `user:pass` line.
    pub fn from_file(path: &Path, registry_host: &str) -> Result<Self, CredentialsError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CredentialsError::Io(path.to_path_buf(), e))?;
        let format_error =
            |message: &str| CredentialsError::Format(path.to_path_buf(), message.to_string());
        let trimmed = text.trim();
        if trimmed.starts_with('{') {
            let config: serde_json::Value =
                serde_json::from_str(trimmed).map_err(|_| format_error("not valid JSON"))?;
            let auths = config
                .get("auths")
                .and_then(|a| a.as_object())
                .ok_or_else(|| format_error("no \"auths\" object"))?;
            let entry = auths
                .iter()
                .find(|(key, _)| host_of(key) == registry_host)
                .or_else(|| {
                    if auths.len() == 1 {
                        auths.iter().next()
                    } else {
                        None
                    }
                })
                .map(|(_, v)| v)
                .ok_or_else(|| {
                    format_error(&format!("no entry for {registry_host} in \"auths\""))
                })?;
            if let (Some(user), Some(pass)) = (
                entry.get("username").and_then(|v| v.as_str()),
                entry.get("password").and_then(|v| v.as_str()),
            ) {
                return Ok(Credentials::new(user, pass));
            }
            let encoded = entry
                .get("auth")
                .and_then(|v| v.as_str())
                .ok_or_else(|| format_error("entry has no \"auth\""))?;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|_| format_error("\"auth\" is not base64"))?;
            let pair =
                String::from_utf8(decoded).map_err(|_| format_error("\"auth\" is not UTF-8"))?;
            split_pair(&pair).ok_or_else(|| format_error("\"auth\" is not user:password"))
        } else {
            let line = trimmed.lines().next().unwrap_or_default();
            split_pair(line).ok_or_else(|| format_error("expected a single user:password line"))
        }
    }

    /// `<PREFIX>_USERNAME` and `<PREFIX>_PASSWORD` through `lookup` (both must be set).
    pub fn from_env(prefix: &str, lookup: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let username = lookup(&format!("{prefix}_USERNAME")).filter(|u| !u.is_empty())?;
        let password = lookup(&format!("{prefix}_PASSWORD"))?;
        Some(Credentials::new(username, password))
    }
}

fn split_pair(pair: &str) -> Option<Credentials> {
    let (user, pass) = pair.split_once(':')?;
    (!user.is_empty()).then(|| Credentials::new(user, pass))
}

/// `https://host:port/v1/` → `host:port`.
fn host_of(key: &str) -> &str {
    let without_scheme = key.split_once("://").map_or(key, |(_, rest)| rest);
    without_scheme.split('/').next().unwrap_or(without_scheme)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(contents: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), contents).expect("write");
        file
    }

    #[test]
    fn reads_user_pass_file() {
        let file = write("alice:s3cr:et\n");
        assert_eq!(
            Credentials::from_file(file.path(), "x").expect("parse"),
            Credentials::new("alice", "s3cr:et")
        );
    }

    #[test]
    fn reads_docker_config_entry_for_host() {
        let auth = base64::engine::general_purpose::STANDARD.encode("bob:pw");
        let file = write(&format!(
            r#"{{"auths": {{"other:5000": {{"auth": "eDp5"}}, "https://harbor.local/v2/": {{"auth": "{auth}"}}}}}}"#
        ));
        assert_eq!(
            Credentials::from_file(file.path(), "harbor.local").expect("parse"),
            Credentials::new("bob", "pw")
        );
    }

    #[test]
    fn docker_config_without_matching_entry_is_an_error() {
        let file = write(r#"{"auths": {"a": {"auth": "eDp5"}, "b": {"auth": "eDp5"}}}"#);
        assert!(Credentials::from_file(file.path(), "c").is_err());
    }

    #[test]
    fn env_needs_both_variables() {
        let env = |k: &str| (k == "MIGRATE_TO_USERNAME").then(|| "u".to_string());
        assert_eq!(Credentials::from_env("MIGRATE_TO", env), None);
        let env = |k: &str| Some(format!("{k}-value"));
        let creds = Credentials::from_env("MIGRATE_TO", env).expect("both set");
        assert_eq!(creds.username, "MIGRATE_TO_USERNAME-value");
    }

    #[test]
    fn debug_redacts_password() {
        let shown = format!("{:?}", Credentials::new("u", "hunter2"));
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
