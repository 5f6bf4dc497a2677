//! Kubernetes resource quantities (`50Gi`, `500m`, `1e3`) as the API server parses them, and the checks
//! of volume sizes and container resources built on that. Pure string inspection; no unit conversion.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::{Errors, check_entries, check_length, is_dns_subdomain};
use crate::crd::VolumeSpec;
use crate::crd::schema::{MAX_QUANTITY, MAX_RESOURCES};

/// Sign of a quantity that parses; `None` when the API server would reject the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QuantitySign {
    Negative,
    Zero,
    Positive,
}

/// Parse `<sign>?<number><suffix>` per apimachinery's `resource.ParseQuantity` grammar:
/// number `1`, `1.5`, `1.` or `.5`; suffix one of `Ki Mi Gi Ti Pi Ei`, `n u m k M G T P E`, none,
/// or a decimal exponent `e<int>`/`E<int>`.
pub(crate) fn quantity_sign(text: &str) -> Option<QuantitySign> {
    let (negative, unsigned) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let number_end = unsigned
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(number_end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return None;
    }
    if !is_suffix(suffix) {
        return None;
    }
    let nonzero = number.bytes().any(|b| (b'1'..=b'9').contains(&b));
    Some(match (nonzero, negative) {
        (false, _) => QuantitySign::Zero,
        (true, true) => QuantitySign::Negative,
        (true, false) => QuantitySign::Positive,
    })
}

fn is_suffix(suffix: &str) -> bool {
    const NAMED: [&str; 16] = [
        "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E",
    ];
    if NAMED.contains(&suffix) {
        return true;
    }
    let Some(exponent) = suffix
        .strip_prefix('e')
        .or_else(|| suffix.strip_prefix('E'))
    else {
        return false;
    };
    let digits = exponent
        .strip_prefix('-')
        .or_else(|| exponent.strip_prefix('+'))
        .unwrap_or(exponent);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// A volume's size must be a positive quantity and its StorageClass a valid name.
pub(crate) fn check_volume(errors: &mut Errors, field: &str, volume: &VolumeSpec) {
    let size = &volume.size.0;
    check_length(errors, &format!("{field}.size"), size, MAX_QUANTITY);
    match quantity_sign(size) {
        Some(QuantitySign::Positive) => {}
        Some(_) => errors.add(
            format!("{field}.size"),
            format!("{size:?} must be greater than zero, e.g. 10Gi"),
        ),
        None => errors.add(
            format!("{field}.size"),
            format!(
                "{size:?} is not a Kubernetes quantity; use binary units like 50Gi or 512Mi (not GB/MB)"
            ),
        ),
    }
    if let Some(class) = &volume.storage_class_name {
        errors.check(
            class.is_empty() || is_dns_subdomain(class),
            &format!("{field}.storageClassName"),
            "must be a StorageClass name (lowercase letters, digits, '-' and '.')",
        );
    }
}

/// Every request and limit must be a quantity the API server accepts, and none negative.
pub(crate) fn check_resources(errors: &mut Errors, field: &str, resources: &ResourceRequirements) {
    let lists: [(&str, &Option<BTreeMap<String, Quantity>>); 2] = [
        ("limits", &resources.limits),
        ("requests", &resources.requests),
    ];
    for (list, values) in lists {
        if let Some(values) = values {
            check_entries(
                errors,
                &format!("{field}.{list}"),
                values.len(),
                MAX_RESOURCES,
            );
        }
        for (resource, quantity) in values.iter().flatten() {
            let text = &quantity.0;
            check_length(
                errors,
                &format!("{field}.{list}.{resource}"),
                text,
                MAX_QUANTITY,
            );
            let message = match quantity_sign(text) {
                Some(QuantitySign::Negative) => format!("{text:?} must not be negative"),
                Some(_) => continue,
                None => format!(
                    "{text:?} is not a Kubernetes quantity; use e.g. 512Mi for memory or 500m for cpu"
                ),
            };
            errors.add(format!("{field}.{list}.{resource}"), message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_the_api_server_accepts() {
        for (text, sign) in [
            ("50Gi", QuantitySign::Positive),
            ("1.5Gi", QuantitySign::Positive),
            (".5", QuantitySign::Positive),
            ("1.", QuantitySign::Positive),
            ("500m", QuantitySign::Positive),
            ("+1k", QuantitySign::Positive),
            ("1e3", QuantitySign::Positive),
            ("5n", QuantitySign::Positive),
            ("250u", QuantitySign::Positive),
            ("2E-2", QuantitySign::Positive),
            ("0", QuantitySign::Zero),
            ("0.0Gi", QuantitySign::Zero),
            ("-5Gi", QuantitySign::Negative),
        ] {
            assert_eq!(quantity_sign(text), Some(sign), "{text}");
        }
    }

    #[test]
    fn quantities_the_api_server_rejects() {
        for text in [
            "", "50GB", "50 Gi", "Gi", "-", ".", "1.2.3", "10gi", "1e", "1e+", "5KiB", "ten",
        ] {
            assert_eq!(quantity_sign(text), None, "{text:?}");
        }
    }
}
