//! The `miniworker` command line.

mod stdio;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
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
        /// Print console lines and diagnostics as JSON lines on stdout, ending
        /// with {"type":"exit","code":N} (docs/stdio-protocol.md has the shapes).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        limits: LimitFlags,
    },
    /// Runs one worker with stdin/stdout as its main thread: the JSON-lines
    /// protocol of docs/stdio-protocol.md (no app.js needed).
    Worker {
        /// The mini-program project directory.
        project: PathBuf,
        /// The worker's entry file, project-relative (workers/request/index.js).
        entry: String,
        /// Stop after this many seconds.
        #[arg(long, value_name = "SECONDS")]
        timeout: Option<f64>,
        #[command(flatten)]
        limits: LimitFlags,
    },
    /// Checks the project and reports every problem at once.
    Check {
        /// The mini-program project directory.
        project: PathBuf,
    },
}

/// The library's defaults, which the flags' defaults show.
static DEFAULTS: std::sync::LazyLock<Limits> = std::sync::LazyLock::new(Limits::default);

/// The limits of SPEC section 5, for each context (main thread and worker).
#[derive(clap::Args)]
struct LimitFlags {
    /// Linear memory of each context, in MiB (a breach kills: "memory").
    #[arg(long, value_name = "MIB", default_value_t = (DEFAULTS.memory_bytes() >> 20) as u32,
          value_parser = clap::value_parser!(u32).range(1..=4095))]
    max_memory: u32,
    /// QuickJS stack of each context, in KiB (deeper recursion throws RangeError).
    #[arg(long, value_name = "KIB", default_value_t = (DEFAULTS.stack_bytes() >> 10) as u32,
          value_parser = clap::value_parser!(u32).range(64..=896))]
    max_stack: u32,
    /// Thread CPU time one turn may use, in seconds (a breach kills: "cpu-time").
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULTS.cpu_time_per_turn().as_secs_f64())]
    cpu_time: f64,
    /// The largest message, in bytes (a bigger post throws RangeError).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULTS.message_bytes() as u32)]
    max_message: u32,
    /// Messages queued per direction (a post beyond it throws Error).
    #[arg(long, value_name = "COUNT", default_value_t = DEFAULTS.queue_message_count())]
    max_queue: usize,
    /// Encoded bytes queued per direction (a post beyond it throws Error).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULTS.queue_byte_count())]
    max_queue_bytes: usize,
    /// Live timers of each context (setTimeout beyond it throws RangeError).
    #[arg(long, value_name = "COUNT", default_value_t = DEFAULTS.timer_count() as u32)]
    max_timers: u32,
    /// Console output per turn, in bytes (further lines are dropped and counted).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULTS.console_bytes_per_turn())]
    max_console: usize,
}

impl LimitFlags {
    fn limits(&self) -> Result<Limits, String> {
        if !(self.cpu_time.is_finite() && self.cpu_time > 0.0) {
            return Err("--cpu-time takes a positive number of seconds".into());
        }
        Ok(Limits::default()
            .memory((self.max_memory as usize) << 20)
            .stack((self.max_stack as usize) << 10)
            .cpu_time(Duration::from_secs_f64(self.cpu_time))
            .message_size(self.max_message as usize)
            .queue_messages(self.max_queue)
            .queue_bytes(self.max_queue_bytes)
            .timers(self.max_timers as usize)
            .console_per_turn(self.max_console))
    }
}

/// The last line of the JSON outputs: `{"type":"exit","code":N}`.
fn exit_line(code: u8) {
    // Nobody may be reading any more; that is no reason to fail.
    let _ = writeln!(
        std::io::stdout(),
        "{}",
        serde_json::json!({ "type": "exit", "code": code })
    );
}

/// Checks the flags, opens the project and creates the runtime; the exit
/// code when one of them fails (the reason is on stderr).
fn prepare(
    project: &Path,
    timeout: Option<f64>,
    limits: &LimitFlags,
) -> Result<(Project, Option<Duration>, Limits, Runtime), ExitCode> {
    let timeout = match timeout {
        Some(t) if t.is_finite() && t >= 0.0 => Some(Duration::from_secs_f64(t)),
        Some(_) => {
            eprintln!("miniworker: --timeout takes a number of seconds");
            return Err(ExitCode::from(BAD_PROJECT));
        }
        None => None,
    };
    let limits = limits.limits().map_err(|e| {
        eprintln!("miniworker: {e}");
        ExitCode::from(BAD_PROJECT)
    })?;
    let loaded = Project::open(project).map_err(|e| {
        eprintln!("{}: {e}", project.display());
        ExitCode::from(BAD_PROJECT)
    })?;
    let runtime = Runtime::new().map_err(|e| {
        eprintln!("miniworker: {e}");
        ExitCode::FAILURE
    })?;
    Ok((loaded, timeout, limits, runtime))
}

/// Exit code for a bad project or bad usage (SPEC section 7).
const BAD_PROJECT: u8 = 2;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("RUST_LOG"))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
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
                let _ = writeln!(std::io::stdout(), "{}: ok", project.display());
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
            json,
            limits,
        } => {
            let (loaded, timeout, limits, runtime) = match prepare(&project, timeout, &limits) {
                Ok(ready) => ready,
                Err(code) => {
                    if json {
                        exit_line(BAD_PROJECT);
                    }
                    return code;
                }
            };
            let options = RunOptions {
                timeout,
                limits,
                json,
            };
            let code = match MiniProgram::run(&runtime, loaded, &options) {
                Ok(report) => report.status.code() as u8,
                Err(e) => {
                    eprintln!("{}: {e}", project.display());
                    BAD_PROJECT
                }
            };
            if json {
                exit_line(code);
            }
            ExitCode::from(code)
        }
        Command::Worker {
            project,
            entry,
            timeout,
            limits,
        } => match prepare(&project, timeout, &limits) {
            Ok((loaded, timeout, limits, runtime)) => {
                ExitCode::from(stdio::serve(&runtime, loaded, &entry, limits, timeout))
            }
            Err(code) => {
                // The protocol's last line, even when nothing could start.
                exit_line(BAD_PROJECT);
                code
            }
        },
    }
}
