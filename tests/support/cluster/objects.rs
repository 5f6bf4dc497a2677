//! Reading and writing objects of the real control plane as the test harness (admin user, field
//! manager `test-harness`): blocking wrappers that resolve a resource by plural, Kind or
//! `group/plural` through discovery. The harness plays users, kubelet, Kyverno and CloudNativePG
//! with these; it never plays the operator.

use std::path::Path;
use std::time::{Duration, Instant};

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope};
use serde_json::Value;

use super::ControlPlane;

/// The field manager of every harness write.
pub const HARNESS_MANAGER: &str = "test-harness";

/// One served kind.
#[derive(Clone, Debug)]
pub struct Served {
    pub resource: ApiResource,
    pub namespaced: bool,
}

pub async fn client(kubeconfig: &Path) -> kube::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(kubeconfig).expect("read kubeconfig"),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("kubeconfig");
    kube::Client::try_from(config).expect("kube client")
}

/// Polls `/readyz` until it answers `ok`; `check` panics when a process died.
pub fn wait_ready(
    runtime: &tokio::runtime::Runtime,
    client: &kube::Client,
    timeout: Duration,
    check: &mut dyn FnMut(),
) {
    let deadline = Instant::now() + timeout;
    loop {
        check();
        let request = http::Request::get("/readyz")
            .body(Vec::new())
            .expect("request");
        if let Ok(text) = runtime.block_on(client.request_text(request))
            && text.trim() == "ok"
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "kube-apiserver not ready after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Poll `probe` every 50 ms until `Some`, or panic naming `what` after `timeout`.
pub fn wait<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Non-empty documents of a multi-document YAML text, as JSON.
pub fn yaml_documents(text: &str) -> Vec<Value> {
    use serde::Deserialize;
    yaml_serde::Deserializer::from_str(text)
        .filter_map(|doc| Value::deserialize(doc).ok())
        .filter(|v| v.is_object())
        .collect()
}

/// A fingerprint of every object of the kinds the operator reads or writes (uid → resourceVersion),
/// Events excluded: equal fingerprints mean nothing was created, changed or deleted in between.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint(pub Vec<(String, String)>);

const OPERATOR_KINDS: [&str; 16] = [
    "registry.aisp.dev/registries",
    "registry.aisp.dev/imagepolicies",
    "configmaps",
    "services",
    "persistentvolumeclaims",
    "secrets",
    "serviceaccounts",
    "apps/deployments",
    "apps/statefulsets",
    "batch/jobs",
    "networking.k8s.io/ingresses",
    "postgresql.cnpg.io/clusters",
    "kyverno.io/clusterpolicies",
    "policies.kyverno.io/validatingpolicies",
    "policies.kyverno.io/imagevalidatingpolicies",
    "rbac.authorization.k8s.io/rolebindings",
];

fn matches(served: &Served, wanted: &str) -> bool {
    let r = &served.resource;
    let parts: Vec<&str> = wanted.split('/').collect();
    match parts.as_slice() {
        [one] => r.plural == *one || r.kind == *one,
        [group, plural] => {
            (r.group == *group && r.plural == *plural)
                || (r.group.is_empty() && r.version == *group && r.plural == *plural)
        }
        [group, version, plural] => {
            r.group == *group && r.version == *version && r.plural == *plural
        }
        _ => false,
    }
}

impl ControlPlane {
    pub(super) fn block<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Re-reads discovery (after CRDs were installed or removed) and the proxy's kind table.
    pub fn refresh_discovery(&self) {
        // A group just added can be listed by the aggregated discovery a moment before its
        // version path answers (a 404 seen once in CI): retry for a short while.
        let deadline = Instant::now() + Duration::from_secs(20);
        let discovery = loop {
            match self.block(Discovery::new(self.client.clone()).run()) {
                Ok(discovery) => break discovery,
                Err(error) if Instant::now() < deadline => {
                    eprintln!("discovery not settled yet ({error}); retrying");
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(error) => panic!("discovery: {error}"),
            }
        };
        let mut served = Vec::new();
        for group in discovery.groups() {
            for (resource, caps) in group.resources_by_stability() {
                let ApiCapabilities { scope, .. } = caps;
                served.push(Served {
                    resource,
                    namespaced: scope == Scope::Namespaced,
                });
            }
        }
        // Events: the operator writes events.k8s.io; make that the one "events"/"Event" names.
        served
            .sort_by_key(|s| (s.resource.plural == "events" && s.resource.group.is_empty()) as u8);
        let mut kinds = self.proxy.state.kinds.write().expect("kinds");
        kinds.clear();
        for s in &served {
            kinds.insert(
                (s.resource.group.clone(), s.resource.plural.clone()),
                s.resource.kind.clone(),
            );
        }
        *self.discovery.lock().expect("discovery") = served;
    }

    fn lookup(&self, resource: &str) -> Option<Served> {
        if self.discovery.lock().expect("discovery").is_empty() {
            self.refresh_discovery();
        }
        let found = self
            .discovery
            .lock()
            .expect("discovery")
            .iter()
            .find(|s| matches(s, resource))
            .cloned();
        found.or_else(|| {
            self.refresh_discovery();
            self.discovery
                .lock()
                .expect("discovery")
                .iter()
                .find(|s| matches(s, resource))
                .cloned()
        })
    }

    fn resolve(&self, resource: &str) -> Served {
        self.lookup(resource)
            .unwrap_or_else(|| panic!("the API server does not serve {resource:?}"))
    }

    /// Whether `resource` is served now.
    pub fn served(&self, resource: &str) -> bool {
        self.lookup(resource).is_some()
    }

    fn api(&self, served: &Served, namespace: &str) -> Api<DynamicObject> {
        if served.namespaced && !namespace.is_empty() {
            Api::namespaced_with(self.client.clone(), namespace, &served.resource)
        } else {
            Api::all_with(self.client.clone(), &served.resource)
        }
    }

    /// An object, or None when it does not exist. `resource`: plural, Kind, `group/plural` or
    /// `group/version/plural`; `ns` is "" for cluster-scoped kinds.
    pub fn get_object(&self, resource: &str, ns: &str, name: &str) -> Option<Value> {
        let served = self.resolve(resource);
        let object = self.block(self.api(&served, ns).get_opt(name)).ok()??;
        Some(serde_json::to_value(object).expect("object json"))
    }

    /// All objects of a resource in one namespace or (None) all, ordered by namespace/name.
    pub fn list_objects(&self, resource: &str, ns: Option<&str>) -> Vec<Value> {
        let Some(served) = self.lookup(resource) else {
            return Vec::new();
        };
        let api = self.api(&served, ns.unwrap_or_default());
        let list = self
            .block(api.list(&ListParams::default()))
            .unwrap_or_else(|e| panic!("list {resource}: {e}"));
        let mut items: Vec<Value> = list
            .items
            .into_iter()
            .map(|o| serde_json::to_value(o).expect("object json"))
            .collect();
        items.sort_by_key(|o| {
            (
                o["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                o["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        });
        items
    }

    /// Creates or updates `object` by server-side apply (manager `test-harness`, forced), as
    /// `kubectl apply --server-side` would; then applies its `status` to the status subresource,
    /// as a controller would. Creates the namespace first when missing. Panics when the server
    /// refuses it, with the server's message.
    pub fn put_object(&self, object: Value) -> Value {
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.try_put_object(object)
            .unwrap_or_else(|e| panic!("apply {kind} {name}: {e}"))
    }

    /// Like `put_object`, but returns the server's refusal instead of panicking.
    pub fn try_put_object(&self, object: Value) -> Result<Value, String> {
        let api_version = object["apiVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        let find = || {
            self.discovery
                .lock()
                .expect("discovery")
                .iter()
                .find(|s| s.resource.api_version == api_version && s.resource.kind == kind)
                .cloned()
        };
        let served = match find() {
            Some(s) => s,
            None => {
                self.refresh_discovery();
                find().ok_or_else(|| format!("{api_version} {kind} not served"))?
            }
        };
        let ns = if served.namespaced {
            object["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string()
        } else {
            String::new()
        };
        if !ns.is_empty() {
            self.ensure_namespace(&ns);
        }
        self.try_apply(&served, &ns, object)
    }

    fn try_apply(&self, served: &Served, ns: &str, mut object: Value) -> Result<Value, String> {
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if let Some(m) = object["metadata"].as_object_mut() {
            m.remove("resourceVersion");
            m.remove("managedFields");
            m.remove("uid");
            m.remove("creationTimestamp");
        }
        let status = object.as_object_mut().and_then(|o| o.remove("status"));
        let api = self.api(served, ns);
        let params = PatchParams::apply(HARNESS_MANAGER).force();
        let applied = self
            .block(api.patch(&name, &params, &Patch::Apply(&object)))
            .map_err(|e| e.to_string())?;
        let mut result = serde_json::to_value(applied).expect("object json");
        if let Some(status) = status.filter(|s| !s.is_null()) {
            let patch = serde_json::json!({
                "apiVersion": object["apiVersion"], "kind": object["kind"],
                "metadata": {"name": name}, "status": status,
            });
            match self.block(api.patch_status(&name, &params, &Patch::Apply(&patch))) {
                Ok(o) => result = serde_json::to_value(o).expect("object json"),
                // Kinds without a status subresource took the status with the object.
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(format!("status: {e}")),
            }
        }
        Ok(result)
    }

    fn ensure_namespace(&self, ns: &str) {
        if self.get_object("namespaces", "", ns).is_none() {
            let served = self.resolve("namespaces");
            let object = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            let _ = self.block(self.api(&served, "").create(
                &PostParams::default(),
                &serde_json::from_value::<DynamicObject>(object).expect("namespace"),
            ));
        }
    }

    /// JSON-merge-patches the status subresource, as kubelet, Kyverno or CNPG would.
    pub fn patch_status(&self, resource: &str, ns: &str, name: &str, patch: Value) -> Value {
        self.try_patch_status(resource, ns, name, patch)
            .unwrap_or_else(|e| panic!("patch status of {resource} {ns}/{name}: {e}"))
            .unwrap_or_else(|| panic!("patch status of {resource} {ns}/{name}: not found"))
    }

    /// Like `patch_status`, but `Ok(None)` when the object is gone (e.g. the operator pruned it
    /// between the test's list and its patch).
    pub fn try_patch_status(
        &self,
        resource: &str,
        ns: &str,
        name: &str,
        patch: Value,
    ) -> Result<Option<Value>, kube::Error> {
        let served = self.resolve(resource);
        let api = self.api(&served, ns);
        let body = serde_json::json!({ "status": patch });
        match self.block(api.patch_status(name, &PatchParams::default(), &Patch::Merge(&body))) {
            Ok(object) => Ok(Some(serde_json::to_value(object).expect("object json"))),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// JSON-merge-patches the object itself (status is ignored where it is a subresource).
    pub fn merge_patch_object(&self, resource: &str, ns: &str, name: &str, patch: Value) -> Value {
        let served = self.resolve(resource);
        let api = self.api(&served, ns);
        let object = self
            .block(api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)))
            .unwrap_or_else(|e| panic!("patch {resource} {ns}/{name}: {e}"));
        serde_json::to_value(object).expect("object json")
    }

    /// Deletes an object (background propagation: the garbage collector removes dependents).
    /// Returns its state as the server answered, or None when it did not exist.
    pub fn delete_object(&self, resource: &str, ns: &str, name: &str) -> Option<Value> {
        let served = self.resolve(resource);
        let api = self.api(&served, ns);
        let before = self.get_object(resource, ns, name)?;
        match self.block(api.delete(name, &DeleteParams::background())) {
            Ok(either) => Some(
                either
                    .map_left(|o| serde_json::to_value(o).expect("object json"))
                    .left_or(before),
            ),
            Err(kube::Error::Api(e)) if e.code == 404 => None,
            Err(e) => panic!("delete {resource} {ns}/{name}: {e}"),
        }
    }

    /// Removes every CRD of `group` and waits until none of its kinds is served.
    pub fn remove_group(&self, group: &str) {
        for crd in self.list_objects("customresourcedefinitions", None) {
            if crd["spec"]["group"] == group
                && let Some(name) = crd["metadata"]["name"].as_str()
            {
                self.delete_object("customresourcedefinitions", "", name);
            }
        }
        wait(
            &format!("group {group} gone"),
            Duration::from_secs(60),
            || {
                self.list_objects("customresourcedefinitions", None)
                    .iter()
                    .all(|c| c["spec"]["group"] != group)
                    .then_some(())
            },
        );
        self.refresh_discovery();
    }

    /// A raw request as the admin user; the answer's JSON (panics on an error status).
    pub fn request(&self, method: http::Method, path: &str, body: Option<Value>) -> Value {
        self.raw_request(method, path, body)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// A raw request as the admin user; the answer's JSON, or the error status as text.
    pub fn raw_request(
        &self,
        method: http::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(bytes)
            .expect("request");
        let text = self
            .block(self.client.request_text(request))
            .map_err(|e| e.to_string())?;
        Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// See [`Fingerprint`].
    pub fn resource_version(&self) -> Fingerprint {
        let mut all = Vec::new();
        for resource in OPERATOR_KINDS {
            for o in self.list_objects(resource, None) {
                all.push((
                    o["metadata"]["uid"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    o["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                ));
            }
        }
        all.sort();
        Fingerprint(all)
    }
}
