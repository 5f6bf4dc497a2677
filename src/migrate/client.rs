//! A thin OCI distribution client for one registry over `reqwest`: authentication (anonymous, basic,
//! bearer-token challenge), retries with exponential backoff on transient failures, paging, and the
//! few endpoints the copy needs. A read-only client (the source) refuses every method but GET/HEAD.
//! No copy logic here, and no credential ever reaches a log line or an error message.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, Response, StatusCode, Url};
use sha2::{Digest as _, Sha256};

use super::auth::{Challenge, parse_challenge, token_from_response};
use super::{Credentials, MigrateError};

/// Every manifest media type accepted when fetching, so registries never convert.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.oci.artifact.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v1+prettyjws, \
application/vnd.docker.distribution.manifest.v1+json";

/// Largest manifest accepted (distribution's own limit is 4 MiB).
const MAX_MANIFEST_BYTES: usize = 8 << 20;

/// Where a registry is and how to log in.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Base URL, e.g. `https://harbor.example.com` or `http://127.0.0.1:5000`.
    pub url: String,
    /// Credentials; `None` for anonymous.
    pub credentials: Option<Credentials>,
    /// Allow plain HTTP.
    pub insecure: bool,
}

/// Why an endpoint is unusable.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// Not a URL.
    #[error("invalid registry URL {0}: {1}")]
    BadUrl(String, String),
    /// `http://` without `--insecure`.
    #[error("{0} uses plain HTTP; pass --insecure to allow it (e.g. for a local k3d registry)")]
    PlainHttp(String),
    /// The HTTP client could not be built.
    #[error("cannot build HTTP client: {0}")]
    Client(String),
}

impl Endpoint {
    /// The base URL (`https://` assumed when no scheme is given), checked against `insecure`.
    pub fn base_url(&self) -> Result<Url, EndpointError> {
        let raw = if self.url.contains("://") { self.url.clone() } else { format!("https://{}", self.url) };
        let url = Url::parse(raw.trim_end_matches('/')).map_err(|e| EndpointError::BadUrl(self.url.clone(), e.to_string()))?;
        match url.scheme() {
            "https" => {}
            "http" if self.insecure => {}
            "http" => return Err(EndpointError::PlainHttp(self.url.clone())),
            other => return Err(EndpointError::BadUrl(self.url.clone(), format!("unsupported scheme {other}"))),
        }
        if url.host_str().is_none() || !url.username().is_empty() || url.password().is_some() {
            return Err(EndpointError::BadUrl(self.url.clone(), "expected scheme://host[:port] without credentials".into()));
        }
        Ok(url)
    }

    /// `host[:port]`, the key for docker-config lookups.
    pub fn host(&self) -> Result<String, EndpointError> {
        let url = self.base_url()?;
        let host = url.host_str().unwrap_or_default();
        Ok(url.port().map_or_else(|| host.to_string(), |p| format!("{host}:{p}")))
    }
}

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
        self.base_delay.saturating_mul(1u32 << attempt.min(16)).min(self.max_delay)
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

/// A manifest exactly as served.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// Raw bytes (pushed unchanged).
    pub bytes: Bytes,
    /// The `Content-Type` it was served with.
    pub media_type: String,
    /// `sha256:` of the bytes.
    pub digest: String,
}

