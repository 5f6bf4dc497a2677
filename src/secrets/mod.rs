//! Generates the values of the Secrets render describes (`GeneratedSecret`): random strings, Harbor's
//! token-service RSA key (PKCS#1, what core's libtrust reads) and certificate, htpasswd lines, a CA
//! and the TLS certificates it signs.
//! Uses randomness, so it must never be called from `render`; values are returned to the caller and
//! never logged.

use std::collections::BTreeMap;

use rand::Rng;
use rand::distributions::Alphanumeric;
use rsa::RsaPrivateKey;
use rsa::pkcs1::{EncodeRsaPrivateKey, LineEnding};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};

use crate::render::{GeneratedSecret, SecretGenerator};

/// RSA modulus size of the token-service key.
pub const TOKEN_KEY_BITS: usize = 2048;
/// Common name of the token-service certificate (as Harbor's own installer names it).
pub const TOKEN_CERT_COMMON_NAME: &str = "harbor-token-issuer";
/// Validity of the token-service certificate, in days (the Secret is never rotated automatically).
pub const TOKEN_CERT_DAYS: i64 = 3650;
/// bcrypt cost of htpasswd lines (the registry verifies on every request from core).
pub const HTPASSWD_COST: u32 = 10;

/// Validity of the generated CA and serving certificate, in days (never rotated automatically:
/// delete the serving Secret to re-issue it from the same CA).
pub const TLS_CERT_DAYS: i64 = 3650;

/// Why a secret could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// An htpasswd key refers to a password key that is not generated before it.
    #[error("secret {secret}: key {key} needs key {missing}, which is not generated before it")]
    MissingKey {
        secret: String,
        key: String,
        missing: String,
    },
    /// RSA key generation or encoding failed.
    #[error("secret {secret}: RSA key: {message}")]
    Rsa { secret: String, message: String },
    /// Certificate creation failed.
    #[error("secret {secret}: certificate: {0}", .source)]
    Certificate {
        secret: String,
        source: rcgen::Error,
    },
    /// bcrypt failed.
    #[error("secret {secret}: htpasswd: {source}")]
    Bcrypt {
        secret: String,
        source: bcrypt::BcryptError,
    },
    /// The Secret a copied key comes from (or that key) is not available.
    #[error("secret {secret}: its source Secret {from} (key {key}) is not available")]
    MissingSource {
        secret: String,
        from: String,
        key: String,
    },
    /// A serving certificate's CA Secret (or one of its keys) is not available.
    #[error(
        "secret {secret}: its CA Secret {issuer} (keys {key}, {certificate_key}) is not available"
    )]
    MissingIssuer {
        secret: String,
        issuer: String,
        key: String,
        certificate_key: String,
    },
}

/// `length` random ASCII letters and digits from the OS-seeded thread RNG.
pub fn random_alphanumeric(length: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(length)
        .map(char::from)
        .collect()
}

/// Every key of `secret` with a freshly generated value (a secret without a serving certificate).
pub fn generate(secret: &GeneratedSecret) -> Result<BTreeMap<String, String>, SecretError> {
    generate_with(secret, &|_| None)
}

/// Every key of `secret` with a freshly generated value; `issuer_values` returns the values of
/// another generated Secret by name (the CA a serving certificate is signed by, or the source of a
/// copied key).
pub fn generate_with(
    secret: &GeneratedSecret,
    issuer_values: &dyn Fn(&str) -> Option<BTreeMap<String, String>>,
) -> Result<BTreeMap<String, String>, SecretError> {
    let mut values = BTreeMap::new();
    for (key, generator) in &secret.keys {
        match generator {
            SecretGenerator::Random { length } => {
                values.insert(key.clone(), random_alphanumeric(*length));
            }
            SecretGenerator::Literal { value } => {
                values.insert(key.clone(), value.clone());
            }
            SecretGenerator::CopyOf {
                secret: source,
                key: source_key,
            } => {
                let value = issuer_values(source)
                    .and_then(|values| values.get(source_key).cloned())
                    .ok_or_else(|| SecretError::MissingSource {
                        secret: secret.name.clone(),
                        from: source.clone(),
                        key: source_key.clone(),
                    })?;
                values.insert(key.clone(), value);
            }
            SecretGenerator::TokenKeyPair { certificate_key } => {
                let (private_key, certificate) = token_key_pair(&secret.name)?;
                values.insert(key.clone(), private_key);
                values.insert(certificate_key.clone(), certificate);
            }
            SecretGenerator::Htpasswd {
                username,
                password_key,
            } => {
                let password = values
                    .get(password_key)
                    .ok_or_else(|| SecretError::MissingKey {
                        secret: secret.name.clone(),
                        key: key.clone(),
                        missing: password_key.clone(),
                    })?;
                let hash = bcrypt::hash(password, HTPASSWD_COST).map_err(|source| {
                    SecretError::Bcrypt {
                        secret: secret.name.clone(),
                        source,
                    }
                })?;
                values.insert(key.clone(), format!("{username}:{hash}\n"));
            }
            SecretGenerator::CertificateAuthority {
                certificate_key,
                common_name,
            } => {
                let (private_key, certificate) = tls::certificate_authority(common_name)
                    .map_err(|source| certificate_error(&secret.name, source))?;
                values.insert(key.clone(), private_key);
                values.insert(certificate_key.clone(), certificate);
            }
            SecretGenerator::ServingCertificate {
                certificate_key,
                issuer,
                dns_names,
            } => {
                let missing = || SecretError::MissingIssuer {
                    secret: secret.name.clone(),
                    issuer: issuer.secret.clone(),
                    key: issuer.key.clone(),
                    certificate_key: issuer.certificate_key.clone(),
                };
                let ca = issuer_values(&issuer.secret).ok_or_else(missing)?;
                let ca_key = ca.get(&issuer.key).ok_or_else(missing)?;
                let (private_key, certificate) =
                    tls::serving_certificate(ca_key, &issuer.common_name, dns_names)
                        .map_err(|source| certificate_error(&secret.name, source))?;
                values.insert(key.clone(), private_key);
                values.insert(certificate_key.clone(), certificate);
            }
        }
    }
    Ok(values)
}

