//! A thin OCI distribution client for one registry over `reqwest`: authentication (anonymous, basic,
//! bearer-token challenge) and retries with exponential backoff on transient failures; the API
//! calls themselves are in `api.rs`. A read-only client (the source) refuses every method but GET/HEAD.
//! No copy logic here, and no credential ever reaches a log line or an error message.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, Response, StatusCode, Url};
use sha2::{Digest as _, Sha256};

use super::auth::{Challenge, parse_challenge, token_from_response};
use super::{Credentials, Endpoint, EndpointError, MigrateError};

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Total tries (≥ 1).
    pub attempts: u32,
    /// First backoff; doubled each time up to `max_delay`.
    pub base_delay: Duration,
    /// Backoff ceiling.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// The pause before try number `attempt + 1`.
    pub fn delay(&self, attempt: u32) -> Duration {
        self.base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_delay)
    }
}

/// Which side of the copy a registry is (for error messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// `--from`, read-only.
    Source,
    /// `--to`.
    Destination,
}

/// One registry.
pub struct Registry {
    base: Url,
    name: String,
    side: Side,
    http: reqwest::Client,
    credentials: Option<Credentials>,
    retry: RetryPolicy,
    auth: Mutex<AuthState>,
}

#[derive(Default)]
struct AuthState {
    basic: bool,
    tokens: HashMap<String, String>,
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

impl Registry {
    /// A client for `endpoint`.
    pub fn new(endpoint: &Endpoint, side: Side, retry: RetryPolicy) -> Result<Self, EndpointError> {
        // Ring is the provider the rest of the binary (kube) already uses; ignore "already installed".
        let _ = rustls::crypto::ring::default_provider().install_default();
        let base = endpoint.base_url()?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(300))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!(
                "registry-operator-migrate/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| EndpointError::Client(e.to_string()))?;
        Ok(Registry {
            name: endpoint.host()?,
            base,
            side,
            http,
            credentials: endpoint.credentials.clone(),
            retry: RetryPolicy {
                attempts: retry.attempts.max(1),
                ..retry
            },
            auth: Mutex::new(AuthState::default()),
        })
    }

    /// `host[:port]`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The retry policy (blob transfers retry whole transfers with it).
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// `path` (absolute, or a `Location` header) against the base URL.
    pub fn url(&self, path: &str) -> Result<Url, MigrateError> {
        self.base
            .join(path)
            .map_err(|e| self.protocol(format!("bad URL {path}: {e}")))
    }

    pub(super) fn protocol(&self, message: String) -> MigrateError {
        MigrateError::Protocol {
            registry: self.name.clone(),
            message,
        }
    }

    fn side_names(&self) -> (&'static str, &'static str) {
        match self.side {
            Side::Source => ("from", "FROM"),
            Side::Destination => ("to", "TO"),
        }
    }

    fn check_method(&self, method: &Method) -> Result<(), MigrateError> {
        if self.side == Side::Source && method != Method::GET && method != Method::HEAD {
            return Err(MigrateError::SourceWrite {
                registry: self.name.clone(),
                method: method.to_string(),
            });
        }
        Ok(())
    }

    /// Adds credentials; returns the bearer token sent, if any.
    fn authorize(
        &self,
        request: reqwest::RequestBuilder,
        scope: &str,
    ) -> (reqwest::RequestBuilder, Option<String>) {
        let state = self.auth.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(token) = state.tokens.get(scope)
            && let Ok(mut value) = HeaderValue::from_str(&format!("Bearer {token}"))
        {
            value.set_sensitive(true);
            return (
                request.header(header::AUTHORIZATION, value),
                Some(token.clone()),
            );
        }
        match (&self.credentials, state.basic) {
            (Some(creds), true) => (
                request.basic_auth(&creds.username, Some(creds.password())),
                None,
            ),
            _ => (request, None),
        }
    }

    /// Reacts to a 401: learns the scheme, fetches a token. `Err` when it cannot help.
    async fn handle_unauthorized(
        &self,
        response: &Response,
        scope: &str,
        sent_token: Option<&str>,
    ) -> Result<(), MigrateError> {
        let (side, env) = self.side_names();
        let challenge = response
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(parse_challenge)
            .next();
        let Some(challenge) = challenge else {
            return Err(MigrateError::AuthRejected {
                registry: self.name.clone(),
                side,
                status: 401,
            });
        };
        match challenge {
            Challenge::Basic => {
                let mut state = self.auth.lock().unwrap_or_else(|p| p.into_inner());
                if self.credentials.is_none() {
                    return Err(MigrateError::AuthRequired {
                        registry: self.name.clone(),
                        side,
                        env,
                    });
                }
                if state.basic {
                    return Err(MigrateError::AuthRejected {
                        registry: self.name.clone(),
                        side,
                        status: 401,
                    });
                }
                state.basic = true;
                Ok(())
            }
            Challenge::Bearer {
                realm,
                service,
                scopes,
            } => {
                let token = self
                    .fetch_token(&realm, service.as_deref(), &scopes)
                    .await?;
                if sent_token == Some(token.as_str()) {
                    // The token service hands out the very token just refused: the account lacks the permission.
                    return Err(MigrateError::AuthRejected {
                        registry: self.name.clone(),
                        side,
                        status: 401,
                    });
                }
                self.auth
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .tokens
                    .insert(scope.to_string(), token);
                Ok(())
            }
        }
    }

    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<String, MigrateError> {
        let (side, env) = self.side_names();
        let mut url = Url::parse(realm)
            .map_err(|e| self.protocol(format!("bad token realm {realm}: {e}")))?;
        if url.scheme() == "http" && self.base.scheme() == "https" && self.credentials.is_some() {
            return Err(self.protocol(format!(
                "token realm {realm} is plain HTTP; refusing to send credentials"
            )));
        }
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            for scope in scopes {
                query.append_pair("scope", scope);
            }
        }
        let mut attempt = 0;
        loop {
            let mut request = self.http.get(url.clone());
            if let Some(creds) = &self.credentials {
                request = request.basic_auth(&creds.username, Some(creds.password()));
            }
            let outcome = request.send().await;
            match outcome {
                Ok(response) if response.status().is_success() => {
                    let body = response.bytes().await.map_err(|e| self.http_error(e))?;
                    return token_from_response(&body).ok_or_else(|| {
                        self.protocol("token service answered without a token".into())
                    });
                }
                Ok(response)
                    if matches!(
                        response.status(),
                        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
                    ) =>
                {
                    return Err(if self.credentials.is_none() {
                        MigrateError::AuthRequired {
                            registry: self.name.clone(),
                            side,
                            env,
                        }
                    } else {
                        MigrateError::AuthRejected {
                            registry: self.name.clone(),
                            side,
                            status: response.status().as_u16(),
                        }
                    });
                }
                Ok(response) => {
                    let error = self.status_error(&Method::GET, realm, response).await;
                    if !error.is_transient() || attempt + 1 >= self.retry.attempts {
                        return Err(error);
                    }
                }
                Err(e) if attempt + 1 >= self.retry.attempts => return Err(self.http_error(e)),
                Err(_) => {}
            }
            tokio::time::sleep(self.retry.delay(attempt)).await;
            attempt += 1;
        }
    }

