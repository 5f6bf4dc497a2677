//! [`HarborClient`]: basic auth, `Accept: application/json`, timeouts; one method per Harbor operation,
//! each naming its swagger `operationId`. Errors carry the operation and Harbor's own message
//! (`errors[].message`), never a credential.

use std::time::Duration;

use reqwest::header::{self, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::types::{
    Configurations, ConfigurationsResponse, Errors, GcHistory, OverallHealthStatus, Schedule,
    Secret,
};

mod policies;
mod projects;

/// Harbor's API base path.
pub const API_BASE: &str = "/api/v2.0";

/// Longest Harbor message kept in an error.
const MAX_MESSAGE: usize = 512;

/// What went wrong talking to Harbor. Every variant names the swagger operation.
#[derive(Debug, thiserror::Error)]
pub enum HarborError {
    /// No HTTP answer: connection refused, DNS, TLS, timeout.
    #[error("Harbor is unreachable ({operation} {url}): {reason}")]
    Unreachable {
        operation: &'static str,
        url: String,
        reason: String,
    },
    /// 401: no or wrong credentials.
    #[error("Harbor refused the credentials of user {username:?} ({operation})")]
    Unauthorized {
        operation: &'static str,
        username: String,
    },
    /// 404.
    #[error("Harbor has no {what} ({operation})")]
    NotFound {
        operation: &'static str,
        what: String,
    },
    /// 409: it exists already.
    #[error("{what} already exists in Harbor ({operation}): {message}")]
    Conflict {
        operation: &'static str,
        what: String,
        message: String,
    },
    /// Any other non-success answer (400, 403, 412, 5xx), with Harbor's message.
    #[error("Harbor refused {operation} with HTTP {status}: {message}")]
    Refused {
        operation: &'static str,
        status: u16,
        message: String,
    },
    /// A success answer we could not read, or a client that could not be built.
    #[error("unexpected answer from Harbor ({operation}): {message}")]
    Decode {
        operation: &'static str,
        message: String,
    },
}

impl HarborError {
    /// Whether retrying later may help (Harbor down, or a server-side error).
    pub fn is_transient(&self) -> bool {
        match self {
            HarborError::Unreachable { .. } => true,
            HarborError::Refused { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// Transport settings; [`Default`] suits an in-cluster Harbor.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub connect_timeout: Duration,
    /// Whole request, answer included.
    pub timeout: Duration,
    /// PEM certificates to trust besides the system roots (the operator-generated Harbor CA).
    pub ca_pem: Option<Vec<u8>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            ca_pem: None,
        }
    }
}

/// A client for one Harbor, authenticating as one user (the admin, from the Registry's admin Secret).
#[derive(Clone)]
pub struct HarborClient {
    /// `<harbor URL>/api/v2.0/`.
    base_url: Url,
    username: String,
    password: Secret,
    http: reqwest::Client,
}

impl std::fmt::Debug for HarborClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HarborClient")
            .field("base_url", &self.base_url.as_str())
            .field("username", &self.username)
            .field("password", &self.password)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Display for HarborClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Harbor {} as {}", self.base_url, self.username)
    }
}

/// A prepared request: method, URL, operation name, optional JSON body and extra headers.
struct Call {
    operation: &'static str,
    method: Method,
    url: Url,
    body: Option<Vec<u8>>,
    resource_name: bool,
    auth: bool,
}

impl HarborClient {
    /// A client for Harbor at `harbor_url` (`https://harbor.example`; `/api/v2.0` is appended), with
    /// [`ClientOptions::default`].
    pub fn new(
        harbor_url: &str,
        username: impl Into<String>,
        password: impl Into<Secret>,
    ) -> Result<Self, HarborError> {
        Self::with_options(harbor_url, username, password, &ClientOptions::default())
    }