/// Result of a cross-repository mount attempt.
pub enum MountOutcome {
    /// The blob is now in the repository.
    Mounted,
    /// The registry opened an ordinary upload session instead.
    UploadAt(Url),
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
            .user_agent(concat!("registry-operator-migrate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| EndpointError::Client(e.to_string()))?;
        Ok(Registry {
            name: endpoint.host()?,
            base,
            side,
            http,
            credentials: endpoint.credentials.clone(),
            retry: RetryPolicy { attempts: retry.attempts.max(1), ..retry },
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
        self.base.join(path).map_err(|e| self.protocol(format!("bad URL {path}: {e}")))
    }

    fn protocol(&self, message: String) -> MigrateError {
        MigrateError::Protocol { registry: self.name.clone(), message }
    }

    fn side_names(&self) -> (&'static str, &'static str) {
        match self.side {
            Side::Source => ("from", "FROM"),
            Side::Destination => ("to", "TO"),
        }
    }

    fn check_method(&self, method: &Method) -> Result<(), MigrateError> {
        if self.side == Side::Source && method != Method::GET && method != Method::HEAD {
            return Err(MigrateError::SourceWrite { registry: self.name.clone(), method: method.to_string() });
        }
        Ok(())
    }

    /// Adds credentials; returns the bearer token sent, if any.
    fn authorize(&self, request: reqwest::RequestBuilder, scope: &str) -> (reqwest::RequestBuilder, Option<String>) {
        let state = self.auth.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(token) = state.tokens.get(scope)
            && let Ok(mut value) = HeaderValue::from_str(&format!("Bearer {token}"))
        {
            value.set_sensitive(true);
            return (request.header(header::AUTHORIZATION, value), Some(token.clone()));
        }
        match (&self.credentials, state.basic) {
            (Some(creds), true) => (request.basic_auth(&creds.username, Some(creds.password())), None),
            _ => (request, None),
        }
    }

    /// Reacts to a 401: learns the scheme, fetches a token. `Err` when it cannot help.
    async fn handle_unauthorized(&self, response: &Response, scope: &str, sent_token: Option<&str>) -> Result<(), MigrateError> {
        let (side, env) = self.side_names();
        let challenge = response
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(parse_challenge)
            .next();
        let Some(challenge) = challenge else {
            return Err(MigrateError::AuthRejected { registry: self.name.clone(), side, status: 401 });
        };
        match challenge {
            Challenge::Basic => {
                let mut state = self.auth.lock().unwrap_or_else(|p| p.into_inner());
                if self.credentials.is_none() {
                    return Err(MigrateError::AuthRequired { registry: self.name.clone(), side, env });
                }
                if state.basic {
                    return Err(MigrateError::AuthRejected { registry: self.name.clone(), side, status: 401 });
                }
                state.basic = true;
                Ok(())
            }
            Challenge::Bearer { realm, service, scopes } => {
                let token = self.fetch_token(&realm, service.as_deref(), &scopes).await?;
                if sent_token == Some(token.as_str()) {
                    // The token service hands out the very token just refused: the account lacks the permission.
                    return Err(MigrateError::AuthRejected { registry: self.name.clone(), side, status: 401 });
                }
                self.auth.lock().unwrap_or_else(|p| p.into_inner()).tokens.insert(scope.to_string(), token);
                Ok(())
            }
        }
    }

    async fn fetch_token(&self, realm: &str, service: Option<&str>, scopes: &[String]) -> Result<String, MigrateError> {
        let (side, env) = self.side_names();
        let mut url = Url::parse(realm).map_err(|e| self.protocol(format!("bad token realm {realm}: {e}")))?;
        if url.scheme() == "http" && self.base.scheme() == "https" && self.credentials.is_some() {
            return Err(self.protocol(format!("token realm {realm} is plain HTTP; refusing to send credentials")));
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
                    return token_from_response(&body).ok_or_else(|| self.protocol("token service answered without a token".into()));
                }
                Ok(response) if matches!(response.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                    return Err(if self.credentials.is_none() {
                        MigrateError::AuthRequired { registry: self.name.clone(), side, env }
                    } else {
                        MigrateError::AuthRejected { registry: self.name.clone(), side, status: response.status().as_u16() }
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

    fn http_error(&self, source: reqwest::Error) -> MigrateError {
        MigrateError::Http { registry: self.name.clone(), source: source.without_url() }
    }

    /// An error for an unexpected answer, with a short excerpt of the body.
    pub async fn status_error(&self, method: &Method, path: &str, response: Response) -> MigrateError {
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        let body: String = body.chars().take(300).collect();
        MigrateError::Status { registry: self.name.clone(), method: method.to_string(), path: path.to_string(), status, body }
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
            let mut request = self.http.request(method.clone(), url.clone()).headers(headers.clone());
            if let Some(body) = &body {
                request = request.body(body.clone());
            }
            let (request, sent_token) = self.authorize(request, scope);
            let outcome = request.send().await;
            let transient = match outcome {
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED && auth_rounds < 2 => {
                    auth_rounds += 1;
                    self.handle_unauthorized(&response, scope, sent_token.as_deref()).await?;
                    continue;
                }
                Ok(response) => {
                    let status = response.status();
                    if !(status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT || status == StatusCode::TOO_MANY_REQUESTS)
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
        self.authorize(request, scope).0.send().await.map_err(|e| self.http_error(e))
    }

    /// GET that must succeed (2xx) after retries.
    async fn get_ok(&self, url: Url, scope: &str, headers: HeaderMap) -> Result<Response, MigrateError> {
        let response = self.send(Method::GET, url.clone(), scope, headers, None).await?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(self.status_error(&Method::GET, url.path(), response).await)
        }
    }

    /// Checks reachability and credentials (`GET /v2/`).
    pub async fn ping(&self) -> Result<(), MigrateError> {
        self.get_ok(self.url("/v2/")?, "", HeaderMap::new()).await.map(|_| ())
    }

    /// Every repository in the catalog (paged with `n` and `Link`).
    pub async fn catalog(&self) -> Result<Vec<String>, MigrateError> {
        self.list_paged(self.url("/v2/_catalog?n=1000")?, "registry:catalog:*", "repositories").await
    }

    /// Every tag of `repo` (paged).
    pub async fn tags(&self, repo: &str) -> Result<Vec<String>, MigrateError> {
        let url = self.url(&format!("/v2/{repo}/tags/list?n=1000"))?;
        self.list_paged(url, &pull_scope(repo), "tags").await
    }

    async fn list_paged(&self, first: Url, scope: &str, key: &str) -> Result<Vec<String>, MigrateError> {
        let mut items = Vec::new();
        let mut next = Some(first);
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > 100_000 {
                return Err(self.protocol(format!("{key} listing does not end")));
            }
            let response = self.get_ok(url.clone(), scope, HeaderMap::new()).await?;
            next = next_link(response.headers()).map(|link| self.url(&link)).transpose()?.filter(|n| *n != url);
            let body = response.bytes().await.map_err(|e| self.http_error(e))?;
            let value: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| self.protocol(format!("bad {key} listing: {e}")))?;
            let page = value.get(key).and_then(|v| v.as_array()).cloned().unwrap_or_default();
            items.extend(page.into_iter().filter_map(|v| v.as_str().map(str::to_string)));
        }
        Ok(items)
    }

    /// A manifest by tag or digest, exactly as served. When `reference` is a digest the bytes are checked.
    pub async fn manifest(&self, repo: &str, reference: &str) -> Result<FetchedManifest, MigrateError> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"))?;
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT));
        let response = self.get_ok(url, &pull_scope(repo), headers).await?;
        if response.content_length().is_some_and(|n| n > MAX_MANIFEST_BYTES as u64) {
            return Err(self.protocol(format!("{repo}@{reference}: manifest larger than {MAX_MANIFEST_BYTES} bytes")));
        }
        let media_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_string())
            .unwrap_or_default();
        let bytes = response.bytes().await.map_err(|e| self.http_error(e))?;
        let digest = sha256_digest(&bytes);
        if reference.starts_with("sha256:") && digest != reference {
            return Err(MigrateError::DigestMismatch { what: format!("{}/{repo} manifest", self.name), expected: reference.into(), actual: digest });
        }
        Ok(FetchedManifest { bytes, media_type, digest })
    }

    /// The digest `reference` resolves to, or `None` when absent.
    pub async fn manifest_digest(&self, repo: &str, reference: &str) -> Result<Option<String>, MigrateError> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"))?;
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT));
        let response = self.send(Method::HEAD, url.clone(), &pull_scope(repo), headers, None).await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => {
                let header_digest = response.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()).map(str::to_string);
                match header_digest {
                    Some(digest) => Ok(Some(digest)),
                    None => self.manifest(repo, reference).await.map(|m| Some(m.digest)),
                }
            }
            _ => Err(self.status_error(&Method::HEAD, url.path(), response).await),
        }
    }

    /// Whether `repo` holds blob `digest`.
    pub async fn blob_exists(&self, repo: &str, digest: &str) -> Result<bool, MigrateError> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"))?;
        let response = self.send(Method::HEAD, url.clone(), &pull_scope(repo), HeaderMap::new(), None).await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(false),
            s if s.is_success() => Ok(true),
            _ => Err(self.status_error(&Method::HEAD, url.path(), response).await),
        }
    }

    /// Starts streaming blob `digest` of `repo` (redirects to storage are followed).
    pub async fn blob_stream(&self, repo: &str, digest: &str) -> Result<Response, MigrateError> {
        self.get_ok(self.url(&format!("/v2/{repo}/blobs/{digest}"))?, &pull_scope(repo), HeaderMap::new()).await
    }

    /// Opens an upload session in `repo`.
    pub async fn start_upload(&self, repo: &str) -> Result<Url, MigrateError> {
        let url = self.url(&format!("/v2/{repo}/blobs/uploads/"))?;
        let response = self.send(Method::POST, url.clone(), &push_scope(repo), content_length_zero(), Some(Bytes::new())).await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(self.status_error(&Method::POST, url.path(), response).await);
        }
        self.location(&response)
    }

    /// Links blob `digest` from `from_repo` into `repo` (same registry).
    pub async fn mount(&self, repo: &str, digest: &str, from_repo: &str) -> Result<MountOutcome, MigrateError> {
        let mut url = self.url(&format!("/v2/{repo}/blobs/uploads/"))?;
        url.query_pairs_mut().append_pair("mount", digest).append_pair("from", from_repo);
        let scope = format!("{} {}", push_scope(repo), pull_scope(from_repo));
        let response = self.send(Method::POST, url.clone(), &scope, content_length_zero(), Some(Bytes::new())).await?;
        match response.status() {
            StatusCode::CREATED => Ok(MountOutcome::Mounted),
            StatusCode::ACCEPTED => Ok(MountOutcome::UploadAt(self.location(&response)?)),
            _ => Err(self.status_error(&Method::POST, url.path(), response).await),
        }
    }

    /// The upload URL in a `Location` header.
    pub fn location(&self, response: &Response) -> Result<Url, MigrateError> {
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| self.protocol("upload answer without Location".into()))?;
        self.url(location)
    }

    /// Pushes manifest bytes unchanged under `reference` (tag or digest); returns the registry's digest.
    pub async fn put_manifest(&self, repo: &str, reference: &str, manifest: &FetchedManifest) -> Result<(), MigrateError> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"))?;
        let mut headers = HeaderMap::new();
        let content_type = HeaderValue::from_str(&manifest.media_type).map_err(|_| self.protocol(format!("bad media type {}", manifest.media_type)))?;
        headers.insert(header::CONTENT_TYPE, content_type);
        let response = self.send(Method::PUT, url.clone(), &push_scope(repo), headers, Some(manifest.bytes.clone())).await?;
        if !response.status().is_success() {
            return Err(self.status_error(&Method::PUT, url.path(), response).await);
        }
        let returned = response.headers().get("docker-content-digest").and_then(|v| v.to_str().ok());
        match returned {
            Some(digest) if digest != manifest.digest => Err(MigrateError::DigestMismatch {
                what: format!("{}/{repo}:{reference} pushed manifest", self.name),
                expected: manifest.digest.clone(),
                actual: digest.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// Descriptors of manifests referring to `digest` (OCI 1.1), or `None` when the API is not served.
    pub async fn referrers(&self, repo: &str, digest: &str) -> Result<Option<Vec<oci_spec::image::Descriptor>>, MigrateError> {
        let url = self.url(&format!("/v2/{repo}/referrers/{digest}"))?;
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/vnd.oci.image.index.v1+json"));
        let response = self.send(Method::GET, url.clone(), &pull_scope(repo), headers, None).await?;
        if !response.status().is_success() {
            return Ok(None);
        }
        let body = response.bytes().await.map_err(|e| self.http_error(e))?;
        match serde_json::from_slice::<oci_spec::image::ImageIndex>(&body) {
            Ok(index) => Ok(Some(index.manifests().clone())),
            Err(_) => Ok(None),
        }
    }
}

fn content_length_zero() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    headers
}

/// Token scope for reading `repo`.
pub fn pull_scope(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

/// Token scope for writing `repo`.
pub fn push_scope(repo: &str) -> String {
    format!("repository:{repo}:pull,push")
}

/// The target of `Link: <...>; rel="next"`.
fn next_link(headers: &HeaderMap) -> Option<String> {
    headers.get_all(header::LINK).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| target.trim().trim_start_matches('<').trim_end_matches('>').to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(url: &str, insecure: bool) -> Endpoint {
        Endpoint { url: url.into(), credentials: None, insecure }
    }

    #[test]
    fn plain_http_needs_insecure() {
        assert!(matches!(endpoint("http://127.0.0.1:5000", false).base_url(), Err(EndpointError::PlainHttp(_))));
        assert!(endpoint("http://127.0.0.1:5000", true).base_url().is_ok());
        assert_eq!(endpoint("harbor.local", false).base_url().map(|u| u.scheme().to_string()).ok().as_deref(), Some("https"));
        assert!(endpoint("https://u:p@harbor.local", false).base_url().is_err());
    }

    #[test]
    fn host_includes_port() {
        assert_eq!(endpoint("http://127.0.0.1:5000/", true).host().ok().as_deref(), Some("127.0.0.1:5000"));
    }

    #[test]
    fn link_header_next() {
        let mut headers = HeaderMap::new();
        headers.insert(header::LINK, HeaderValue::from_static("</v2/_catalog?last=b&n=2>; rel=\"next\""));
        assert_eq!(next_link(&headers).as_deref(), Some("/v2/_catalog?last=b&n=2"));
        assert_eq!(next_link(&HeaderMap::new()), None);
    }

    #[test]
    fn backoff_doubles_up_to_ceiling() {
        let policy = RetryPolicy { attempts: 5, base_delay: Duration::from_millis(100), max_delay: Duration::from_millis(500) };
        assert_eq!([0, 1, 2, 3].map(|a| policy.delay(a).as_millis()), [100, 200, 400, 500]);
    }

    #[tokio::test]
    async fn source_refuses_writes() {
        let policy = RetryPolicy { attempts: 1, base_delay: Duration::ZERO, max_delay: Duration::ZERO };
        let source = Registry::new(&endpoint("http://127.0.0.1:9", true), Side::Source, policy).expect("client");
        let url = source.url("/v2/x/blobs/uploads/").expect("url");
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            let outcome = source.send(method, url.clone(), "", HeaderMap::new(), None).await;
            assert!(matches!(outcome, Err(MigrateError::SourceWrite { .. })));
        }
        assert!(matches!(source.start_upload("x").await, Err(MigrateError::SourceWrite { .. })));
    }
}
