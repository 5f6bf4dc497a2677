//! The in-memory object store: objects per resource, the global resourceVersion counter,
//! generation/uid/creationTimestamp bookkeeping and the bounded watch-event history.
//! It must not know about HTTP; every mutation goes through `commit_*` so watches fire.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use super::apply;
use super::resources::ApiResourceSpec;
use super::status::{ApiError, ApiResult};

/// One change, as delivered to watchers and kept in the history.
#[derive(Debug)]
pub struct StoredEvent {
    pub rv: u64,
    pub resource_id: String,
    pub namespace: String,
    pub event_type: &'static str,
    pub object: Value,
}

/// Which part of an object a write may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The main resource: for kinds with a status subresource, `status` is kept as stored.
    Main,
    /// The `/status` subresource: only `status` changes.
    Status,
    /// Test helpers: everything the caller sends is taken (status included).
    Everything,
}

pub type ObjectKey = (String, String);

pub struct State {
    pub resources: Vec<ApiResourceSpec>,
    pub objects: BTreeMap<String, BTreeMap<ObjectKey, Value>>,
    pub rv: u64,
    pub history: VecDeque<Arc<StoredEvent>>,
    pub history_limit: usize,
    /// Highest resourceVersion whose event was dropped from `history` (older watches get 410).
    pub compacted_rv: u64,
    pub events_tx: broadcast::Sender<Arc<StoredEvent>>,
    pub deleted_uids: std::collections::BTreeSet<String>,
    uid_counter: u64,
}

pub fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .map_or_else(
            |_| "1970-01-01T00:00:00Z".to_string(),
            |t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        )
}

pub fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    meta(obj).and_then(|m| m.get(field)).and_then(Value::as_str)
}

pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    match obj.get_mut("metadata").and_then(Value::as_object_mut) {
        Some(m) => m,
        None => unreachable!("metadata was just made an object"),
    }
}

/// Whether the change from `old` to `new` bumps `metadata.generation`: a `spec` change,
/// or for kinds without `spec` a change of anything except metadata and status.
pub fn generation_changes(old: &Value, new: &Value) -> bool {
    if old.get("spec").is_some() || new.get("spec").is_some() {
        return old.get("spec") != new.get("spec");
    }
    let strip = |v: &Value| -> Value {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            for k in ["metadata", "status", "apiVersion", "kind"] {
                m.remove(k);
            }
        }
        v
    };
    strip(old) != strip(new)
}

impl State {
    pub fn new(resources: Vec<ApiResourceSpec>, history_limit: usize) -> Self {
        let (events_tx, _) = broadcast::channel(16 * 1024);
        Self {
            resources,
            objects: BTreeMap::new(),
            rv: 1,
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted_rv: 1,
            events_tx,
            deleted_uids: Default::default(),
            uid_counter: 0,
        }
    }

    pub fn find_kind(&self, api_version: &str, kind: &str) -> Option<ApiResourceSpec> {
        self.resources
            .iter()
            .find(|r| r.api_version() == api_version && r.kind == kind)
            .cloned()
    }

    pub fn get(&self, res: &ApiResourceSpec, ns: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(&res.id())
            .and_then(|m| m.get(&(ns.to_string(), name.to_string())))
    }

