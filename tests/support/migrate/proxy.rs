//! A tiny HTTP proxy in front of a registry for tests: records every request, counts finalised blob
//! uploads per (repository, digest), fails a seeded fraction of requests (before or after
//! forwarding), can freeze all traffic after N uploads (to kill a client mid-copy), and can demand
//! bearer tokens that it issues itself at `/token` against basic credentials. It can also hold an
//! index manifest PUT open for a while and record every manifest PUT to the same repository that
//! overlaps one referencing it (or referenced by it).

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, BodyStream, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

type ProxyBody = BoxBody<Bytes, std::io::Error>;

/// How the proxy misbehaves.
#[derive(Default, Clone)]
pub struct ProxyConfig {
    /// Fraction of requests failed (half with 503 before forwarding, half with 502 after).
    pub fail_rate: f64,
    /// Seed of the failure sequence.
    pub seed: u64,
    /// Freeze every request once this many uploads were finalised.
    pub gate_after_uploads: Option<usize>,
    /// Require `Bearer` tokens, issued at `/token` for these basic credentials.
    pub bearer_credentials: Option<(String, String)>,
    /// Serve the OCI 1.1 referrers API: (subject digest, referrers index JSON); other digests get
    /// an empty index. Without it, referrers requests reach the registry (which may not serve them).
    pub referrers: Option<(String, Vec<u8>)>,
    /// `HEAD` request paths held until an index manifest PUT has arrived (at most 10 s), so the
    /// client reaches them only once it is pushing an index.
    pub hold_heads_until_index_put: Vec<String>,
    /// How long every index manifest PUT is held before it is forwarded (widens the window in
    /// which an overlapping manifest PUT is seen).
    pub index_put_hold: Option<Duration>,
}

/// A manifest PUT being handled.
struct ManifestPut {
    id: usize,
    repo: String,
    digest: String,
    children: Vec<String>,
}

/// One request seen.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub status: u16,
}

pub struct State {
    upstream: String,
    config: Mutex<ProxyConfig>,
    rng: Mutex<u64>,
    pub seen: Mutex<Vec<Seen>>,
    /// (repository, digest) of every upload the registry accepted (PUT ?digest= → 201).
    pub finalized: Mutex<Vec<(String, String)>>,
    pub token_requests: Mutex<Vec<bool>>,
    gate_released: tokio::sync::Notify,
    index_put_arrived: tokio::sync::watch::Sender<bool>,
    /// How many `HEAD`s were held and then let go by an index PUT (not by the time limit).
    pub heads_released_by_index_put: AtomicUsize,
    manifest_puts: Mutex<Vec<ManifestPut>>,
    next_put: AtomicUsize,
    /// Manifest PUTs that were in flight at the same time as a PUT of a manifest referencing them.
    pub overlapping_puts: Mutex<Vec<String>>,
}

/// A running proxy; stops on Drop.
pub struct Proxy {
    pub port: u16,
    pub state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

const TOKEN: &str = "test-token-7f3a";
const EMPTY_INDEX: &str =
    r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;

impl Proxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str, config: ProxyConfig) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(State {
            upstream: upstream.to_string(),
            rng: Mutex::new(config.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            config: Mutex::new(config),
            seen: Mutex::new(Vec::new()),
            finalized: Mutex::new(Vec::new()),
            token_requests: Mutex::new(Vec::new()),
            gate_released: tokio::sync::Notify::new(),
            index_put_arrived: tokio::sync::watch::Sender::new(false),
            heads_released_by_index_put: AtomicUsize::new(0),
            manifest_puts: Mutex::new(Vec::new()),
            next_put: AtomicUsize::new(0),
            overlapping_puts: Mutex::new(Vec::new()),
        });
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let task_state = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = Arc::clone(&task_state);
                let client = client.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        handle(Arc::clone(&state), client.clone(), port, request)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Proxy { port, state, task }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Whether the freeze point was reached.
    pub fn gate_reached(&self) -> bool {
        let gate = self.state.config.lock().expect("lock").gate_after_uploads;
        gate.is_some_and(|n| self.state.finalized.lock().expect("lock").len() >= n)
    }

    /// Lets traffic through again (frozen requests get 503) and forgets what was seen.
    pub fn release_and_reset(&self) {
        self.state.config.lock().expect("lock").gate_after_uploads = None;
        self.state.gate_released.notify_waiters();
        self.state.seen.lock().expect("lock").clear();
        self.state.finalized.lock().expect("lock").clear();
    }

    pub fn finalized(&self) -> Vec<(String, String)> {
        self.state.finalized.lock().expect("lock").clone()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().expect("lock").clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn full(status: StatusCode, body: &str) -> Response<ProxyBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(|e: Infallible| match e {})
            .boxed(),
    );
    *response.status_mut() = status;
    response
}

