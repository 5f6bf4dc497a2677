//! HTTP side of the fake API server: the server thread, URL routing, verb dispatch, fault
//! injection and request logging. It must not implement object semantics itself (those
//! live in store/apply/patch/gc/watch).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use super::discovery;
use super::faults::{FaultState, LoggedRequest};
use super::gc::Propagation;
use super::patch::{PatchKind, apply_patch};
use super::resources::ApiResourceSpec;
use super::select::Selector;
use super::status::{ApiError, ApiResult};
use super::store::{Scope, State, meta_str};
use super::{apply, watch};

type Body = BoxBody<Bytes, Infallible>;

/// State shared between the server thread and the test's handle.
pub struct Shared {
    state: Mutex<State>,
    pub faults: Mutex<FaultState>,
    pub log: Mutex<Vec<LoggedRequest>>,
    pub drop_watches: tokio::sync::watch::Sender<u64>,
    pub bookmark_interval: Duration,
    pub address: String,
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub fn new(state: State, bookmark_interval: Duration, address: String) -> Self {
        Self {
            state: Mutex::new(state),
            faults: Mutex::new(FaultState::new()),
            log: Mutex::new(Vec::new()),
            drop_watches: tokio::sync::watch::channel(0).0,
            bookmark_interval,
            address,
        }
    }

    pub fn lock_state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

/// Runs the accept loop on its own thread and current-thread runtime until `shutdown` fires;
/// dropping the runtime then cancels every connection and watch task.
pub fn spawn(
    shared: Arc<Shared>,
    listener: std::net::TcpListener,
    shutdown: tokio::sync::oneshot::Receiver<()>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    listener.set_nonblocking(true)?;
    std::thread::Builder::new()
        .name("fake-kube-apiserver".into())
        .spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                tokio::pin!(shutdown);
                loop {
                    tokio::select! {
                        _ = &mut shutdown => return,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let shared = shared.clone();
                            tokio::spawn(async move {
                                let service = service_fn(move |req| handle(shared.clone(), req));
                                let _ = hyper::server::conn::http1::Builder::new()
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            });
                        }
                    }
                }
            });
        })
}

struct Target {
    res: ApiResourceSpec,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

enum Route {
    Discovery(Option<Value>),
    Resource(Target),
    NotFound,
}

fn route(shared: &Shared, path: &str) -> Route {
    let resources = shared.lock_state().resources.clone();
    let seg: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (group, version, rest) = match seg.as_slice() {
        ["version"] => return Route::Discovery(Some(discovery::version())),
        ["api"] => return Route::Discovery(Some(discovery::core_versions(&shared.address))),
        ["apis"] => return Route::Discovery(Some(discovery::group_list(&resources))),
        ["apis", g] => return Route::Discovery(discovery::group(&resources, g)),
        ["api", v] => return Route::Discovery(discovery::resource_list(&resources, "", v)),
        ["apis", g, v] => return Route::Discovery(discovery::resource_list(&resources, g, v)),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Route::NotFound,
    };
    let find = |plural: &str| {
        resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
            .cloned()
    };
    let namespaced = match rest {
        ["namespaces", ns, plural, tail @ ..] if find(plural).is_some_and(|r| r.namespaced) => {
            Some((Some(ns.to_string()), *plural, tail))
        }
        [plural, tail @ ..] => find(plural)
            .filter(|r| !r.namespaced || tail.is_empty())
            .map(|_| (None, *plural, tail)),
        _ => None,
    };
    let Some((namespace, plural, tail)) = namespaced else {
        return Route::NotFound;
    };
    let Some(res) = find(plural) else {
        return Route::NotFound;
    };
    if tail.len() > 2 || (tail.len() == 2 && !(tail[1] == "status" && res.status_subresource)) {
        return Route::NotFound;
    }
    Route::Resource(Target {
        res,
        namespace,
        name: tail.first().map(|s| s.to_string()),
        subresource: tail.get(1).map(|s| s.to_string()),
    })
}

fn verb_of(method: &Method, target: &Target, query: &HashMap<String, String>) -> &'static str {
    let watching = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
    match (method.as_str(), target.name.is_some()) {
        ("GET", false) if watching => "watch",
        ("GET", false) => "list",
        ("GET", true) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    }
}

