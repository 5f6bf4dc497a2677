//! A certificate authority and the TLS serving certificates it signs (ECDSA P-256, rcgen with ring),
//! for Harbor's Ingress when the user brings no certificate. Uses the clock and randomness.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use super::TLS_CERT_DAYS;

/// The CA's parameters. Signing later rebuilds them from the common name (rcgen here cannot parse a
/// certificate back): the issuer name and key identifier written into what it signs match the CA's.
fn ca_params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    valid_from_now(&mut params);
    params
}

fn valid_from_now(params: &mut CertificateParams) {
    let now = time::OffsetDateTime::now_utc();
    // A minute of slack for nodes whose clock is slightly behind.
    params.not_before = now - time::Duration::minutes(1);
    params.not_after = now + time::Duration::days(TLS_CERT_DAYS);
}

/// A new CA: `(private key PEM, certificate PEM)`.
pub(super) fn certificate_authority(common_name: &str) -> Result<(String, String), rcgen::Error> {
    let key = KeyPair::generate()?;
    let certificate = ca_params(common_name).self_signed(&key)?;
    Ok((key.serialize_pem(), certificate.pem()))
}

/// A serving certificate for `dns_names` signed by the CA whose key is `ca_key_pem`:
/// `(private key PEM, certificate PEM)`.
pub(super) fn serving_certificate(
    ca_key_pem: &str,
    ca_common_name: &str,
    dns_names: &[String],
) -> Result<(String, String), rcgen::Error> {
    let issuer = Issuer::new(ca_params(ca_common_name), KeyPair::from_pem(ca_key_pem)?);
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(dns_names.to_vec())?;
    params.distinguished_name = DistinguishedName::new();
    if let Some(first) = dns_names.first() {
        params.distinguished_name.push(DnType::CommonName, first);
    }
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    valid_from_now(&mut params);
    let certificate = params.signed_by(&key, &issuer)?;
    Ok((key.serialize_pem(), certificate.pem()))
}