fn roll(state: &State) -> f64 {
    let mut rng = state.rng.lock().expect("lock");
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    (*rng % 1_000_000) as f64 / 1_000_000.0
}

async fn handle(
    state: Arc<State>,
    client: reqwest::Client,
    port: u16,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let method = request.method().to_string();
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let path = request.uri().path().to_string();
    let config = state.config.lock().expect("lock").clone();
    let record = |status: u16| {
        state.seen.lock().expect("lock").push(Seen {
            method: method.clone(),
            path: path_and_query.clone(),
            status,
        })
    };

    if let Some((user, pass)) = &config.bearer_credentials {
        if path == "/token" {
            let expected = format!("Basic {}", base64_encode(&format!("{user}:{pass}")));
            let ok = request
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                == Some(expected.as_str());
            state.token_requests.lock().expect("lock").push(ok);
            return Ok(if ok {
                full(StatusCode::OK, &format!("{{\"token\":\"{TOKEN}\"}}"))
            } else {
                full(StatusCode::UNAUTHORIZED, "{}")
            });
        }
        let bearer = format!("Bearer {TOKEN}");
        if request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            != Some(bearer.as_str())
        {
            record(401);
            let mut response = full(
                StatusCode::UNAUTHORIZED,
                "{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}",
            );
            let challenge = format!(
                "Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"test-registry\",scope=\"repository:any:pull,push\""
            );
            response
                .headers_mut()
                .insert("www-authenticate", challenge.parse().expect("header"));
            return Ok(response);
        }
    }
    if let Some((subject, index)) = &config.referrers
        && let Some(digest) = path.split("/referrers/").nth(1)
    {
        record(200);
        let body = if digest == subject {
            String::from_utf8_lossy(index).into_owned()
        } else {
            EMPTY_INDEX.to_string()
        };
        let mut response = full(StatusCode::OK, &body);
        response.headers_mut().insert(
            "content-type",
            "application/vnd.oci.image.index.v1+json"
                .parse()
                .expect("header"),
        );
        return Ok(response);
    }
    if let Some(limit) = config.gate_after_uploads
        && state.finalized.lock().expect("lock").len() >= limit
    {
        state.gate_released.notified().await;
        record(503);
        return Ok(full(StatusCode::SERVICE_UNAVAILABLE, "released"));
    }
    let dice = roll(&state);
    if dice < config.fail_rate / 2.0 {
        record(503);
        return Ok(full(StatusCode::SERVICE_UNAVAILABLE, "injected failure"));
    }

    let mut forward = client.request(
        request.method().clone(),
        format!("{}{path_and_query}", state.upstream),
    );
    for (name, value) in request.headers() {
        let skip = matches!(
            name.as_str(),
            "connection" | "transfer-encoding" | "keep-alive"
        ) || (config.bearer_credentials.is_some() && name == "authorization");
        if !skip {
            forward = forward.header(name, value);
        }
    }
    if method == "HEAD" && config.hold_heads_until_index_put.contains(&path) {
        let mut arrived = state.index_put_arrived.subscribe();
        let held = !*arrived.borrow_and_update();
        let wait = arrived.wait_for(|arrived| *arrived);
        if held
            && tokio::time::timeout(Duration::from_secs(10), wait)
                .await
                .is_ok_and(|r| r.is_ok())
        {
            state
                .heads_released_by_index_put
                .fetch_add(1, Ordering::SeqCst);
        }
    }
    let mut in_flight = None;
    let body = if method == "PUT" && path.contains("/manifests/") {
        let bytes = match request.into_body().collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                record(502);
                return Ok(full(StatusCode::BAD_GATEWAY, "client body failed"));
            }
        };
        let put = manifest_put(&state, &path, &bytes);
        let is_index = !put.children.is_empty();
        in_flight = Some(PutInFlight::start(&state, put));
        if is_index {
            state.index_put_arrived.send_replace(true);
            if let Some(hold) = config.index_put_hold {
                tokio::time::sleep(hold).await;
            }
        }
        reqwest::Body::from(bytes)
    } else {
        let body_stream = BodyStream::new(request.into_body()).filter_map(|frame| async move {
            match frame {
                Ok(frame) => frame.into_data().ok().map(Ok),
                Err(e) => Some(Err(std::io::Error::other(e))),
            }
        });
        reqwest::Body::wrap_stream(body_stream)
    };
    let upstream = forward.body(body).send().await;
    drop(in_flight);
    let upstream = match upstream {
        Ok(response) => response,
        Err(_) => {
            record(502);
            return Ok(full(StatusCode::BAD_GATEWAY, "upstream failed"));
        }
    };
    let status = upstream.status().as_u16();
    if method == "PUT" && status == 201 && path.contains("/blobs/uploads/") {
        let digest = path_and_query
            .split("digest=")
            .nth(1)
            .map(|d| d.split('&').next().unwrap_or(d).replace("%3A", ":"));
        let repo = path
            .trim_start_matches("/v2/")
            .split("/blobs/uploads/")
            .next()
            .unwrap_or_default()
            .to_string();
        if let Some(digest) = digest {
            state.finalized.lock().expect("lock").push((repo, digest));
        }
    }
    if dice < config.fail_rate {
        record(502);
        return Ok(full(
            StatusCode::BAD_GATEWAY,
            "injected failure after forwarding",
        ));
    }
    record(status);
    let mut response = Response::builder().status(status);
    for (name, value) in upstream.headers() {
        if !matches!(
            name.as_str(),
            "connection" | "transfer-encoding" | "keep-alive"
        ) {
            response = response.header(name, value);
        }
    }
    let stream = upstream
        .bytes_stream()
        .map(|chunk| chunk.map(Frame::data).map_err(std::io::Error::other));
    Ok(response
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .unwrap_or_else(|_| full(StatusCode::BAD_GATEWAY, "bad response")))
}

