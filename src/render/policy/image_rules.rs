//! The image-reference rules as Kyverno wildcard patterns and as CEL, kept side by side so both
//! flavours decide every reference the same way; plus literal quoting for JMESPath and CEL. Pure strings.

/// Kyverno pattern (`|` = or, `&` = and, `!` = not, `*`/`?` wildcards) an image must match to pass
/// disallowLatestTag: a digest, or a tag other than `latest`. A colon counts as a tag only after the
/// last `/` (or with no `/` at all), so `k3d-registry:5000/app` (a port, no tag) fails, unlike `*:*`.
pub const TAG_PATTERN: &str = "?*@?*:?* | */*:?* & !*:latest | !*/* & *:?* & !*:latest";

/// CEL over a container `c` that mirrors [`TAG_PATTERN`] branch by branch.
pub const TAG_CEL: &str = "c.image.matches('^.+@.+:.+$') || ((c.image.matches('^.*/.*:.+$') || c.image.matches('^[^/]*:[^/]+$')) && !c.image.endsWith(':latest'))";

/// Kyverno pattern an image must match to come from one of `registries` (`host[:port][/path]`).
/// The `/` after each prefix keeps `harbor.x.localhost.evil.com/...` and `harbor.x.localhostx/...` out.
pub fn registry_pattern(registries: &[String]) -> String {
    registries
        .iter()
        .map(|r| format!("{r}/?*"))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// CEL list literal of the allowed prefixes (each ending in `/`), used with `startsWith`.
pub fn registry_prefixes_cel(registries: &[String]) -> String {
    let items: Vec<String> = registries
        .iter()
        .map(|r| cel_string_literal(&format!("{r}/")))
        .collect();
    format!("[{}]", items.join(", "))
}

/// CEL over a container `c` and the list `variables.allowedPrefixes` mirroring [`registry_pattern`].
pub const REGISTRY_CEL: &str =
    "variables.allowedPrefixes.exists(p, c.image.startsWith(p) && size(c.image) > size(p))";

/// Every container of a Pod: containers, initContainers, ephemeralContainers.
pub const ALL_CONTAINERS_CEL: &str = "object.spec.containers + (has(object.spec.initContainers) ? object.spec.initContainers : []) + (has(object.spec.ephemeralContainers) ? object.spec.ephemeralContainers : [])";

/// A single-quoted CEL string literal; backslashes and quotes are escaped so user text stays a literal.
pub fn cel_string_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            other => out.push(other),
        }
    }
    out.push('\'');
    out
}

/// A JMESPath raw string literal (`'...'`), or `None` when `text` cannot be one without escapes whose
/// handling differs between JMESPath implementations (a quote, or a trailing backslash).
pub fn jmespath_raw_literal(text: &str) -> Option<String> {
    if text.contains('\'') || text.ends_with('\\') {
        return None;
    }
    Some(format!("'{text}'"))
}

/// Whether `value` is `host[:port][/path]` with only the characters image references allow, so it can
/// sit in a Kyverno wildcard pattern or a CEL literal without meaning anything but itself.
pub fn is_registry_prefix(value: &str) -> bool {
    crate::validate::is_registry_prefix(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cel_literal_escapes_quotes_and_backslashes() {
        assert_eq!(cel_string_literal(r"a'b\c"), r"'a\'b\\c'");
    }

    #[test]
    fn jmespath_literal_refuses_quote_and_trailing_backslash() {
        assert_eq!(
            jmespath_raw_literal(r"^https://x\.y/.+$").as_deref(),
            Some(r"'^https://x\.y/.+$'")
        );
        assert_eq!(jmespath_raw_literal("a') || true || ('"), None);
        assert_eq!(jmespath_raw_literal(r"abc\"), None);
    }

    #[test]
    fn registry_pattern_anchors_each_prefix_on_a_slash() {
        assert_eq!(
            registry_pattern(&[
                "harbor.ai-platform.localhost".into(),
                "ghcr.io/my-org".into()
            ]),
            "harbor.ai-platform.localhost/?* | ghcr.io/my-org/?*"
        );
    }
}
