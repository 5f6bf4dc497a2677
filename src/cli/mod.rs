//! Command-line interface: argument definitions and the offline commands (`render`, `crdgen`).
//! Parses and prints; the logic lives in `render`, `validate` and `crd`.

mod input;
mod migrate_cmd;
mod render_cmd;

pub use input::{InputError, Manifest, read_manifests};
pub use migrate_cmd::{
    MigrateArgs, MigrateCommandError, OutputFormat, migrate_options, run_migrate,
};
pub use render_cmd::{render_files, render_manifests};

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
    /// Copy every image (all platforms, signatures, referrers) from one registry to another, then verify.
    Migrate(MigrateArgs),
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
