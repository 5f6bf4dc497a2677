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
    /// A certificate authority: its private key (PKCS#8 PEM) under this key and its self-signed CA
    /// certificate (PEM) under `certificate_key`.
    CertificateAuthority {
        /// Key of the same Secret that receives the CA certificate.
        certificate_key: String,
        /// Subject common name of the CA.
        common_name: String,
    },
    /// A TLS serving certificate for `dns_names`: its private key under this key and the certificate,
    /// signed by the CA of another generated Secret, under `certificate_key`.
    ServingCertificate {
        /// Key of the same Secret that receives the certificate.
        certificate_key: String,
        /// The CA that signs it.
        issuer: Issuer,
        /// Subject alternative names (and the first as common name).
        dns_names: Vec<String>,
    },
    /// A fixed, non-secret value (e.g. the `username` of a `kubernetes.io/basic-auth` Secret).
    Literal {
        /// The value.
        value: String,
    },
    /// The value of `key` of another generated Secret named `secret` (created earlier in the list,
    /// in the Registry's namespace): the same password in a second namespace.
    CopyOf {
        /// Name of the source Secret.
        secret: String,
        /// Key of the source Secret.
        key: String,
    },
}

/// Where a [`SecretGenerator::CertificateAuthority`] keeps its key and certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issuer {
    /// Name of the CA's Secret (same namespace).
    pub secret: String,
    /// Key holding the CA's private key.
    pub key: String,
    /// Key holding the CA's certificate.
    pub certificate_key: String,
    /// The CA's subject common name (the issuer name written into certificates it signs).
    pub common_name: String,
}

/// A ConfigMap key whose value is the public part (a CA certificate) of a generated Secret: render
/// writes [`SecretCopy::placeholder`]; the controller copies the value in before applying.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretCopy {
    /// Namespace of the ConfigMap and the Secret.
    pub namespace: String,
    /// Name of the ConfigMap.
    pub config_map: String,
    /// Key of the ConfigMap.
    pub key: String,
    /// Name of the generated Secret.
    pub secret: String,
    /// Key of the Secret (never a private key).
    pub secret_key: String,
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
    /// Secret `type`: `Opaque`, or `kubernetes.io/tls` for a serving certificate an Ingress uses.
    pub secret_type: String,
    /// Keys in generation order (a key may depend on an earlier one).
    pub keys: Vec<(String, SecretGenerator)>,
}

impl SecretCopy {
    /// What render writes in place of the value: where the controller copies it from.
    pub fn placeholder(&self) -> String {
        format!(
            "<copied by the operator from Secret {} key {}>",
            self.secret, self.secret_key
        )
    }
}

impl GeneratedSecret {
    /// Every data key the generated Secret will hold (including certificate keys).
    pub fn data_keys(&self) -> Vec<&str> {
        let mut keys = Vec::new();
        for (key, generator) in &self.keys {
            keys.push(key.as_str());
            match generator {
                SecretGenerator::TokenKeyPair { certificate_key }
                | SecretGenerator::CertificateAuthority {
                    certificate_key, ..
                }
                | SecretGenerator::ServingCertificate {
                    certificate_key, ..
                } => keys.push(certificate_key.as_str()),
                SecretGenerator::Random { .. }
                | SecretGenerator::Htpasswd { .. }
                | SecretGenerator::Literal { .. }
                | SecretGenerator::CopyOf { .. } => {}
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
                type_: Some(secret.secret_type.clone()),
                string_data: Some(data),
                ..Default::default()
            })
        })
        .collect()
}