fn full(code: u16, body: &Value) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

fn error_response(err: &ApiError) -> Response<Body> {
    let mut resp = full(err.code(), &err.to_status());
    if err.code() == 429 {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    resp
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query: HashMap<String, String> =
        form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let header_str = |name: header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header_str(header::CONTENT_TYPE).unwrap_or_default();
    let user_agent = header_str(header::USER_AGENT);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();

    let mut entry = LoggedRequest {
        verb: "discovery".into(),
        path: path.clone(),
        kind: None,
        namespace: None,
        name: None,
        subresource: None,
        status: 200,
        field_manager: query.get("fieldManager").cloned(),
        injected: false,
    };
    let response = match route(&shared, &path) {
        Route::Discovery(Some(doc)) => full(200, &doc),
        Route::Discovery(None) | Route::NotFound => error_response(&ApiError::NotFound {
            kind: String::new(),
            name: path.clone(),
        }),
        Route::Resource(target) => {
            let verb = verb_of(&method, &target, &query);
            entry.verb = verb.into();
            entry.kind = Some(target.res.kind.clone());
            entry.namespace = target.namespace.clone();
            entry.name = target.name.clone();
            entry.subresource = target.subresource.clone();
            let decision = lock(&shared.faults).decide(verb, Some(&target.res.kind));
            if !decision.latency.is_zero() {
                tokio::time::sleep(decision.latency).await;
            }
            if let Some(code) = decision.fail_with {
                entry.injected = true;
                error_response(&ApiError::Injected(code))
            } else {
                let manager = query
                    .get("fieldManager")
                    .cloned()
                    .or_else(|| {
                        user_agent
                            .as_deref()
                            .map(|ua| ua.split('/').next().unwrap_or(ua).to_string())
                    })
                    .unwrap_or_else(|| "unknown".into());
                let call = Call {
                    verb,
                    query: &query,
                    body: &body,
                    content_type: &content_type,
                    manager,
                };
                serve_resource(&shared, &target, call).unwrap_or_else(|e| error_response(&e))
            }
        }
    };
    entry.status = response.status().as_u16();
    lock(&shared.log).push(entry);
    Ok(response)
}

struct Call<'a> {
    verb: &'static str,
    query: &'a HashMap<String, String>,
    body: &'a [u8],
    content_type: &'a str,
    manager: String,
}

fn parse_body(body: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(body)
        .or_else(|_| yaml_serde::from_slice::<Value>(body))
        .map_err(|e| ApiError::BadRequest(format!("invalid request body: {e}")))
}

