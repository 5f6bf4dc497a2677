//! `registry-operator migrate`: turns command-line flags, credential files and environment into
//! `MigrateOptions`, runs the copy engine on a Tokio runtime and prints the summary.
//! No copy logic here; credentials are read, never printed.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::ValueEnum;

use crate::migrate::{
    self, Credentials, CredentialsError, Endpoint, MigrateError, MigrateOptions, Progress, Summary,
};

/// How the final summary is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// One human-readable line.
    Text,
    /// A JSON object on stdout (for the operator's Job).
    Json,
}

/// Arguments of `migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// Source registry URL (read only), e.g. http://k3d-registry:5000.
    #[arg(long)]
    pub from: String,
    /// Destination registry URL, e.g. https://harbor.example.com.
    #[arg(long)]
    pub to: String,
    /// Only repositories matching these globs (comma-separated or repeated), e.g. 'team-a/*'.
    #[arg(long, value_delimiter = ',')]
    pub repos: Vec<String>,
    /// Harbor project put before every destination repository; '' for none (plain registries).
    #[arg(long, default_value = "library")]
    pub dest_project: String,
    /// Blob transfers and tags in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Tries per request or blob on transient failures (5xx, 408, 429, resets, timeouts).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub attempts: u32,
    /// Source credentials: docker config JSON or a 'user:password' line (else MIGRATE_FROM_USERNAME/PASSWORD).
    #[arg(long)]
    pub from_creds_file: Option<PathBuf>,
    /// Destination credentials: docker config JSON or a 'user:password' line (else MIGRATE_TO_USERNAME/PASSWORD).
    #[arg(long)]
    pub to_creds_file: Option<PathBuf>,
    /// Allow plain-HTTP registries (e.g. a local k3d registry).
    #[arg(long)]
    pub insecure: bool,
    /// Skip the final digest comparison of every tag.
    #[arg(long)]
    pub no_verify: bool,
    /// Copy nothing, write to neither side: check that every selected source tag (same --repos and
    /// --dest-project mapping as a copy) resolves to the same digest at the destination; exit 1 when
    /// one is missing or differs.
    #[arg(long, conflicts_with = "no_verify")]
    pub verify_only: bool,
    /// Summary format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Also write the counts as JSON to this file (a Job's `/dev/termination-log`, read by the operator).
    #[arg(long)]
    pub termination_log: Option<PathBuf>,
}

/// Why `migrate` could not start or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum MigrateCommandError {
    /// Credentials unreadable.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The run stopped.
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    /// No async runtime.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

fn credentials(
    file: Option<&PathBuf>,
    env_prefix: &str,
    endpoint: &Endpoint,
) -> Result<Option<Credentials>, MigrateCommandError> {
    match file {
        Some(path) => Ok(Some(Credentials::from_file(
            path,
            &endpoint.host().map_err(MigrateError::from)?,
        )?)),
        None => Ok(Credentials::from_env(env_prefix, |name| {
            std::env::var(name).ok()
        })),
    }
}

/// The engine options for `args` (reads credential files and environment).
pub fn migrate_options(args: &MigrateArgs) -> Result<MigrateOptions, MigrateCommandError> {
    let mut from = Endpoint::anonymous(&args.from, args.insecure);
    let mut to = Endpoint::anonymous(&args.to, args.insecure);
    from.base_url().map_err(MigrateError::from)?;
    to.base_url().map_err(MigrateError::from)?;
    from.credentials = credentials(args.from_creds_file.as_ref(), "MIGRATE_FROM", &from)?;
    to.credentials = credentials(args.to_creds_file.as_ref(), "MIGRATE_TO", &to)?;
    Ok(MigrateOptions {
        from,
        to,
        repos: args
            .repos
            .iter()
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty())
            .collect(),
        dest_project: args.dest_project.clone(),
        concurrency: usize::from(args.concurrency),
        attempts: args.attempts,
        verify: !args.no_verify,
    })
}

