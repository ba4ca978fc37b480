//! The `miniworker` command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use miniworker::{Limits, MiniProgram, Project, RunOptions, Runtime};

/// Runs mini-program Worker JavaScript in a WebAssembly sandbox.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the project's app.js as the main thread until it is quiescent.
    Run {
        /// The mini-program project directory (the one with app.json).
        project: PathBuf,
        /// Stop after this many seconds (exit code 124).
        #[arg(long, value_name = "SECONDS")]
        timeout: Option<f64>,
        /// Linear memory of each context (main thread, worker), in MiB.
        #[arg(long, value_name = "MIB", default_value_t = (miniworker::DEFAULT_MEMORY >> 20) as u32,
              value_parser = clap::value_parser!(u32).range(1..=4095))]
        max_memory: u32,
    },
    /// Checks the project and reports every problem at once.
    Check {
        /// The mini-program project directory.
        project: PathBuf,
    },
}

/// Exit code for a bad project or bad usage (SPEC section 7).
const BAD_PROJECT: u8 = 2;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("RUST_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { BAD_PROJECT } else { 0 });
        }
    };
    match cli.command {
        Command::Check { project } => match Project::open(&project) {
            Ok(_) => {
                println!("{}: ok", project.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{}: {e}", project.display());
                ExitCode::from(BAD_PROJECT)
            }
        },
        Command::Run {
            project,
            timeout,
            max_memory,
        } => {
            let timeout = match timeout {
                Some(t) if t.is_finite() && t >= 0.0 => Some(Duration::from_secs_f64(t)),
                Some(_) => {
                    eprintln!("miniworker: --timeout takes a number of seconds");
                    return ExitCode::from(BAD_PROJECT);
                }
                None => None,
            };
            let loaded = match Project::open(&project) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("{}: {e}", project.display());
                    return ExitCode::from(BAD_PROJECT);
                }
            };
            let options = RunOptions {
                timeout,
                limits: Limits::default().memory((max_memory as usize) << 20),
            };
            let runtime = match Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("miniworker: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match MiniProgram::run(&runtime, loaded, &options) {
                Ok(report) => ExitCode::from(report.status.code() as u8),
                Err(e) => {
                    eprintln!("{}: {e}", project.display());
                    ExitCode::from(BAD_PROJECT)
                }
            }
        }
    }
}
