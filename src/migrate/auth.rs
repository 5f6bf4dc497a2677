//! `WWW-Authenticate` challenge parsing and token-response parsing for the distribution token flow
//! (Harbor, distribution `auth: token`). Pure: no I/O, and it never sees a password.

/// What a registry asked for in its 401 answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm=...`: send the credentials on every request.
    Basic,
    /// `Bearer realm=..,service=..,scope=..`: fetch a token from `realm`.
    Bearer {
        realm: String,
        service: Option<String>,
        scopes: Vec<String>,
    },
}

/// Parses one `WWW-Authenticate` header value; `None` for unknown schemes.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header
        .split_once(char::is_whitespace)
        .unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let realm = get("realm")?;
    let scopes = params
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("scope"))
        .flat_map(|(_, v)| v.split(' ').map(str::to_string).collect::<Vec<_>>())
        .filter(|s| !s.is_empty())
        .collect();
    Some(Challenge::Bearer {
        realm,
        service: get("service"),
        scopes,
    })
}

/// `a="x,y", b=z` → `[(a, "x,y"), (b, "z")]`; commas inside quotes belong to the value.
fn parse_params(input: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut chars = input.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.trim().is_empty() {
            return params;
        }
        if chars.next() != Some('=') {
            continue;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    other => value.push(other),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                .collect::<String>()
                .trim()
                .to_string();
        }
        params.push((key.trim().to_string(), value));
    }
}

/// The token in a token-service answer (`token`, or OAuth2's `access_token`).
pub fn token_from_response(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    ["token", "access_token"]
        .iter()
        .find_map(|key| {
            value
                .get(key)
                .and_then(|v| v.as_str())
                .filter(|t| !t.is_empty())
        })
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_harbor_bearer_challenge_with_comma_in_scope() {
        let challenge = parse_challenge(
            r#"Bearer realm="https://harbor.local/service/token",service="harbor-registry",scope="repository:library/app:pull,push""#,
        );
        assert_eq!(
            challenge,
            Some(Challenge::Bearer {
                realm: "https://harbor.local/service/token".into(),
                service: Some("harbor-registry".into()),
                scopes: vec!["repository:library/app:pull,push".into()],
            })
        );
    }

    #[test]
    fn parses_space_separated_scopes_and_unquoted_values() {
        let challenge = parse_challenge(
            r#"bearer realm=http://t/token, scope="repository:a:pull repository:b:pull""#,
        );
        let Some(Challenge::Bearer {
            realm,
            service,
            scopes,
        }) = challenge
        else {
            panic!("not bearer")
        };
        assert_eq!(
            (realm.as_str(), service, scopes.len()),
            ("http://t/token", None, 2)
        );
    }

    #[test]
    fn basic_and_unknown_schemes() {
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate abc"), None);
        assert_eq!(
            parse_challenge("Bearer service=x"),
            None,
            "realm is required"
        );
    }

    #[test]
    fn token_or_access_token() {
        assert_eq!(
            token_from_response(br#"{"token":"t1"}"#).as_deref(),
            Some("t1")
        );
        assert_eq!(
            token_from_response(br#"{"access_token":"t2"}"#).as_deref(),
            Some("t2")
        );
        assert_eq!(token_from_response(br#"{"token":""}"#), None);
    }
}