fn certificate_error(secret: &str, source: rcgen::Error) -> SecretError {
    SecretError::Certificate {
        secret: secret.to_string(),
        source,
    }
}

/// PEM label of a PKCS#8 private key (what this operator generated before it wrote PKCS#1).
const PKCS8_LABEL: &str = "-----BEGIN PRIVATE KEY-----";

/// An RSA private key (PKCS#1 PEM, `BEGIN RSA PRIVATE KEY`) and a self-signed certificate for it
/// (PEM). PKCS#1 because Harbor core reads the token-signing key with docker/libtrust
/// (`UnmarshalPrivateKeyPEM`, `src/core/service/token/authutils.go`), which accepts only
/// `RSA PRIVATE KEY` and `EC PRIVATE KEY` blocks: a PKCS#8 key fails every token request with
/// "unable to get PrivateKey from PEM type: PRIVATE KEY". The chart's `genCA` writes PKCS#1 too.
fn token_key_pair(secret: &str) -> Result<(String, String), SecretError> {
    let rsa_error = |message: String| SecretError::Rsa {
        secret: secret.to_string(),
        message,
    };
    let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, TOKEN_KEY_BITS)
        .map_err(|e| rsa_error(e.to_string()))?;
    let pem = key
        .to_pkcs1_pem(LineEnding::LF)
        .map_err(|e| rsa_error(e.to_string()))?;
    // rcgen signs with a PKCS#8 key; the same key, only its encoding differs.
    let pkcs8 = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| rsa_error(e.to_string()))?;
    let key_pair = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256)
        .map_err(|source| SecretError::Certificate {
            secret: secret.to_string(),
            source,
        })?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, TOKEN_CERT_COMMON_NAME);
    let not_before = time::OffsetDateTime::now_utc();
    params.not_before = not_before;
    params.not_after = not_before + time::Duration::days(TOKEN_CERT_DAYS);
    let certificate = params
        .self_signed(&key_pair)
        .map_err(|source| SecretError::Certificate {
            secret: secret.to_string(),
            source,
        })?;
    Ok((pem.to_string(), certificate.pem()))
}

/// The same RSA key re-encoded as PKCS#1 when `pem` is a PKCS#8 (`BEGIN PRIVATE KEY`) RSA key, as
/// token Secrets generated before PKCS#1 hold; `None` when there is nothing to rewrite (already
/// PKCS#1, or something else this function leaves alone). The certificate stays valid: the key is
/// the same, only its encoding changes. The error never contains key material.
pub fn token_key_as_pkcs1(secret: &str, pem: &str) -> Result<Option<String>, SecretError> {
    if !pem.trim_start().starts_with(PKCS8_LABEL) {
        return Ok(None);
    }
    let rsa_error = |message: &str| SecretError::Rsa {
        secret: secret.to_string(),
        message: message.to_string(),
    };
    let key = RsaPrivateKey::from_pkcs8_pem(pem.trim())
        .map_err(|_| rsa_error("the PKCS#8 token key is not a readable RSA key"))?;
    let pkcs1 = key
        .to_pkcs1_pem(LineEnding::LF)
        .map_err(|_| rsa_error("encoding the token key as PKCS#1 failed"))?;
    Ok(Some(pkcs1.to_string()))
}

mod tls;

#[cfg(test)]
mod tests;
