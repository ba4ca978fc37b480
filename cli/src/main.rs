//! The `miniworker` command line. It owns the process (flags, signals,
//! logging, exit codes) and renders the library's events: `[main] ` lines
//! for `run`, the JSON event stream for `run --json`, the stdio protocol,
//! and the server (`serve`).

mod flags;
mod input;
mod line;
mod serve;
mod stdio;
mod text;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use clap::{Parser, Subcommand};
use miniworker::{Event, EventSink, ExitStatus, MiniProgram, Project, RunControl, RunOptions, Runtime};

use flags::LimitFlags;
use line::{ExitReason, JsonOut, Line};

/// Runs mini-program Worker JavaScript in a WebAssembly sandbox.
#[derive(Parser)]
#[command(name = "miniworker", version = VERSION, about)]
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
        /// Stop after this long (exit code 124); bare numbers are seconds.
        #[arg(long, value_name = "DURATION", value_parser = flags::parse_seconds)]
        timeout: Option<f64>,
        /// Print the JSON event stream (docs/events.md) on stdout instead of
        /// `[main] ` lines and stderr diagnostics.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        limits: LimitFlags,
    },
    /// Runs one worker with stdin/stdout as its main thread: the JSON event
    /// stream both ways (docs/events.md; no app.js needed).
    Worker {
        /// The mini-program project directory.
        project: PathBuf,
        /// The worker's entry file, project-relative (workers/request/index.js).
        entry: String,
        /// Stop after this long (exit code 124); bare numbers are seconds.
        #[arg(long, value_name = "DURATION", value_parser = flags::parse_seconds)]
        timeout: Option<f64>,
        #[command(flatten)]
        limits: LimitFlags,
    },
    /// Serves sessions over WebSocket: one connection, one mini-program
    /// instance (docs/server.md).
    Serve(serve::ServeArgs),
    /// Checks the project and reports every problem at once.
    Check {
        /// The mini-program project directory.
        project: PathBuf,
        /// Print one JSON object: {"project", "ok", "problems": [...]}.
        #[arg(long)]
        json: bool,
    },
    /// Prints the JSON Schema of the event stream (docs/events.schema.json).
    #[command(hide = true)]
    Schema,
}

/// `--version`: the release and the event stream's protocol version.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (event stream protocol 1)");

/// Exit code for a bad project or bad usage (docs/spec.md section 7).
const BAD: u8 = 2;

/// Exit code when the host itself fails (EX_SOFTWARE).
const HOST_ERROR: u8 = 70;

/// How a command ended: its exit code and `exit` reason.
type Outcome = (u8, ExitReason);

/// The signal that stopped the process (0: none), for the exit code.
static SIGNAL: AtomicU8 = AtomicU8::new(0);

/// SIGINT and SIGTERM stop the run through `on_signal`; the exit code is
/// 128 plus the signal's number. The handlers are in place when this
/// returns (a signal right after start is not the default action's kill).
fn watch_signals(on_signal: impl FnOnce() + Send + 'static) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_io().build() else {
        return;
    };
    let handlers = {
        let _entered = rt.enter();
        (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    };
    let (Ok(mut int), Ok(mut term)) = handlers else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("miniworker-signals".into())
        .spawn(move || {
            rt.block_on(async {
                let code = tokio::select! {
                    _ = int.recv() => 130,
                    _ = term.recv() => 143,
                };
                SIGNAL.store(code, Ordering::SeqCst);
                on_signal();
            });
        });
}

/// The exit code and reason of a stop by signal.
fn signal_outcome() -> Outcome {
    (SIGNAL.load(Ordering::SeqCst).max(130), ExitReason::Signal)
}

/// Keeps memory that glibc's malloc frees for the next allocations. By
/// default it gives the top of a heap back to the kernel past a threshold
/// it derives from the largest block freed so far (at most 32 MiB), so a
/// run moving messages of megabytes (their bytes and the payloads of large
/// ArrayBuffers, lifted out of one guest and freed after the next) paid a
/// page fault for every 4 KiB of every message: 10 MB of typed arrays from
/// app.js 9.3-11.8 -> 6.3 ms per round trip (docs/BENCHMARKS.md). Fixed
/// thresholds above the default message limit keep them: a freed block
/// below 32 MiB stays in the heap, and a heap keeps up to 64 MiB free.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: sets two of glibc's malloc parameters, before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}