    pub(super) fn http_error(&self, source: reqwest::Error) -> MigrateError {
        MigrateError::Http {
            registry: self.name.clone(),
            source: source.without_url(),
        }
    }

    /// An error for an unexpected answer, with a short excerpt of the body.
    pub async fn status_error(
        &self,
        method: &Method,
        path: &str,
        response: Response,
    ) -> MigrateError {
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        let body: String = body.chars().take(300).collect();
        MigrateError::Status {
            registry: self.name.clone(),
            method: method.to_string(),
            path: path.to_string(),
            status,
            body,
        }
    }

    /// Sends a request with a replayable body, handling auth and retrying transient failures.
    /// Returns any non-transient answer (including 4xx) for the caller to judge.
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        scope: &str,
        headers: HeaderMap,
        body: Option<Bytes>,
    ) -> Result<Response, MigrateError> {
        self.check_method(&method)?;
        let mut attempt = 0;
        let mut auth_rounds = 0;
        loop {
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(body) = &body {
                request = request.body(body.clone());
            }
            let (request, sent_token) = self.authorize(request, scope);
            let outcome = request.send().await;
            let transient = match outcome {
                Ok(response)
                    if response.status() == StatusCode::UNAUTHORIZED && auth_rounds < 2 =>
                {
                    auth_rounds += 1;
                    self.handle_unauthorized(&response, scope, sent_token.as_deref())
                        .await?;
                    continue;
                }
                Ok(response) => {
                    let status = response.status();
                    if !(status.is_server_error()
                        || status == StatusCode::REQUEST_TIMEOUT
                        || status == StatusCode::TOO_MANY_REQUESTS)
                        || attempt + 1 >= self.retry.attempts
                    {
                        return Ok(response);
                    }
                    format!("status {status}")
                }
                Err(e) if attempt + 1 >= self.retry.attempts => return Err(self.http_error(e)),
                Err(e) => e.without_url().to_string(),
            };
            tracing::debug!(registry = %self.name, %method, path = url.path(), attempt, reason = %transient, "retrying");
            tokio::time::sleep(self.retry.delay(attempt)).await;
            attempt += 1;
        }
    }

    /// Sends a request with a one-shot streaming body: no retry (the caller restarts the transfer).
    pub async fn send_stream(
        &self,
        method: Method,
        url: Url,
        scope: &str,
        headers: HeaderMap,
        body: reqwest::Body,
    ) -> Result<Response, MigrateError> {
        self.check_method(&method)?;
        let request = self.http.request(method, url).headers(headers).body(body);
        self.authorize(request, scope)
            .0
            .send()
            .await
            .map_err(|e| self.http_error(e))
    }

    /// GET that must succeed (2xx) after retries.
    pub(super) async fn get_ok(
        &self,
        url: Url,
        scope: &str,
        headers: HeaderMap,
    ) -> Result<Response, MigrateError> {
        let response = self
            .send(Method::GET, url.clone(), scope, headers, None)
            .await?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(self.status_error(&Method::GET, url.path(), response).await)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::Endpoint;

    #[test]
    fn backoff_doubles_up_to_ceiling() {
        let policy = RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
        };
        assert_eq!(
            [0, 1, 2, 3].map(|a| policy.delay(a).as_millis()),
            [100, 200, 400, 500]
        );
    }

    #[tokio::test]
    async fn source_refuses_writes() {
        let policy = RetryPolicy {
            attempts: 1,
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
        };
        let source = Registry::new(
            &Endpoint::anonymous("http://127.0.0.1:9", true),
            Side::Source,
            policy,
        )
        .expect("client");
        let url = source.url("/v2/x/blobs/uploads/").expect("url");
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            let outcome = source
                .send(method, url.clone(), "", HeaderMap::new(), None)
                .await;
            assert!(matches!(outcome, Err(MigrateError::SourceWrite { .. })));
        }
        assert!(matches!(
            source.start_upload("x").await,
            Err(MigrateError::SourceWrite { .. })
        ));
    }
}