    /// All objects of a resource, optionally in one namespace, ordered by (namespace, name).
    pub fn list(&self, res: &ApiResourceSpec, ns: Option<&str>) -> Vec<&Value> {
        self.objects
            .get(&res.id())
            .map(|m| {
                m.iter()
                    .filter(|((o_ns, _), _)| ns.is_none_or(|n| n == o_ns))
                    .map(|(_, v)| v)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn not_found(res: &ApiResourceSpec, name: &str) -> ApiError {
        ApiError::NotFound {
            kind: res.plural.clone(),
            name: name.to_string(),
        }
    }

    pub fn record(
        &mut self,
        res: &ApiResourceSpec,
        ns: &str,
        event_type: &'static str,
        object: Value,
    ) {
        let event = Arc::new(StoredEvent {
            rv: self.rv,
            resource_id: res.id(),
            namespace: ns.to_string(),
            event_type,
            object,
        });
        self.history.push_back(event.clone());
        while self.history.len() > self.history_limit {
            if let Some(old) = self.history.pop_front() {
                self.compacted_rv = old.rv;
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = self.events_tx.send(event);
    }

    /// Creates `obj` (already validated for apiVersion/kind). Sets uid, creationTimestamp,
    /// generation 1 and a fresh resourceVersion; `generateName` is honoured.
    pub fn create(
        &mut self,
        res: &ApiResourceSpec,
        ns: &str,
        obj: Value,
        manager: &str,
        scope: Scope,
    ) -> ApiResult<Value> {
        self.create_inner(res, ns, obj, manager, scope, None)
    }

    /// Creation by server-side apply: `managed` is the managedFields the apply computed.
    pub fn create_with_managed_fields(
        &mut self,
        res: &ApiResourceSpec,
        ns: &str,
        obj: Value,
        managed: Value,
    ) -> ApiResult<Value> {
        self.create_inner(res, ns, obj, "", Scope::Main, Some(managed))
    }

    fn create_inner(
        &mut self,
        res: &ApiResourceSpec,
        ns: &str,
        mut obj: Value,
        manager: &str,
        scope: Scope,
        managed: Option<Value>,
    ) -> ApiResult<Value> {
        if !obj.is_object() {
            return Err(ApiError::BadRequest("body must be a JSON object".into()));
        }
        obj["apiVersion"] = json!(res.api_version());
        obj["kind"] = json!(res.kind);
        if res.status_subresource
            && scope != Scope::Everything
            && let Some(m) = obj.as_object_mut()
        {
            m.remove("status");
        }
        let mut name = meta_str(&obj, "name").unwrap_or_default().to_string();
        if name.is_empty() {
            let Some(prefix) = meta_str(&obj, "generateName") else {
                return Err(ApiError::Invalid {
                    kind: res.kind.clone(),
                    name: String::new(),
                    message: "metadata.name: Required value: name or generateName is required"
                        .into(),
                });
            };
            name = format!("{prefix}{:05x}", self.rv + 1);
        }
        if self.get(res, ns, &name).is_some() {
            return Err(ApiError::AlreadyExists {
                kind: res.plural.clone(),
                name,
            });
        }
        self.rv += 1;
        self.uid_counter += 1;
        let uid = format!("00000000-0000-4000-8000-{:012x}", self.uid_counter);
        let m = meta_mut(&mut obj);
        m.insert("name".into(), json!(name));
        if res.namespaced {
            m.insert("namespace".into(), json!(ns));
        } else {
            m.remove("namespace");
        }
        for server_owned in [
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
        ] {
            m.remove(server_owned);
        }
        m.insert("uid".into(), json!(uid));
        m.insert("creationTimestamp".into(), json!(now_rfc3339()));
        m.insert("generation".into(), json!(1));
        m.insert("resourceVersion".into(), json!(self.rv.to_string()));
        match managed {
            Some(entries) => {
                meta_mut(&mut obj).insert("managedFields".into(), entries);
            }
            None => apply::record_update(None, &mut obj, manager, scope),
        }
        if res.kind == "Namespace" && obj.pointer("/status/phase").is_none() {
            obj["status"] = json!({"phase": "Active"});
        }
        self.objects
            .entry(res.id())
            .or_default()
            .insert((ns.to_string(), name), obj.clone());
        self.record(res, ns, "ADDED", obj.clone());
        Ok(obj)
    }

    /// Replaces an existing object with `new` restricted to `scope`, keeping server-owned
    /// metadata. A write that changes nothing keeps the resourceVersion and emits no event.
    /// `managed_fields` is `None` to record an `Update` by `manager`, or the entries an
    /// apply computed.
    #[allow(clippy::too_many_arguments)]
    pub fn replace(
        &mut self,
        res: &ApiResourceSpec,
        ns: &str,
        name: &str,
        new: Value,
        manager: &str,
        scope: Scope,
        managed_fields: Option<Value>,
    ) -> ApiResult<Value> {
        let Some(old) = self.get(res, ns, name).cloned() else {
            return Err(Self::not_found(res, name));
        };
        if let Some(sent_rv) = meta_str(&new, "resourceVersion")
            && !sent_rv.is_empty()
            && Some(sent_rv) != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::Conflict {
                kind: res.plural.clone(),
                name: name.to_string(),
                message: "the object has been modified; please apply your changes to the latest version and try again".into(),
            });
        }
        if let Some(sent_name) = meta_str(&new, "name")
            && sent_name != name
        {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({sent_name}) does not match the name on the URL ({name})"
            )));
        }
        let merged = merge_scope(res, &old, new, scope);
        let mut merged = merged;
        match managed_fields {
            Some(entries) => {
                meta_mut(&mut merged).insert("managedFields".into(), entries);
            }
            None => apply::record_update(Some(&old), &mut merged, manager, scope),
        }
        if merged == old {
            return Ok(old);
        }
        if generation_changes(&old, &merged) {
            let generation = meta(&old)
                .and_then(|m| m.get("generation"))
                .and_then(Value::as_i64);
            meta_mut(&mut merged).insert("generation".into(), json!(generation.unwrap_or(0) + 1));
        }
        self.rv += 1;
        meta_mut(&mut merged).insert("resourceVersion".into(), json!(self.rv.to_string()));
        let finalizers_gone = merged
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_none_or(|f| f.is_empty());
        if meta(&merged).is_some_and(|m| m.contains_key("deletionTimestamp")) && finalizers_gone {
            self.remove_now(res, ns, name, merged.clone());
            self.collect_garbage();
            return Ok(merged);
        }
        self.objects
            .entry(res.id())
            .or_default()
            .insert((ns.to_string(), name.to_string()), merged.clone());
        self.record(res, ns, "MODIFIED", merged.clone());
        Ok(merged)
    }