    /// [`HarborClient::new`] with explicit transport settings.
    pub fn with_options(
        harbor_url: &str,
        username: impl Into<String>,
        password: impl Into<Secret>,
        options: &ClientOptions,
    ) -> Result<Self, HarborError> {
        let build_error = |message: String| HarborError::Decode {
            operation: "client",
            message,
        };
        let mut base_url = Url::parse(harbor_url.trim_end_matches('/'))
            .map_err(|e| build_error(format!("bad Harbor URL: {e}")))?;
        if !matches!(base_url.scheme(), "http" | "https") || base_url.cannot_be_a_base() {
            return Err(build_error(
                "the Harbor URL must be http(s)://host[:port]".to_string(),
            ));
        }
        if !base_url.username().is_empty() || base_url.password().is_some() {
            // Credentials in the URL would end up in error messages; they belong in the Secret.
            return Err(build_error(
                "the Harbor URL must not carry credentials".to_string(),
            ));
        }
        base_url.set_query(None);
        base_url.set_fragment(None);
        let path = base_url.path().trim_end_matches('/').to_string();
        let path = if path.ends_with(API_BASE) {
            format!("{path}/")
        } else {
            format!("{path}{API_BASE}/")
        };
        base_url.set_path(&path);

        // Ring is the provider the rest of the binary (kube) already uses; ignore "already installed".
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut headers = header::HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        let mut builder = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .timeout(options.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .user_agent(concat!("registry-operator/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &options.ca_pem {
            let certificates = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| build_error(format!("bad CA certificate: {e}")))?;
            builder = builder.tls_certs_merge(certificates);
        }
        let http = builder
            .build()
            .map_err(|e| build_error(format!("HTTP client: {e}")))?;
        Ok(HarborClient {
            base_url,
            username: username.into(),
            password: password.into(),
            http,
        })
    }

    /// The API base URL (`…/api/v2.0/`).
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    // ---- reachability ----

    /// `GET /ping` (operationId `getPing`): Harbor core answers. Sends no credentials.
    pub async fn ping(&self) -> Result<(), HarborError> {
        let mut call = self.call("getPing", Method::GET, &["ping"]);
        call.auth = false;
        self.send(call, "").await.map(drop)
    }

    /// `GET /health` (operationId `getHealth`): the status of each Harbor component.
    pub async fn health(&self) -> Result<OverallHealthStatus, HarborError> {
        let mut call = self.call("getHealth", Method::GET, &["health"]);
        call.auth = false;
        self.json(call, "health status").await
    }

    // ---- system configuration ----

    /// `GET /configurations` (operationId `getConfigurations`).
    pub async fn configurations(&self) -> Result<ConfigurationsResponse, HarborError> {
        let call = self.call("getConfigurations", Method::GET, &["configurations"]);
        self.json(call, "configurations").await
    }

    /// Whether Harbor is read-only (`getConfigurations`, `read_only.value`).
    pub async fn read_only(&self) -> Result<bool, HarborError> {
        Ok(self
            .configurations()
            .await?
            .read_only
            .is_some_and(|item| item.value))
    }

    /// `PUT /configurations` (operationId `updateConfigurations`).
    pub async fn update_configurations(
        &self,
        configurations: &Configurations,
    ) -> Result<(), HarborError> {
        let call = self
            .call("updateConfigurations", Method::PUT, &["configurations"])
            .with_body(configurations)?;
        self.send(call, "configurations").await.map(drop)
    }

    /// Switches Harbor's read-only mode (`updateConfigurations` with `read_only` only).
    pub async fn set_read_only(&self, read_only: bool) -> Result<(), HarborError> {
        self.update_configurations(&Configurations {
            read_only: Some(read_only),
        })
        .await
    }

    // ---- garbage collection ----

    /// `GET /system/gc/schedule` (operationId `getGCSchedule`); `None` when no schedule is set (Harbor
    /// answers an empty body then).
    pub async fn gc_schedule(&self) -> Result<Option<GcHistory>, HarborError> {
        let call = self.call("getGCSchedule", Method::GET, &["system", "gc", "schedule"]);
        let body = self.send(call, "GC schedule").await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let history: GcHistory = decode("getGCSchedule", &body, &self.password)?;
        Ok(history.schedule.is_some().then_some(history))
    }

    /// `POST /system/gc/schedule` (operationId `createGCSchedule`).
    pub async fn create_gc_schedule(&self, schedule: &Schedule) -> Result<(), HarborError> {
        let call = self
            .call(
                "createGCSchedule",
                Method::POST,
                &["system", "gc", "schedule"],
            )
            .with_body(schedule)?;
        self.send(call, "GC schedule").await.map(drop)
    }

    /// `PUT /system/gc/schedule` (operationId `updateGCSchedule`).
    pub async fn update_gc_schedule(&self, schedule: &Schedule) -> Result<(), HarborError> {
        let call = self
            .call(
                "updateGCSchedule",
                Method::PUT,
                &["system", "gc", "schedule"],
            )
            .with_body(schedule)?;
        self.send(call, "GC schedule").await.map(drop)
    }

    // ---- plumbing ----

    fn call(&self, operation: &'static str, method: Method, segments: &[&str]) -> Call {
        let mut url = self.base_url.clone();
        {
            let mut path = url
                .path_segments_mut()
                .expect("checked in with_options: the base URL can be a base");
            path.pop_if_empty();
            path.extend(segments);
        }
        Call {
            operation,
            method,
            url,
            body: None,
            resource_name: false,
            auth: true,
        }
    }

    /// Sends `call`; the body of a success answer, else the error for its status.
    async fn send(&self, call: Call, what: &str) -> Result<Vec<u8>, HarborError> {
        let (status, _, body) = self.exchange(call, what).await?;
        debug_assert!(status.is_success());
        Ok(body)
    }

    async fn exchange(
        &self,
        call: Call,
        what: &str,
    ) -> Result<(StatusCode, header::HeaderMap, Vec<u8>), HarborError> {
        let operation = call.operation;
        let mut request = self.http.request(call.method.clone(), call.url.clone());
        if call.auth {
            request = request.basic_auth(&self.username, Some(self.password.expose()));
        }
        if call.resource_name {
            request = request.header("X-Is-Resource-Name", "true");
        }
        if let Some(body) = call.body {
            request = request
                .header(header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        tracing::debug!(operation, method = %call.method, url = %call.url, "Harbor request");
        let unreachable = |e: reqwest::Error| HarborError::Unreachable {
            operation,
            url: call.url.to_string(),
            reason: redact(&error_chain(&e), &self.password),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(unreachable)?.to_vec();
        if status.is_success() {
            return Ok((status, headers, body));
        }
        let message = redact(&harbor_message(&body, status), &self.password);
        Err(match status {
            StatusCode::UNAUTHORIZED => HarborError::Unauthorized {
                operation,
                username: self.username.clone(),
            },
            StatusCode::NOT_FOUND => HarborError::NotFound {
                operation,
                what: what.to_string(),
            },
            StatusCode::CONFLICT => HarborError::Conflict {
                operation,
                what: what.to_string(),
                message,
            },
            _ => HarborError::Refused {
                operation,
                status: status.as_u16(),
                message,
            },
        })
    }

    async fn json<T: DeserializeOwned>(&self, call: Call, what: &str) -> Result<T, HarborError> {
        let operation = call.operation;
        let body = self.send(call, what).await?;
        decode(operation, &body, &self.password)
    }

    /// A create call answered `201 Created` with `Location: …/<id>`: the id.
    async fn created_id(&self, call: Call, what: &str) -> Result<i64, HarborError> {
        let operation = call.operation;
        let (_, headers, _) = self.exchange(call, what).await?;
        headers
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| l.rsplit('/').next())
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| HarborError::Decode {
                operation,
                message: "no id in the Location header of the created resource".to_string(),
            })
    }
}

impl Call {
    fn with_body(mut self, body: &impl Serialize) -> Result<Self, HarborError> {
        self.body = Some(serde_json::to_vec(body).map_err(|e| HarborError::Decode {
            operation: self.operation,
            message: format!("request body: {e}"),
        })?);
        Ok(self)
    }
}

fn decode<T: DeserializeOwned>(
    operation: &'static str,
    body: &[u8],
    password: &Secret,
) -> Result<T, HarborError> {
    serde_json::from_slice(body).map_err(|e| HarborError::Decode {
        operation,
        message: redact(&e.to_string(), password),
    })
}

/// Harbor's `errors[].message`, joined; the status text when the body is not Harbor's error format.
fn harbor_message(body: &[u8], status: StatusCode) -> String {
    let messages: Vec<String> = serde_json::from_slice::<Errors>(body)
        .map(|e| {
            e.errors
                .into_iter()
                .map(|e| e.message)
                .filter(|m| !m.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let message = if messages.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("no message")
            .to_string()
    } else {
        messages.join("; ")
    };
    truncate(message)
}

fn truncate(mut message: String) -> String {
    if message.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

/// The error and its sources, `: `-separated (reqwest's own Display stops at the top level).
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `text` with every occurrence of the password replaced (Harbor could echo what it was sent).
fn redact(text: &str, password: &Secret) -> String {
    if password.expose().is_empty() {
        text.to_string()
    } else {
        text.replace(password.expose(), "<redacted>")
    }
}

#[cfg(test)]
mod tests;