/// Runs `migrate` (the copy, or the check alone with `--verify-only`) to the end and returns the
/// summary (complete or not).
pub fn run_migrate(args: &MigrateArgs) -> Result<Summary, MigrateCommandError> {
    let options = migrate_options(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(MigrateCommandError::Runtime)?;
    let progress = Progress::new(std::io::stderr().is_terminal());
    let summary = if args.verify_only {
        runtime.block_on(migrate::verify_only(&options, progress))
    } else {
        runtime.block_on(migrate::run(&options, progress))
    };
    Ok(summary?)
}

#[cfg(test)]
mod termination_log_tests {
    use super::*;

    #[test]
    fn termination_log_holds_the_counts_the_operator_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("termination-log");
        let cli = <crate::cli::Cli as clap::Parser>::parse_from([
            "registry-operator",
            "migrate",
            "--from",
            "http://a:5000",
            "--to",
            "http://b",
            "--termination-log",
            path.to_str().unwrap(),
        ]);
        let crate::cli::Command::Migrate(args) = cli.command else {
            panic!("not migrate")
        };
        let summary = crate::migrate::Summary {
            repos: 2,
            verified_tags: 5,
            bytes_copied: 99,
            ..Default::default()
        };
        write_termination_log(&args, &summary).unwrap();
        let report: crate::migrate::Report =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            (report.repositories, report.tags, report.bytes_copied),
            (2, 5, 99)
        );
        assert!(
            std::fs::metadata(&path).unwrap().len() < 4096,
            "fits a termination message"
        );
    }
}

/// Write the run's counts to `--termination-log`, if asked.
pub fn write_termination_log(
    args: &MigrateArgs,
    summary: &crate::migrate::Summary,
) -> std::io::Result<()> {
    let Some(path) = &args.termination_log else {
        return Ok(());
    };
    let report = crate::migrate::Report::from(summary);
    std::fs::write(
        path,
        serde_json::to_vec(&report).map_err(std::io::Error::other)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// `registry-operator migrate --from http://127.0.0.1:5000` and then `rest`.
    fn parse(rest: &[&str]) -> MigrateArgs {
        let head = [
            "registry-operator",
            "migrate",
            "--from",
            "http://127.0.0.1:5000",
        ];
        match crate::cli::Cli::parse_from(head.iter().chain(rest).copied()).command {
            crate::cli::Command::Migrate(args) => args,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn defaults_and_plain_http_rule() {
        let args = parse(&["--to", "https://harbor.local"]);
        assert_eq!(
            (args.dest_project.as_str(), args.concurrency, args.output),
            ("library", 4, OutputFormat::Text)
        );
        assert!(matches!(
            migrate_options(&args),
            Err(MigrateCommandError::Migrate(MigrateError::Endpoint(_)))
        ));
        let args = parse(&[
            "--to",
            "harbor.local",
            "--insecure",
            "--dest-project",
            "",
            "--repos",
            "a/*,b",
            "--output",
            "json",
        ]);
        let options = migrate_options(&args).expect("valid");
        assert_eq!(options.repos, ["a/*", "b"]);
        assert_eq!(options.dest_repo("a/x"), "a/x");
        assert!(!args.verify_only, "a copy unless asked");
    }

    #[test]
    fn verify_only_keeps_the_copy_selection_and_excludes_no_verify() {
        let args = parse(&[
            "--to",
            "http://127.0.0.1:5001",
            "--insecure",
            "--verify-only",
            "--repos",
            "team-*",
            "--dest-project",
            "mirror",
        ]);
        assert!(args.verify_only);
        let options = migrate_options(&args).expect("valid");
        assert_eq!(options.repos, ["team-*"]);
        assert_eq!(options.dest_repo("team-a/app"), "mirror/team-a/app");
        let conflicting = crate::cli::Cli::try_parse_from([
            "registry-operator",
            "migrate",
            "--from",
            "http://127.0.0.1:5000",
            "--to",
            "http://127.0.0.1:5001",
            "--verify-only",
            "--no-verify",
        ]);
        assert_eq!(
            conflicting.expect_err("conflict").kind(),
            clap::error::ErrorKind::ArgumentConflict
        );
    }
}
