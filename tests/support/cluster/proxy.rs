//! A fault-injecting, request-logging HTTPS proxy between the operator and the real kube-apiserver:
//! TLS on both sides with the test CA (clients such as kubectl never send a bearer token over plain
//! HTTP, and the operator must verify its server as it does in a cluster). It fails a seeded share of requests with proper `Status` bodies (409/429/500), adds
//! latency, and ends open watch streams on demand. It never changes a request or an object.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use super::faults::{FaultState, LoggedRequest};

type ProxyBody = BoxBody<Bytes, std::io::Error>;

/// Plural → Kind, per API group (filled from discovery by the control plane).
pub type KindTable = Arc<RwLock<HashMap<(String, String), String>>>;

pub struct ProxyState {
    upstream: String,
    http: reqwest::Client,
    pub kinds: KindTable,
    pub faults: Mutex<FaultState>,
    pub log: Mutex<Vec<LoggedRequest>>,
    pub drop_watches: tokio::sync::watch::Sender<u64>,
}

/// The proxy task; ends when the runtime that runs it is dropped.
pub struct Proxy {
    pub url: String,
    pub state: Arc<ProxyState>,
}

impl Proxy {
    /// Binds 127.0.0.1:0 and serves TLS with `cert_pem`/`key_pem` on `runtime`.
    pub fn start(
        runtime: &tokio::runtime::Runtime,
        upstream: &str,
        ca_pem: &str,
        cert_pem: &str,
        key_pem: &str,
    ) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("test CA");
        let http = reqwest::Client::builder()
            .add_root_certificate(ca)
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("proxy upstream client");
        let (drop_watches, _) = tokio::sync::watch::channel(0);
        let state = Arc::new(ProxyState {
            upstream: upstream.trim_end_matches('/').to_string(),
            http,
            kinds: KindTable::default(),
            faults: Mutex::new(FaultState::new()),
            log: Mutex::new(Vec::new()),
            drop_watches,
        });
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind proxy");
        let url = format!("https://{}", listener.local_addr().expect("proxy address"));
        let acceptor = tls_acceptor(cert_pem, key_pem);
        let serving = state.clone();
        runtime.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let state = serving.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |request| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(handle(state, request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { url, state }
    }
}

fn tls_acceptor(cert_pem: &str, key_pem: &str) -> tokio_rustls::TlsAcceptor {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .expect("proxy certificate");
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("proxy key");
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("proxy TLS config");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
}

/// What a request addresses, parsed from its path and query.
struct Target {
    verb: String,
    group: String,
    plural: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
    field_manager: Option<String>,
}

fn parse(method: &hyper::Method, path: &str, query: &str) -> Target {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    // /api/v1/... or /apis/group/version/...
    let (group, rest) = match segments.as_slice() {
        ["api", _version, rest @ ..] => (String::new(), rest),
        ["apis", group, _version, rest @ ..] => (group.to_string(), rest),
        _ => (String::new(), &[][..]),
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, more @ ..] if !more.is_empty() => (Some(ns.to_string()), more),
        _ => (None, rest),
    };
    let plural = rest.first().map(|s| s.to_string());
    let name = rest.get(1).map(|s| s.to_string());
    let subresource = rest.get(2).map(|s| s.to_string());
    let params: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let watching = params.get("watch").is_some_and(|v| v == "true" || v == "1");
    let verb = match (method.as_str(), plural.is_some(), name.is_some()) {
        (_, false, _) => "discovery",
        ("GET", _, true) => "get",
        ("GET", _, false) if watching => "watch",
        ("GET", _, false) => "list",
        ("POST", _, _) => "create",
        ("PUT", _, _) => "update",
        ("PATCH", _, _) => "patch",
        ("DELETE", _, true) => "delete",
        ("DELETE", _, false) => "deletecollection",
        _ => "other",
    };
    Target {
        verb: verb.to_string(),
        group,
        plural,
        namespace,
        name,
        subresource,
        field_manager: params.get("fieldManager").cloned(),
    }
}

