//! `miniworker worker PROJECT ENTRY`: one worker with stdin and stdout as
//! its main thread, speaking the event stream of docs/spec.md section 8 both ways.
//! The loop is driven by the worker's events, the input, the signals and
//! the deadline (tokio), never by polling.

use std::path::Path;
use std::time::Instant;

use miniworker::{Error, Event, MiniProgram, Worker};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};

use crate::flags::LimitFlags;
use crate::input::Input;
use crate::line::{ExitReason, JsonOut, Line, What};
use crate::{BAD, HOST_ERROR, Outcome};

/// Runs the protocol until the end.
pub fn worker(
    project: &Path,
    entry: &str,
    timeout: Option<f64>,
    limits: &LimitFlags,
    out: &JsonOut,
) -> Outcome {
    let (project, timeout, limits, runtime) = match crate::prepare(project, timeout, limits) {
        Ok(ready) => ready,
        Err(outcome) => return outcome,
    };
    let max_line = limits.message_bytes();
    let program = match MiniProgram::with_limits(&runtime, project, limits) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("miniworker: {e}");
            return (HOST_ERROR, ExitReason::HostError);
        }
    };
    let worker = match program.create_worker(entry) {
        Ok(w) => w,
        Err(e @ (Error::BadScript(_) | Error::Project(_))) => {
            eprintln!("miniworker: {e}");
            return (BAD, ExitReason::BadProject);
        }
        Err(e) => {
            eprintln!("miniworker: {e}");
            return (HOST_ERROR, ExitReason::HostError);
        }
    };
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        eprintln!("miniworker: cannot start the event loop");
        return (HOST_ERROR, ExitReason::HostError);
    };
    let outcome = rt.block_on(serve(&worker, out, deadline, max_line));
    // The stdin reader may be blocked in a read that never returns: leave it.
    rt.shutdown_background();
    let discarded = worker.terminate() as u64;
    if discarded > 0 {
        out.line(Line::Dropped {
            what: What::MessagesToWorker,
            count: discarded,
        });
    }
    if outcome.1 == ExitReason::Timeout {
        eprintln!("miniworker: --timeout reached");
    }
    outcome
}

async fn serve(worker: &Worker, out: &JsonOut, deadline: Option<Instant>, max_line: usize) -> Outcome {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        return (HOST_ERROR, ExitReason::HostError);
    };
    let mut input = BufReader::new(tokio::io::stdin());
    let mut eof = false;
    let sleep = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now).into());
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            biased;
            _ = int.recv() => return (130, ExitReason::Signal),
            _ = term.recv() => return (143, ExitReason::Signal),
            _ = &mut sleep, if deadline.is_some() => return (124, ExitReason::Timeout),
            event = worker.next_event() => match event {
                Ok(Event::Ready { .. }) => out.ready(),
                Ok(event) => {
                    let killed = matches!(event, Event::Killed { .. });
                    if let Some(line) = Line::from_event(event) {
                        out.line(line);
                    }
                    if killed {
                        return (0, ExitReason::Killed);
                    }
                }
                Err(Error::Killed(_)) => return (0, ExitReason::Killed),
                Err(_) => return (0, ExitReason::Terminated),
            },
            line = read_line(&mut input, max_line), if !eof => match line {
                Ok(Read::Eof) => eof = true,
                Ok(Read::TooLong) => protocol_error(out, format!("a line longer than the limit of {max_line} bytes")),
                Ok(Read::Line(bytes)) => {
                    if handle_line(worker, out, &bytes) {
                        return (0, ExitReason::Terminated);
                    }
                }
                Err(e) => {
                    eprintln!("miniworker: reading stdin: {e}");
                    eof = true;
                }
            },
            _ = worker.quiescent(), if eof => return (0, ExitReason::EndOfInput),
        }
    }
}

fn protocol_error(out: &JsonOut, message: String) {
    out.line(Line::ProtocolError { message });
}

/// Acts on one input line; whether it was `terminate`.
fn handle_line(worker: &Worker, out: &JsonOut, bytes: &[u8]) -> bool {
    match crate::input::parse(bytes) {
        Ok(Input::Message(data)) => match worker.post_json(&data) {
            Ok(()) | Err(Error::Terminated | Error::Killed(_)) => {}
            Err(e) => protocol_error(out, e.to_string()),
        },
        Ok(Input::Terminate) => return true,
        Ok(Input::Open(_)) => protocol_error(out, "open is the server's (miniworker serve)".into()),
        Ok(Input::Blank) => {}
        Err(message) => protocol_error(out, message),
    }
    false
}

enum Read {
    Line(Vec<u8>),
    TooLong,
    Eof,
}

/// Reads one line of at most `max` bytes; a longer one is skipped whole.
async fn read_line(reader: &mut (impl AsyncBufRead + Unpin), max: usize) -> std::io::Result<Read> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        let at_end = available.is_empty();
        if at_end && line.is_empty() && !too_long {
            return Ok(Read::Eof);
        }
        let newline = available.iter().position(|b| *b == b'\n');
        let chunk = &available[..newline.unwrap_or(available.len())];
        if line.len() + chunk.len() > max {
            too_long = true;
            line = Vec::new();
        } else if !too_long {
            line.extend_from_slice(chunk);
        }
        let consumed = newline.map_or(available.len(), |i| i + 1);
        reader.consume(consumed);
        if at_end || newline.is_some() {
            return Ok(if too_long { Read::TooLong } else { Read::Line(line) });
        }
    }
}