    /// Drops an object from the store and emits DELETED (the object carries a new rv).
    pub fn remove_now(&mut self, res: &ApiResourceSpec, ns: &str, name: &str, mut last: Value) {
        if let Some(m) = self.objects.get_mut(&res.id()) {
            m.remove(&(ns.to_string(), name.to_string()));
        }
        if let Some(uid) = meta_str(&last, "uid") {
            self.deleted_uids.insert(uid.to_string());
        }
        if meta_str(&last, "resourceVersion") != Some(&self.rv.to_string()) {
            self.rv += 1;
            meta_mut(&mut last).insert("resourceVersion".into(), json!(self.rv.to_string()));
        }
        self.record(res, ns, "DELETED", last);
    }
}

/// The object that results from writing `new` over `old` within `scope`: server-owned
/// metadata always comes from `old`; `Main` keeps `old.status` for kinds with a status
/// subresource; `Status` keeps everything but `status` (labels/annotations included).
fn merge_scope(res: &ApiResourceSpec, old: &Value, mut new: Value, scope: Scope) -> Value {
    match scope {
        Scope::Status => {
            let mut out = old.clone();
            match new.get_mut("status").map(Value::take) {
                Some(status) => out["status"] = status,
                None => {
                    if let Some(m) = out.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
            out
        }
        Scope::Main | Scope::Everything => {
            if !new.is_object() {
                return old.clone();
            }
            new["apiVersion"] = old["apiVersion"].clone();
            new["kind"] = old["kind"].clone();
            if scope == Scope::Main && res.status_subresource {
                match old.get("status") {
                    Some(status) => new["status"] = status.clone(),
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
            let old_meta = meta(old).cloned().unwrap_or_default();
            let m = meta_mut(&mut new);
            for key in [
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "generation",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "managedFields",
                "resourceVersion",
            ] {
                match old_meta.get(key) {
                    Some(v) => m.insert(key.into(), v.clone()),
                    None => m.remove(key),
                };
            }
            new
        }
    }
}
