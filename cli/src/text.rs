//! `miniworker run` without `--json`: console lines on stdout with their
//! `[main] ` / `[worker] ` prefix, the host's diagnostics on stderr.

use std::io::Write;

use miniworker::{Dropped, Event, Source};

/// Renders one event of a run.
pub fn render(event: Event) {
    match event {
        Event::Console { source, args, .. } => {
            let prefix = match source {
                Source::Main => "[main] ",
                _ => "[worker] ",
            };
            let mut out = std::io::stdout().lock();
            for line in args.join(" ").split('\n') {
                // A closed stdout must not bring the host down.
                let _ = writeln!(out, "{prefix}{line}");
            }
            let _ = out.flush();
        }
        Event::Error { source, error } => match source {
            Source::Main => eprintln!("Uncaught {error}"),
            _ => eprintln!("Uncaught (in worker) {error}"),
        },
        Event::Killed {
            source,
            reason,
            message,
        } => {
            let who = match source {
                Source::Main => "main thread",
                _ => "worker",
            };
            eprintln!("miniworker: {who} killed ({reason}): {message}");
        }
        Event::Dropped { what, count } => eprintln!("({count} {})", dropped_text(what)),
        _ => {}
    }
}

/// What a `(N ...)` notice says.
fn dropped_text(what: Dropped) -> &'static str {
    match what {
        Dropped::ConsoleLines => "console lines dropped",
        Dropped::WorkerEvents => {
            "worker console lines or errors dropped: the queue toward the main thread was full"
        }
        Dropped::MessagesToWorker => "message(s) queued toward the worker discarded when it ended",
        _ => "message(s) waiting for an onMessage listener discarded at exit",
    }
}
