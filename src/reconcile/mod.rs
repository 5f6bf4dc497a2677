//! The running operator (`registry-operator run`): the Registry, ImagePolicy and RegistryProject controllers, their
//! watch caches, the HTTP endpoint and graceful shutdown. Renders nothing itself; calls `render` and
//! applies its output through `apply`. Only `run`, its settings and `rbac` are public.

mod announcement;
pub(crate) mod apply;
pub(crate) mod children;
pub mod context;
pub(crate) mod discovery;
pub(crate) mod http;
pub(crate) mod image_policy;
pub(crate) mod kyverno;
pub(crate) mod metrics;
pub(crate) mod optional_watch;
mod owner_index;
mod packed;
pub(crate) mod policy_triggers;
pub(crate) mod project;
pub mod rbac;
mod read_windows;
mod readiness_news;
pub(crate) mod refused;
pub(crate) mod registry;
pub(crate) mod status;
pub(crate) mod status_write;
mod streams;
pub(crate) mod watch_backoff;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use std::fmt::Debug;

use futures::{StreamExt, future};
use kube::api::DynamicObject;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::DeserializeGuard;
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef};
use kube::{Client, Config, Resource};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::crd::{ImagePolicy, Registry, RegistryProject};
use crate::render::labels;
use children::ChildStores;
use context::{Context, Settings};
use image_policy::PolicyContext;
use metrics::Metrics;
pub(crate) use streams::lean;
use streams::{
    SyncTracker, child_changes, child_stream, counted, detached, owner_stream, receiver_stream,
};

/// Label selector of everything the operator manages; children are watched through it only.
pub fn managed_selector() -> String {
    format!("app.kubernetes.io/managed-by={}", labels::MANAGER)
}

/// Settings of `run`.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Kubeconfig file; unset uses `KUBECONFIG`, `~/.kube/config` or the in-cluster config.
    pub kubeconfig: Option<PathBuf>,
    /// Address of `/metrics`, `/healthz`, `/readyz`.
    pub http_addr: SocketAddr,
    /// Reconciles running at once.
    pub concurrency: u16,
    /// Page size of initial lists (smaller pages, smaller memory peaks).
    pub page_size: u32,
    /// Trailing-edge debounce of every controller's reconcile requests.
    pub debounce: Duration,
    /// Timing and identity.
    pub settings: Settings,
}

/// Why `run` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No usable cluster configuration.
    #[error("kubeconfig: {0}")]
    Config(String),
    /// The HTTP endpoint could not serve.
    #[error("http endpoint: {0}")]
    Http(#[from] std::io::Error),
}

async fn client_for(kubeconfig: Option<&PathBuf>) -> Result<Client, RunError> {
    let config = match kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| RunError::Config(format!("{}: {e}", path.display())))?;
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| RunError::Config(e.to_string()))?
        }
        None => Config::infer()
            .await
            .map_err(|e| RunError::Config(e.to_string()))?,
    };
    Client::try_from(config).map_err(|e| RunError::Config(e.to_string()))
}

/// The owning Registry of a child, from its owner labels (works across namespaces, unlike owner references).
fn owning_registry(object: DynamicObject) -> Option<ObjectRef<DeserializeGuard<Registry>>> {
    let labels = object.metadata.labels.as_ref()?;
    if labels.get(labels::OWNER_KIND)? != "Registry" {
        return None;
    }
    Some(
        ObjectRef::new(labels.get(labels::OWNER_NAME)?)
            .within(labels.get(labels::OWNER_NAMESPACE)?),
    )
}

/// Reconcile again only when something a reconcile depends on changed: the spec (generation) or the
/// deletion mark. Status-only updates are ignored, and so are finalizers: the pass adds ours and
/// goes on, so its echo would only repeat the pass (issue 17); if someone removes it, the next pass
/// (a child's change, the resync) puts it back.
fn registry_predicate(registry: &DeserializeGuard<Registry>) -> Option<u64> {
    let meta = registry.meta();
    context::predicate_hash((
        meta.generation,
        meta.deletion_timestamp.is_some(),
        &meta.uid,
    ))
}

/// The settings every controller runs with. The debounce turns the burst of events one change
/// causes (our apply's echo, the child's status a moment later, the next child) into one reconcile;
/// kube-runtime also adds it to requeues, which only delays them by as much.
fn controller_config(config: &RunConfig) -> ControllerConfig {
    ControllerConfig::default()
        .concurrency(config.concurrency)
        .debounce(config.debounce)
}