fn serve_resource(shared: &Arc<Shared>, t: &Target, call: Call<'_>) -> ApiResult<Response<Body>> {
    let res = &t.res;
    let ns = t.namespace.clone().unwrap_or_default();
    let name = t.name.clone().unwrap_or_default();
    let scope = if t.subresource.as_deref() == Some("status") {
        Scope::Status
    } else {
        Scope::Main
    };
    if res.namespaced && t.namespace.is_none() && !matches!(call.verb, "list" | "watch") {
        return Err(ApiError::MethodNotAllowed(format!(
            "{} is namespaced: use /namespaces/{{ns}}/{}",
            res.plural, res.plural
        )));
    }
    let q = |k: &str| call.query.get(k).map(String::as_str);
    match call.verb {
        "get" => {
            let state = shared.lock_state();
            let obj = state
                .get(res, &ns, &name)
                .ok_or_else(|| State::not_found(res, &name))?;
            Ok(full(200, obj))
        }
        "list" => {
            let selector = Selector::parse(q("labelSelector"), q("fieldSelector"))?;
            let limit = q("limit")
                .and_then(|l| l.parse::<usize>().ok())
                .filter(|l| *l > 0);
            let state = shared.lock_state();
            Ok(full(
                200,
                &list_page(&state, t, &selector, limit, q("continue"))?,
            ))
        }
        "watch" => {
            let request = watch::WatchRequest {
                res: res.clone(),
                namespace: t.namespace.clone(),
                selector: Selector::parse(q("labelSelector"), q("fieldSelector"))?,
                resource_version: q("resourceVersion").map(str::to_string),
                send_initial_events: q("sendInitialEvents") == Some("true"),
                allow_bookmarks: q("allowWatchBookmarks") == Some("true"),
                timeout: q("timeoutSeconds")
                    .and_then(|s| s.parse().ok())
                    .map(Duration::from_secs),
            };
            let rx = watch::start(shared, request)?;
            let stream = futures::stream::unfold(rx, |mut rx| async move {
                rx.recv()
                    .await
                    .map(|chunk| (Ok::<_, Infallible>(Frame::data(chunk)), rx))
            });
            let mut resp = Response::new(BodyExt::boxed(StreamBody::new(stream)));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            );
            Ok(resp)
        }
        "create" => {
            let obj = parse_body(call.body)?;
            if let Some(body_ns) =
                meta_str(&obj, "namespace").filter(|b| res.namespaced && *b != ns)
            {
                return Err(ApiError::BadRequest(format!(
                    "the namespace of the provided object ({body_ns}) does not match the namespace sent on the request ({ns})"
                )));
            }
            let mut state = shared.lock_state();
            let created = state.create(res, &ns, obj, &call.manager, Scope::Main)?;
            let created_name = meta_str(&created, "name").unwrap_or_default().to_string();
            state.collect_if_orphaned(res, &ns, &created_name);
            Ok(full(201, &created))
        }
        "update" => {
            let obj = parse_body(call.body)?;
            let mut state = shared.lock_state();
            let updated = state.replace(res, &ns, &name, obj, &call.manager, scope, None)?;
            state.collect_if_orphaned(res, &ns, &name);
            Ok(full(200, &updated))
        }
        "patch" => {
            let kind = PatchKind::from_content_type(call.content_type)?;
            let mut state = shared.lock_state();
            if kind == PatchKind::Apply {
                let manager = q("fieldManager").ok_or_else(|| {
                    ApiError::BadRequest(
                        "PATCH, application/apply-patch+yaml: fieldManager is required".into(),
                    )
                })?;
                let existed = state.get(res, &ns, &name).is_some();
                let applied = parse_body(call.body)?;
                let force = q("force") == Some("true");
                let obj =
                    apply::apply(&mut state, res, &ns, &name, applied, manager, force, scope)?;
                state.collect_if_orphaned(res, &ns, &name);
                return Ok(full(if existed { 200 } else { 201 }, &obj));
            }
            let current = state
                .get(res, &ns, &name)
                .cloned()
                .ok_or_else(|| State::not_found(res, &name))?;
            let patched = apply_patch(kind, &current, call.body)?;
            let updated = state.replace(res, &ns, &name, patched, &call.manager, scope, None)?;
            state.collect_if_orphaned(res, &ns, &name);
            Ok(full(200, &updated))
        }
        "delete" => {
            let options = if call.body.is_empty() {
                json!({})
            } else {
                parse_body(call.body)?
            };
            let mut state = shared.lock_state();
            if let Some(pre_rv) = options
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
            {
                let current = state
                    .get(res, &ns, &name)
                    .ok_or_else(|| State::not_found(res, &name))?;
                if meta_str(current, "resourceVersion") != Some(pre_rv) {
                    return Err(ApiError::Conflict {
                        kind: res.plural.clone(),
                        name,
                        message: "precondition failed: resourceVersion does not match".into(),
                    });
                }
            }
            let last = state.delete(res, &ns, &name, Propagation::from_delete_options(&options))?;
            Ok(full(200, &last))
        }
        "deletecollection" => {
            let selector = Selector::parse(q("labelSelector"), q("fieldSelector"))?;
            let options = if call.body.is_empty() {
                json!({})
            } else {
                parse_body(call.body)?
            };
            let mut state = shared.lock_state();
            let names: Vec<(String, String)> = state
                .list(res, t.namespace.as_deref())
                .into_iter()
                .filter(|o| selector.matches(o))
                .map(|o| {
                    let ns = meta_str(o, "namespace").unwrap_or_default().to_string();
                    (ns, meta_str(o, "name").unwrap_or_default().to_string())
                })
                .collect();
            let mut items = Vec::new();
            for (o_ns, o_name) in names {
                if let Ok(last) = state.delete(
                    res,
                    &o_ns,
                    &o_name,
                    Propagation::from_delete_options(&options),
                ) {
                    items.push(last);
                }
            }
            let rv = state.rv.to_string();
            Ok(full(200, &list_doc(res, rv, None, items)))
        }
        other => Err(ApiError::MethodNotAllowed(format!(
            "verb {other} is not supported"
        ))),
    }
}

