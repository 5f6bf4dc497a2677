//! Unit tests of secret generation: lengths, charset, htpasswd, token key pair (PKCS#1) and its
//! one-time rewrite from PKCS#8.

use super::*;
use crate::render::{GeneratedSecret, SecretGenerator};

fn secret(keys: Vec<(&str, SecretGenerator)>) -> GeneratedSecret {
    GeneratedSecret {
        name: "test".to_string(),
        namespace: "ns".to_string(),
        labels: Default::default(),
        secret_type: "Opaque".to_string(),
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

/// The public key (SubjectPublicKeyInfo DER) of a certificate PEM.
fn certificate_public_key(certificate_pem: &str) -> Vec<u8> {
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(certificate_pem.as_bytes()).expect("certificate PEM");
    let certificate = pem.parse_x509().expect("certificate DER");
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
    certificate.public_key().raw.to_vec()
}

fn public_key_der(key: &rsa::RsaPrivateKey) -> Vec<u8> {
    use rsa::pkcs8::EncodePublicKey;
    key.to_public_key()
        .to_public_key_der()
        .expect("public key DER")
        .as_bytes()
        .to_vec()
}

/// Harbor core reads the token key with libtrust, which takes `RSA PRIVATE KEY` (PKCS#1) or EC keys
/// only: the key must be PKCS#1 and belong to the certificate the registry trusts.
#[test]
fn token_key_is_pkcs1_and_matches_its_certificate() {
    use rsa::pkcs1::DecodeRsaPrivateKey;

    let values = generate(&secret(vec![(
        "tls.key",
        SecretGenerator::TokenKeyPair {
            certificate_key: "tls.crt".into(),
        },
    )]))
    .expect("generate");
    let pem = &values["tls.key"];
    assert!(
        pem.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"),
        "not a PKCS#1 PEM block: {}",
        pem.lines().next().unwrap_or_default()
    );
    let key = rsa::RsaPrivateKey::from_pkcs1_pem(pem).expect("parses as PKCS#1");
    assert_eq!(rsa::traits::PublicKeyParts::size(&key) * 8, TOKEN_KEY_BITS);
    assert_eq!(
        certificate_public_key(&values["tls.crt"]),
        public_key_der(&key),
        "certificate is not for the generated key"
    );
    assert!(
        token_key_as_pkcs1("test", pem).expect("checks").is_none(),
        "a PKCS#1 key is never rewritten"
    );
}

/// A token Secret generated before PKCS#1 (PKCS#8) is rewritten to PKCS#1 with the same key, so the
/// certificate beside it still matches.
#[test]
fn pkcs8_token_key_is_rewritten_to_pkcs1_with_the_same_key() {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::EncodePrivateKey;

    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).expect("key");
    let pkcs8 = key
        .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
        .expect("PKCS#8")
        .to_string();
    assert!(pkcs8.starts_with("-----BEGIN PRIVATE KEY-----"));
    let rewritten = token_key_as_pkcs1("test", &pkcs8)
        .expect("converts")
        .expect("a PKCS#8 key is rewritten");
    assert!(rewritten.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
    let parsed = rsa::RsaPrivateKey::from_pkcs1_pem(&rewritten).expect("parses as PKCS#1");
    assert_eq!(parsed, key, "the key itself must not change");
    assert!(
        token_key_as_pkcs1("test", &rewritten)
            .expect("checks")
            .is_none()
    );
    let error = token_key_as_pkcs1(
        "test",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .expect_err("garbage is refused");
    assert!(
        error.to_string().contains("not a readable RSA key"),
        "{error}"
    );
}

fn tls_pair(host: &str) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let ca = generate(&secret(vec![(
        "ca.key",
        SecretGenerator::CertificateAuthority {
            certificate_key: "ca.crt".into(),
            common_name: "test CA".into(),
        },
    )]))
    .expect("CA");
    let issuer = crate::render::Issuer {
        secret: "ca-secret".into(),
        key: "ca.key".into(),
        certificate_key: "ca.crt".into(),
        common_name: "test CA".into(),
    };
    let serving = secret(vec![(
        "tls.key",
        SecretGenerator::ServingCertificate {
            certificate_key: "tls.crt".into(),
            issuer,
            dns_names: vec![host.to_string()],
        },
    )]);
    assert!(
        matches!(generate(&serving), Err(SecretError::MissingIssuer { .. })),
        "a serving certificate needs its CA"
    );
    let values = generate_with(&serving, &|name| (name == "ca-secret").then(|| ca.clone()))
        .expect("serving certificate");
    (ca, values)
}

/// What containerd, Kyverno and `migrate` do: verify the Ingress' certificate for the host against
/// the exported CA alone (rustls' WebPKI verifier, as in `migrate`).
#[test]
fn serving_certificate_verifies_for_its_host_against_the_generated_ca_only() {
    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

    let host = "harbor.ai-platform.localhost";
    let (ca, serving) = tls_pair(host);
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let verify = |ca_pem: &str, name: &str| {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("CA PEM"))
            .expect("CA accepted as a root");
        let verifier = WebPkiServerVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            provider.clone(),
        )
        .build()
        .expect("verifier");
        let leaf = CertificateDer::from_pem_slice(serving["tls.crt"].as_bytes()).expect("leaf");
        verifier.verify_server_cert(
            &leaf,
            &[],
            &ServerName::try_from(name.to_string()).expect("name"),
            &[],
            UnixTime::now(),
        )
    };
    verify(&ca["ca.crt"], host).expect("chain verifies for the host");
    assert!(
        verify(&ca["ca.crt"], "other.localhost").is_err(),
        "wrong host accepted"
    );
    let (other_ca, _) = tls_pair(host);
    assert!(
        verify(&other_ca["ca.crt"], host).is_err(),
        "a different CA must not verify it"
    );
    assert!(serving["tls.key"].contains("PRIVATE KEY"));
    assert!(ca["ca.key"].contains("PRIVATE KEY"));
}
