//! Binary entry point: parses the command line and dispatches; no logic of its own.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use registry_operator::cli::{self, Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.json_logs);
    match cli.command {
        Command::Run(args) => {
            // Two workers whatever the node's core count: four reconciles at a time need no more,
            // and every extra worker costs memory.
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => return fail(&e),
            };
            match runtime.block_on(registry_operator::reconcile::run(args.into_config())) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            }
        }
        Command::Render(args) => {
            match cli::render_files_with(&args.files, args.observed.as_ref(), &args.options()) {
                Ok(output) => match registry_operator::render::to_yaml(&output.objects) {
                    Ok(yaml) => {
                        print!("{yaml}");
                        for warning in &output.warnings {
                            eprintln!("warning: {warning}");
                        }
                        for note in &output.notes {
                            eprintln!("# {}", note.trim_end().replace('\n', "\n#   "));
                        }
                        ExitCode::SUCCESS
                    }
                    Err(e) => fail(&e),
                },
                Err(e) => fail(&e),
            }
        }
        Command::Migrate(args) => match cli::run_migrate(&args) {
            Ok(summary) => {
                if let Err(e) = cli::write_termination_log(&args, &summary) {
                    eprintln!("warning: writing the termination log: {e}");
                }
                if args.output == cli::OutputFormat::Json {
                    match serde_json::to_string(&summary) {
                        Ok(json) => println!("{json}"),
                        Err(e) => return fail(&e),
                    }
                } else {
                    println!("{}", summary.human());
                }
                for problem in summary.failures.iter().chain(&summary.mismatches) {
                    eprintln!("error: {problem}");
                }
                if summary.is_complete() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(e) => fail(&e),
        },
        Command::Crdgen(args) => match cli::crdgen(&args) {
            Ok(paths) => {
                for path in paths {
                    eprintln!("wrote {}", path.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
    }
}

fn fail(error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("error: {error}");
    ExitCode::FAILURE
}

fn init_tracing(json: bool) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