/// Run the operator until SIGTERM/SIGINT.
pub async fn run(config: RunConfig) -> Result<(), RunError> {
    let client = client_for(config.kubeconfig.as_ref()).await?;
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));

    let synced = SyncTracker::default();
    let stores = ChildStores::default();
    let mut child_streams = Vec::new();
    for resource in children::core_child_kinds() {
        let stream = child_stream(&client, &resource, &stores, &synced, config.page_size);
        child_streams.push((resource, stream));
    }
    // Optional kinds (Kyverno, CloudNativePG) are watched while served, whenever they get installed:
    // their events reach the controllers through these channels, not counted by /readyz.
    let served = discovery::served_kinds(&client).await;
    let (registry_children, registry_children_rx) = mpsc::unbounded_channel();
    let (policy_children, policy_children_rx) = mpsc::unbounded_channel();
    let (registry_all, registry_all_rx) = mpsc::unbounded_channel();
    let (policy_all, policy_all_rx) = mpsc::unbounded_channel();
    tokio::spawn(optional_watch::run(
        client.clone(),
        stores.clone(),
        config.page_size,
        served.clone(),
        optional_watch::Triggers {
            registry: registry_children,
            policy: policy_children,
            everything: vec![registry_all, policy_all],
        },
    ));

    let (reader, writer) = reflector::store::<DeserializeGuard<Registry>>();
    let registries = owner_stream(&client, writer, &synced, config.page_size)
        .predicate_filter(registry_predicate, Default::default());
    let registries = counted(
        detached(registries, "Registry".into()),
        &metrics,
        "registry",
        "self".into(),
    );
    let mut controller = Controller::for_stream(registries, reader.clone())
        .with_config(controller_config(&config))
        .shutdown_on_signal();
    for (resource, stream) in child_streams {
        let stream = counted(
            child_changes(detached(stream, resource.kind.clone()), &stores),
            &metrics,
            "registry",
            resource.kind.clone(),
        );
        controller = controller.watches_stream_with(stream, owning_registry, resource);
    }
    // The kind given is only what kube-runtime logs as the trigger; the objects carry their own.
    controller = controller
        .watches_stream_with(
            counted(
                child_changes(receiver_stream(registry_children_rx).map(Ok), &stores),
                &metrics,
                "registry",
                "cnpg".into(),
            ),
            owning_registry,
            crate::render::cnpg_cluster_resource(),
        )
        .reconcile_all_on(receiver_stream(registry_all_rx));
    // K3d reconciles read the KEP-1755 announcement from this cache; one k3d writes triggers them.
    let (announcement, announcements) = announcement::watch(&client);
    controller = controller.watches_stream(
        counted(
            detached(announcements, "announcement ConfigMap".into()),
            &metrics,
            "registry",
            "announcement".into(),
        ),
        {
            let registries = reader.clone();
            move |_| announcement::k3d_registries(&registries)
        },
    );

    let (policy_reader, policy_writer) = reflector::store::<DeserializeGuard<ImagePolicy>>();
    // A Registry cache of its own, fed by the stream that triggers ImagePolicies: the store is
    // updated before the event is mapped, so the triggered reconcile reads the new endpoint.
    let (endpoint_reader, endpoint_writer) = reflector::store::<DeserializeGuard<Registry>>();
    let registries_followed = endpoint_reader.clone();
    let policies = owner_stream(&client, policy_writer, &synced, config.page_size)
        .predicate_filter(policy_triggers::image_policy_predicate, Default::default())
        .filter(move |event| {
            future::ready(event.as_ref().map_or(true, |policy| {
                !policy_triggers::waits_for_its_registry(policy, &registries_followed)
            }))
        });
    let policies = counted(
        detached(policies, "ImagePolicy".into()),
        &metrics,
        "image-policy",
        "self".into(),
    );
    let endpoint_changes = owner_stream(&client, endpoint_writer, &synced, config.page_size)
        .predicate_filter(
            policy_triggers::registry_endpoint_predicate,
            Default::default(),
        );
    let endpoint_changes = counted(
        detached(
            endpoint_changes,
            "Registry (endpoints for ImagePolicies)".into(),
        ),
        &metrics,
        "image-policy",
        "Registry".into(),
    );
    let mut policy_controller = Controller::for_stream(policies, policy_reader.clone())
        .with_config(controller_config(&config))
        .shutdown_on_signal()
        .watches_stream(endpoint_changes, move |registry| {
            policy_triggers::policies_referencing(&policy_reader, &registry)
        });
    policy_controller = policy_controller
        .watches_stream_with(
            counted(
                child_changes(receiver_stream(policy_children_rx).map(Ok), &stores),
                &metrics,
                "image-policy",
                "kyverno".into(),
            ),
            policy_triggers::owning_image_policy,
            crate::render::kyverno::cluster_policy_resource(),
        )
        .reconcile_all_on(receiver_stream(policy_all_rx));

    let (project_reader, project_writer) = reflector::store::<DeserializeGuard<RegistryProject>>();
    let projects_changed = Arc::new(tokio::sync::Notify::new());
    let projects = owner_stream(&client, project_writer, &synced, config.page_size)
        .predicate_filter(project::predicate, Default::default())
        .inspect({
            let changed = projects_changed.clone();
            move |_| changed.notify_one()
        });
    let projects = counted(
        detached(projects, "RegistryProject".into()),
        &metrics,
        "registry-project",
        "self".into(),
    );
    // A proxy cache's credentials Secret changed: its RegistryProjects look at once.
    let (credential_changes, credential_changes_rx) = mpsc::unbounded_channel();
    tokio::spawn(project::credential_watch::run(
        client.clone(),
        project_reader.clone(),
        projects_changed,
        credential_changes,
    ));
    let project_controller = Controller::for_stream(projects, project_reader.clone())
        .with_config(controller_config(&config))
        .shutdown_on_signal()
        .watches_stream(
            counted(
                receiver_stream(credential_changes_rx).map(Ok),
                &metrics,
                "registry-project",
                "Secret".into(),
            ),
            move |secret| project::credential_watch::projects_using(&project_reader, &secret),
        );

    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "registry-operator".into(),
            instance: std::env::var("POD_NAME").ok(),
        },
    );
    let ctx = Arc::new(Context::new(
        client.clone(),
        stores.clone(),
        config.settings.clone(),
        metrics.clone(),
        recorder,
        served,
        announcement,
    ));
    let policy_ctx = Arc::new(PolicyContext {
        base: ctx.clone(),
        registries: endpoint_reader,
    });
    let project_ctx = Arc::new(project::ProjectContext {
        base: ctx.clone(),
        registries: reader.clone(),
    });

    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(http::serve(
        config.http_addr,
        http::HttpState {
            metrics: metrics.clone(),
            ready: ready.clone(),
        },
        async move {
            let _ = http_stopped.await;
        },
    ));
    let readiness = tokio::spawn({
        let ready = ready.clone();
        let synced = synced.clone();
        async move {
            synced.wait_all().await;
            ready.store(true, Ordering::Relaxed);
            info!("caches synced; ready");
        }
    });

    info!(
        concurrency = config.concurrency,
        "registry, image-policy and registry-project controllers starting"
    );
    let registries = controller
        .run(reconcile_guarded, error_policy_guarded, ctx)
        .for_each(|result| {
            if let Err(error) = result {
                warn!(%error, "registry controller event");
            }
            future::ready(())
        });
    let image_policies = policy_controller
        .run(
            image_policy::reconcile_guarded,
            image_policy::error_policy_guarded,
            policy_ctx,
        )
        .for_each(|result| {
            if let Err(error) = result {
                warn!(%error, "image-policy controller event");
            }
            future::ready(())
        });
    let registry_projects = project_controller
        .run(
            project::reconcile_guarded,
            project::error_policy_guarded,
            project_ctx,
        )
        .for_each(|result| {
            if let Err(error) = result {
                warn!(%error, "registry-project controller event");
            }
            future::ready(())
        });
    future::join3(registries, image_policies, registry_projects).await;
    info!("shutting down");
    ready.store(false, Ordering::Relaxed);
    readiness.abort();
    let _ = stop_http.send(());
    match http.await {
        Ok(result) => result?,
        Err(e) => warn!(error = %e, "http task ended abnormally"),
    }
    Ok(())
}

async fn reconcile_guarded(
    guard: Arc<DeserializeGuard<Registry>>,
    ctx: Arc<Context>,
) -> Result<Action, registry::ReconcileError> {
    match &guard.0 {
        Ok(registry) => registry::reconcile(Arc::new(registry.clone()), ctx).await,
        Err(invalid) => {
            warn!(name = ?invalid.metadata.name, namespace = ?invalid.metadata.namespace, error = %invalid.error, "Registry does not deserialize; skipped until it changes");
            Ok(Action::await_change())
        }
    }
}

fn error_policy_guarded(
    guard: Arc<DeserializeGuard<Registry>>,
    error: &registry::ReconcileError,
    ctx: Arc<Context>,
) -> Action {
    match &guard.0 {
        Ok(registry) => registry::error_policy(Arc::new(registry.clone()), error, ctx),
        Err(_) => Action::requeue(Duration::from_secs(60)),
    }
}
