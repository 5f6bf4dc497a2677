//! Secrets the operator must generate, described as data (`GeneratedSecret`), plus placeholder Secret
//! objects for the `render` CLI. Pure: no value is ever produced here; `crate::secrets` generates them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{RenderError, RenderedObject};

/// Value every key of a placeholder Secret carries in `render` output.
pub const PLACEHOLDER: &str = "<generated-by-operator>";

/// How one key of a generated Secret gets its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretGenerator {
    /// `length` random ASCII letters and digits.
    Random {
        /// Number of characters.
        length: usize,
    },
    /// An RSA private key (PKCS#8 PEM) under this key, and a self-signed certificate for it (PEM)
    /// under `certificate_key`: Harbor's token service signs with the key; the registry trusts the cert.
    TokenKeyPair {
        /// Key of the same Secret that receives the certificate.
        certificate_key: String,
    },
    /// An htpasswd line (bcrypt) for `username`, whose password is the value of `password_key` of the
    /// same Secret (generated earlier in the list).
    Htpasswd {
        /// User name of the line.
        username: String,
        /// Key of the same Secret holding the password.
        password_key: String,
    },
}

/// A Secret the controller creates once if absent and never updates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratedSecret {
    /// Name of the Secret.
    pub name: String,
    /// Namespace of the Secret.
    pub namespace: String,
    /// Labels (the owner's selector labels, so prune and cleanup find it).
    pub labels: BTreeMap<String, String>,
    /// Keys in generation order (a key may depend on an earlier one).
    pub keys: Vec<(String, SecretGenerator)>,
}

impl GeneratedSecret {
    /// Every data key the generated Secret will hold (including certificate keys).
    pub fn data_keys(&self) -> Vec<&str> {
        let mut keys = Vec::new();
        for (key, generator) in &self.keys {
            keys.push(key.as_str());
            if let SecretGenerator::TokenKeyPair { certificate_key } = generator {
                keys.push(certificate_key.as_str());
            }
        }
        keys
    }
}

/// Secret objects whose every value is [`PLACEHOLDER`], for `render` output; never real values.
pub fn placeholder_secrets(
    secrets: &[GeneratedSecret],
) -> Result<Vec<RenderedObject>, RenderError> {
    secrets
        .iter()
        .map(|secret| {
            let data = secret
                .data_keys()
                .into_iter()
                .map(|k| (k.to_string(), PLACEHOLDER.to_string()))
                .collect();
            RenderedObject::from_typed(Secret {
                metadata: ObjectMeta {
                    name: Some(secret.name.clone()),
                    namespace: Some(secret.namespace.clone()),
                    labels: Some(secret.labels.clone()),
                    ..Default::default()
                },
                type_: Some("Opaque".to_string()),
                string_data: Some(data),
                ..Default::default()
            })
        })
        .collect()
}