fn status_body(code: u16) -> (&'static str, String) {
    let reason = match code {
        409 => "Conflict",
        429 => "TooManyRequests",
        _ => "InternalError",
    };
    let body = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("injected fault ({code})"), "reason": reason, "code": code,
        "details": {"retryAfterSeconds": 1},
    });
    (reason, body.to_string())
}

fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

async fn handle(state: Arc<ProxyState>, request: Request<Incoming>) -> Response<ProxyBody> {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or_default().to_string();
    let target = parse(&method, &path, &query);
    let kind = target.plural.as_ref().and_then(|plural| {
        state
            .kinds
            .read()
            .ok()?
            .get(&(target.group.clone(), plural.clone()))
            .cloned()
    });
    let decision = if target.verb == "discovery" {
        None
    } else {
        let mut faults = state.faults.lock().expect("faults lock");
        Some(faults.decide(&target.verb, kind.as_deref()))
    };
    let mut entry = LoggedRequest {
        verb: target.verb.clone(),
        path: path.clone(),
        kind: kind.clone(),
        namespace: target.namespace.clone(),
        name: target.name.clone(),
        subresource: target.subresource.clone(),
        status: 0,
        field_manager: target.field_manager.clone(),
        injected: false,
    };
    if let Some(decision) = &decision {
        if !decision.latency.is_zero() {
            tokio::time::sleep(decision.latency).await;
        }
        if let Some(code) = decision.fail_with {
            entry.status = code;
            entry.injected = true;
            state.log.lock().expect("log lock").push(entry);
            let (_, body) = status_body(code);
            let mut response = Response::new(full(body));
            *response.status_mut() =
                hyper::StatusCode::from_u16(code).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/json"),
            );
            if code == 429 {
                response.headers_mut().insert(
                    hyper::header::RETRY_AFTER,
                    hyper::header::HeaderValue::from_static("1"),
                );
            }
            return response;
        }
    }

    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let url = if query.is_empty() {
        format!("{}{path}", state.upstream)
    } else {
        format!("{}{path}?{query}", state.upstream)
    };
    let mut upstream = state.http.request(parts.method, url).body(body);
    for (name, value) in &parts.headers {
        if name != hyper::header::HOST && name != hyper::header::CONNECTION {
            upstream = upstream.header(name, value);
        }
    }
    let answer = match upstream.send().await {
        Ok(answer) => answer,
        Err(error) => {
            entry.status = 502;
            state.log.lock().expect("log lock").push(entry);
            let mut response = Response::new(full(format!("proxy: {error}")));
            *response.status_mut() = hyper::StatusCode::BAD_GATEWAY;
            return response;
        }
    };
    entry.status = answer.status().as_u16();
    state.log.lock().expect("log lock").push(entry);
    let mut response = Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        if name != hyper::header::CONNECTION && name != hyper::header::TRANSFER_ENCODING {
            response = response.header(name.as_str(), value.as_bytes());
        }
    }
    let mut epoch = state.drop_watches.subscribe();
    let watching = target.verb == "watch";
    let stream = answer.bytes_stream().map(|chunk| {
        chunk
            .map(Frame::data)
            .map_err(|e| std::io::Error::other(e.to_string()))
    });
    let body: ProxyBody = if watching {
        // Ends the stream when `drop_watches` is bumped, as a broken connection would.
        let cut = async move {
            let _ = epoch.changed().await;
        };
        BodyExt::boxed(StreamBody::new(stream.take_until(Box::pin(cut))))
    } else {
        BodyExt::boxed(StreamBody::new(stream))
    };
    response.body(body).unwrap_or_else(|_| {
        let mut r = Response::new(full("proxy: bad upstream response"));
        *r.status_mut() = hyper::StatusCode::BAD_GATEWAY;
        r
    })
}
