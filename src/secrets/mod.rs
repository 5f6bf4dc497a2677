//! Generates the values of the Secrets render describes (`GeneratedSecret`): random strings, Harbor's
//! token-service RSA key and certificate, htpasswd lines. Uses randomness, so it must never be called
//! from `render`; values are returned to the caller and never logged.

use std::collections::BTreeMap;

use rand::Rng;
use rand::distributions::Alphanumeric;
use rsa::RsaPrivateKey;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};

use crate::render::{GeneratedSecret, SecretGenerator};

/// RSA modulus size of the token-service key.
pub const TOKEN_KEY_BITS: usize = 2048;
/// Common name of the token-service certificate (as Harbor's own installer names it).
pub const TOKEN_CERT_COMMON_NAME: &str = "harbor-token-issuer";
/// Validity of the token-service certificate, in days (the Secret is never rotated automatically).
pub const TOKEN_CERT_DAYS: i64 = 3650;
/// bcrypt cost of htpasswd lines (the registry verifies on every request from core).
pub const HTPASSWD_COST: u32 = 10;

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
}

/// `length` random ASCII letters and digits from the OS-seeded thread RNG.
pub fn random_alphanumeric(length: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(length)
        .map(char::from)
        .collect()
}

/// Every key of `secret` with a freshly generated value.
pub fn generate(secret: &GeneratedSecret) -> Result<BTreeMap<String, String>, SecretError> {
    let mut values = BTreeMap::new();
    for (key, generator) in &secret.keys {
        match generator {
            SecretGenerator::Random { length } => {
                values.insert(key.clone(), random_alphanumeric(*length));
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
        }
    }
    Ok(values)
}

/// An RSA private key (PKCS#8 PEM) and a self-signed certificate for it (PEM).
fn token_key_pair(secret: &str) -> Result<(String, String), SecretError> {
    let rsa_error = |message: String| SecretError::Rsa {
        secret: secret.to_string(),
        message,
    };
    let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, TOKEN_KEY_BITS)
        .map_err(|e| rsa_error(e.to_string()))?;
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| rsa_error(e.to_string()))?;
    let key_pair = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256)
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

#[cfg(test)]
mod tests;