fn list_doc(
    res: &ApiResourceSpec,
    rv: String,
    continue_token: Option<String>,
    items: Vec<Value>,
) -> Value {
    let mut metadata = json!({ "resourceVersion": rv });
    if let Some(token) = continue_token {
        metadata["continue"] = json!(token);
    }
    json!({
        "kind": format!("{}List", res.kind),
        "apiVersion": res.api_version(),
        "metadata": metadata,
        "items": items,
    })
}

/// One page of a list. The continue token is `<listRV>:<namespace>:<name>` of the last item;
/// pages read the current state (no snapshot), and a token older than the retained event
/// history is rejected with 410 Expired like a compacted etcd revision.
fn list_page(
    state: &State,
    t: &Target,
    selector: &Selector,
    limit: Option<usize>,
    continue_token: Option<&str>,
) -> ApiResult<Value> {
    let mut list_rv = state.rv;
    let mut after: Option<(String, String)> = None;
    if let Some(token) = continue_token.filter(|c| !c.is_empty()) {
        let mut parts = token.splitn(3, ':');
        let (Some(rv), Some(tok_ns), Some(tok_name)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(ApiError::BadRequest(format!(
                "invalid continue token {token:?}"
            )));
        };
        list_rv = rv
            .parse()
            .map_err(|_| ApiError::BadRequest(format!("invalid continue token {token:?}")))?;
        if list_rv < state.compacted_rv {
            return Err(ApiError::Gone(
                "The provided continue parameter is too old to display a consistent list result."
                    .into(),
            ));
        }
        after = Some((tok_ns.to_string(), tok_name.to_string()));
    }
    let key = |o: &Value| {
        (
            meta_str(o, "namespace").unwrap_or_default().to_string(),
            meta_str(o, "name").unwrap_or_default().to_string(),
        )
    };
    let matching: Vec<&Value> = state
        .list(&t.res, t.namespace.as_deref())
        .into_iter()
        .filter(|o| selector.matches(o))
        .filter(|o| after.as_ref().is_none_or(|a| key(o) > *a))
        .collect();
    let take = limit.unwrap_or(usize::MAX).min(matching.len());
    let items: Vec<Value> = matching[..take].iter().map(|o| (*o).clone()).collect();
    let next = (take < matching.len()).then(|| {
        let (last_ns, last_name) = key(matching[take - 1]);
        format!("{list_rv}:{last_ns}:{last_name}")
    });
    let mut doc = list_doc(&t.res, list_rv.to_string(), next.clone(), items);
    if next.is_some() {
        doc["metadata"]["remainingItemCount"] = json!(matching.len() - take);
    }
    Ok(doc)
}
