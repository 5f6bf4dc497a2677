//! Command-line interface: argument definitions and the offline commands (`render`, `crdgen`).
//! Parses and prints; the logic lives in `render`, `validate` and `crd`.

mod input;
mod migrate_cmd;
mod render_cmd;

pub use input::{InputError, Manifest, parse_manifests, read_manifests};
pub use migrate_cmd::{
    MigrateArgs, MigrateCommandError, OutputFormat, migrate_options, run_migrate,
    write_termination_log,
};
pub use render_cmd::{
    DEFAULT_OPERATOR_NAMESPACE, RenderCommandError, RenderOptions, RenderOutput, render_files,
    render_files_with, render_manifests, render_manifests_with,
};

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Kubernetes operator for the platform registry (k3d registry or Harbor) and its Kyverno image policies.
#[derive(Debug, Parser)]
#[command(name = "registry-operator", version, about)]
pub struct Cli {
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true, env = "REGISTRY_OPERATOR_JSON_LOGS")]
    pub json_logs: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the objects the operator would apply for the given Registry/ImagePolicy files, like `helm template`.
    Render(RenderArgs),
    /// Write the CustomResourceDefinitions generated from the Rust types.
    Crdgen(CrdgenArgs),
    /// Run the operator against a cluster.
    Run(RunArgs),
    /// Copy every image (all platforms, signatures, referrers) from one registry to another, then verify.
    Migrate(MigrateArgs),
}

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Kubeconfig file; unset uses KUBECONFIG, ~/.kube/config or the in-cluster service account.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub http_addr: std::net::SocketAddr,
    /// Reconciles running at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: u16,
    /// Page size of initial lists.
    #[arg(long, default_value_t = 100)]
    pub page_size: u32,
    /// Quiet time before a reconcile: changes arriving within it (a child's creation echo, its
    /// status a moment later, both Kyverno policies turning ready) make one reconcile, not several.
    /// `0s` reconciles on every change at once.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub debounce: std::time::Duration,
    /// Requeue delay while children are not ready, e.g. `10s`; also how long a new object's first
    /// status waits while it only reports progress.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub requeue: std::time::Duration,
    /// Periodic resync of ready objects, e.g. `5m`.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub resync: std::time::Duration,
    /// First backoff after a transient failure (doubles per failure).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub backoff_base: std::time::Duration,
    /// Longest backoff after transient failures.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub backoff_max: std::time::Duration,
    /// How often, at most, a switch's grace window counts the pods that still use the old host.
    #[arg(long, default_value = "1m", value_parser = humantime::parse_duration)]
    pub pod_count_interval: std::time::Duration,
    /// Namespace the operator runs in.
    #[arg(
        long,
        env = "POD_NAMESPACE",
        default_value = render_cmd::DEFAULT_OPERATOR_NAMESPACE
    )]
    pub operator_namespace: String,
    /// The operator's own image; migration Jobs run `migrate` in it.
    #[arg(
        long,
        env = "OPERATOR_IMAGE",
        default_value = "ghcr.io/aisp/registry-operator:0.1.0"
    )]
    pub operator_image: String,
    /// Harbor's REST API for every Harbor Registry, when the operator runs outside the cluster (e.g.
    /// `http://127.0.0.1:8080` through `kubectl port-forward svc/<registry>-harbor-core 8080:80`).
    /// Unset: each Registry's core Service (`http://<registry>-harbor-core.<ns>.svc:80`).
    #[arg(long)]
    pub harbor_api_url: Option<String>,
}

impl RunArgs {
    /// The controller settings these arguments describe.
    pub fn into_config(self) -> crate::reconcile::RunConfig {
        crate::reconcile::RunConfig {
            kubeconfig: self.kubeconfig,
            http_addr: self.http_addr,
            concurrency: self.concurrency,
            page_size: self.page_size,
            debounce: self.debounce,
            settings: crate::reconcile::context::Settings {
                requeue_not_ready: self.requeue,
                pod_count_interval: self.pod_count_interval,
                resync: self.resync,
                backoff_base: self.backoff_base,
                backoff_max: self.backoff_max,
                operator_namespace: self.operator_namespace,
                operator_image: self.operator_image,
                harbor_api_url: self.harbor_api_url,
            },
        }
    }
}

/// Arguments of `render`.
#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// YAML files with Registry and ImagePolicy objects (multi-document allowed).
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// YAML file with cluster objects render should assume exist (e.g. the KEP-1755 ConfigMap).
    #[arg(long)]
    pub observed: Option<PathBuf>,
    /// Namespace of Registries whose metadata has none.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// Namespace the operator runs in; image policies never check its pods.
    #[arg(long, default_value = render_cmd::DEFAULT_OPERATOR_NAMESPACE)]
    pub operator_namespace: String,
    /// Fail when an input document is not a Registry or ImagePolicy render knows, instead of
    /// skipping it with a warning.
    #[arg(long)]
    pub strict: bool,
}

impl RenderArgs {
    /// The render options these arguments describe.
    pub fn options(&self) -> RenderOptions {
        RenderOptions {
            namespace: self.namespace.clone(),
            operator_namespace: self.operator_namespace.clone(),
            strict: self.strict,
        }
    }
}

/// Arguments of `crdgen`.
#[derive(Debug, clap::Args)]
pub struct CrdgenArgs {
    /// Directory to write into.
    #[arg(long, default_value = "crds")]
    pub out: PathBuf,
}

/// Write the generated CRD files into `out`.
pub fn crdgen(args: &CrdgenArgs) -> Result<Vec<PathBuf>, InputError> {
    std::fs::create_dir_all(&args.out).map_err(|e| InputError::Io(args.out.clone(), e))?;
    let mut written = Vec::new();
    for (name, contents) in crate::crd::generate::crd_files().map_err(InputError::Generate)? {
        let path = args.out.join(name);
        std::fs::write(&path, contents).map_err(|e| InputError::Io(path.clone(), e))?;
        written.push(path);
    }
    Ok(written)
}