fn main() -> ExitCode {
    keep_freed_memory();
    tracing_subscriber::fmt()
        // Warnings (a precompiled component this CPU cannot run, ...) show
        // unless RUST_LOG says otherwise.
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let json_mode = {
        let args: Vec<String> = std::env::args().collect();
        args.get(1).is_some_and(|c| c == "worker")
            || (args.get(1).is_some_and(|c| c == "run") && args.iter().any(|a| a == "--json"))
    };
    let args = match serve::config::with_config_file(std::env::args().collect()) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("miniworker serve: {e}");
            return ExitCode::from(BAD);
        }
    };
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            if !e.use_stderr() {
                return ExitCode::SUCCESS; // --help, --version
            }
            if json_mode {
                JsonOut.exit(BAD, ExitReason::BadUsage);
            }
            return ExitCode::from(BAD);
        }
    };
    let code = match cli.command {
        Command::Check { project, json } => {
            let checked = Project::open(&project);
            if json {
                let problems = checked
                    .as_ref()
                    .err()
                    .map(|e| e.problems.clone())
                    .unwrap_or_default();
                let report = serde_json::json!({
                    "project": project.display().to_string(),
                    "ok": checked.is_ok(),
                    "problems": problems,
                });
                let _ = writeln!(std::io::stdout(), "{report}");
            } else {
                match &checked {
                    Ok(_) => drop(writeln!(std::io::stdout(), "{}: ok", project.display())),
                    Err(e) => eprintln!("{}: {e}", project.display()),
                }
            }
            if checked.is_ok() { 0 } else { BAD }
        }
        Command::Serve(args) => serve::serve(args),
        Command::Schema => {
            let schema = Line::schema();
            let _ = writeln!(
                std::io::stdout(),
                "{}",
                serde_json::to_string_pretty(&schema).unwrap_or_default()
            );
            0
        }
        Command::Run {
            project,
            timeout,
            json,
            limits,
        } => {
            let out = json.then_some(JsonOut);
            let (code, reason) = run(&project, timeout, &limits, out);
            if let Some(out) = out {
                out.exit(code, reason);
            }
            code
        }
        Command::Worker {
            project,
            entry,
            timeout,
            limits,
        } => {
            let out = JsonOut;
            let (code, reason) = stdio::worker(&project, &entry, timeout, &limits, &out);
            out.exit(code, reason);
            code
        }
    };
    ExitCode::from(code)
}

/// Contexts `miniworker run` reserves slots for ([`miniworker::HostCaps::pool`]).
const RUN_POOL: usize = 8;

/// Checks the flags, opens the project and creates the runtime.
fn prepare(
    project: &std::path::Path,
    timeout: Option<f64>,
    limits: &LimitFlags,
) -> Result<(Project, Option<std::time::Duration>, miniworker::Limits, Runtime), Outcome> {
    let usage = |e: String| {
        eprintln!("miniworker: {e}");
        (BAD, ExitReason::BadUsage)
    };
    let timeout = timeout
        .map(|t| flags::seconds("--timeout", t))
        .transpose()
        .map_err(usage)?;
    let limits = limits.limits().map_err(usage)?;
    let loaded = Project::open(project).map_err(|e| {
        eprintln!("{}: {e}", project.display());
        (BAD, ExitReason::BadProject)
    })?;
    // One mini-program: its main thread, one worker, and a worker still
    // ending after terminate() fit many times over.
    let runtime = Runtime::with_caps(miniworker::HostCaps::default().pool(RUN_POOL)).map_err(|e| {
        eprintln!("miniworker: {e}");
        (HOST_ERROR, ExitReason::HostError)
    })?;
    Ok((loaded, timeout, limits, runtime))
}

/// `miniworker run`.
fn run(
    project: &std::path::Path,
    timeout: Option<f64>,
    limits: &LimitFlags,
    out: Option<JsonOut>,
) -> Outcome {
    let (loaded, timeout, limits, runtime) = match prepare(project, timeout, limits) {
        Ok(ready) => ready,
        Err(outcome) => return outcome,
    };
    let sink: Arc<dyn EventSink> = match out {
        Some(out) => Arc::new(move |event: Event| match event {
            Event::Ready { .. } => out.ready(),
            event => {
                if let Some(line) = Line::from_event(event) {
                    out.line(line);
                }
            }
        }),
        None => Arc::new(text::render),
    };
    let control = RunControl::default();
    let stopper = control.clone();
    watch_signals(move || stopper.stop());
    let options = RunOptions {
        timeout,
        limits,
        control,
    };
    match MiniProgram::run(&runtime, loaded, &options, sink) {
        Ok(report) => {
            if report.status == ExitStatus::TimedOut {
                eprintln!("miniworker: --timeout reached");
            }
            run_outcome(report.status).unwrap_or_else(signal_outcome)
        }
        Err(e) => {
            eprintln!("{}: {e}", project.display());
            (BAD, ExitReason::BadProject)
        }
    }
}

/// How a run of `app.js` ended, as an exit code and reason; `None` when it
/// was stopped from outside (the stopper knows why).
fn run_outcome(status: ExitStatus) -> Option<Outcome> {
    Some(match status {
        ExitStatus::Normal => (0, ExitReason::Quiescent),
        ExitStatus::UncaughtError => (1, ExitReason::Uncaught),
        ExitStatus::Killed(_) => (3, ExitReason::Killed),
        ExitStatus::TimedOut => (124, ExitReason::Timeout),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_version_names_the_protocol() {
        assert!(super::VERSION.ends_with(&format!("(event stream protocol {})", crate::line::PROTOCOL)));
        assert!(super::VERSION.starts_with(env!("CARGO_PKG_VERSION")));
    }
}
