//! Unit tests of secret generation: lengths, charset, htpasswd, token key pair.

use super::*;
use crate::render::{GeneratedSecret, SecretGenerator};

fn secret(keys: Vec<(&str, SecretGenerator)>) -> GeneratedSecret {
    GeneratedSecret {
        name: "test".to_string(),
        namespace: "ns".to_string(),
        labels: Default::default(),
        keys: keys.into_iter().map(|(k, g)| (k.to_string(), g)).collect(),
    }
}

#[test]
fn random_values_have_requested_length_and_alphanumeric_charset() {
    let values = generate(&secret(vec![
        ("secretKey", SecretGenerator::Random { length: 16 }),
        ("csrf", SecretGenerator::Random { length: 32 }),
    ]))
    .expect("generate");
    assert_eq!(values["secretKey"].len(), 16);
    assert_eq!(values["csrf"].len(), 32);
    for value in values.values() {
        assert!(
            value.bytes().all(|b| b.is_ascii_alphanumeric()),
            "non-alphanumeric value"
        );
    }
}

#[test]
fn random_values_differ_between_calls() {
    assert_ne!(random_alphanumeric(32), random_alphanumeric(32));
}

#[test]
fn htpasswd_line_verifies_with_bcrypt_against_generated_password() {
    let values = generate(&secret(vec![
        ("password", SecretGenerator::Random { length: 32 }),
        (
            "htpasswd",
            SecretGenerator::Htpasswd {
                username: "harbor_registry_user".into(),
                password_key: "password".into(),
            },
        ),
    ]))
    .expect("generate");
    let line = values["htpasswd"].trim_end();
    let (user, hash) = line.split_once(':').expect("user:hash");
    assert_eq!(user, "harbor_registry_user");
    assert!(hash.starts_with("$2"), "bcrypt hash expected");
    assert!(bcrypt::verify(&values["password"], hash).expect("verify"));
    assert!(!bcrypt::verify("wrong", hash).expect("verify"));
}

#[test]
fn htpasswd_without_earlier_password_key_is_an_error() {
    let result = generate(&secret(vec![(
        "htpasswd",
        SecretGenerator::Htpasswd {
            username: "u".into(),
            password_key: "password".into(),
        },
    )]));
    assert!(matches!(result, Err(SecretError::MissingKey { .. })));
}

#[test]
fn token_key_pair_certificate_parses_and_matches_private_key() {
    use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
    use x509_parser::pem::parse_x509_pem;

    let values = generate(&secret(vec![(
        "tls.key",
        SecretGenerator::TokenKeyPair {
            certificate_key: "tls.crt".into(),
        },
    )]))
    .expect("generate");
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(&values["tls.key"]).expect("private key parses");
    assert_eq!(rsa::traits::PublicKeyParts::size(&key) * 8, TOKEN_KEY_BITS);
    let (_, pem) = parse_x509_pem(values["tls.crt"].as_bytes()).expect("certificate PEM");
    let certificate = pem.parse_x509().expect("certificate DER");
    let public_der = key
        .to_public_key()
        .to_public_key_der()
        .expect("public key DER");
    assert_eq!(
        certificate.public_key().raw,
        public_der.as_bytes(),
        "certificate is not for the generated key"
    );
    assert!(
        certificate
            .subject()
            .to_string()
            .contains(TOKEN_CERT_COMMON_NAME)
    );
    assert!(
        certificate.validity().is_valid(),
        "certificate not valid now"
    );
}