/// What a manifest PUT to `path` with body `bytes` pushes (an index lists its children).
fn manifest_put(state: &State, path: &str, bytes: &[u8]) -> ManifestPut {
    let repo = path
        .trim_start_matches("/v2/")
        .split("/manifests/")
        .next()
        .unwrap_or_default()
        .to_string();
    let children = serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v.get("manifests").and_then(|m| m.as_array()).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|d| d.get("digest").and_then(|d| d.as_str()).map(str::to_string))
        .collect();
    ManifestPut {
        id: state.next_put.fetch_add(1, Ordering::SeqCst),
        repo,
        digest: super::sha256(bytes),
        children,
    }
}

/// Registers a manifest PUT as in flight (noting overlaps with related PUTs) until dropped.
struct PutInFlight<'a> {
    state: &'a State,
    id: usize,
}

impl<'a> PutInFlight<'a> {
    fn start(state: &'a State, put: ManifestPut) -> Self {
        let mut puts = state.manifest_puts.lock().expect("lock");
        for other in puts.iter().filter(|o| o.repo == put.repo) {
            if other.children.contains(&put.digest) || put.children.contains(&other.digest) {
                state.overlapping_puts.lock().expect("lock").push(format!(
                    "{}: {} while {} was in flight",
                    put.repo, put.digest, other.digest
                ));
            }
        }
        let id = put.id;
        puts.push(put);
        PutInFlight { state, id }
    }
}

impl Drop for PutInFlight<'_> {
    fn drop(&mut self) {
        self.state
            .manifest_puts
            .lock()
            .expect("lock")
            .retain(|p| p.id != self.id);
    }
}

fn base64_encode(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}
