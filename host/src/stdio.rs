//! `miniworker worker PROJECT ENTRY` (part of the binary): one worker with
//! stdin and stdout as its main thread, speaking the JSON-lines protocol of
//! SPEC section 8 (protocol version 1, `docs/stdio-protocol.md`).

use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use miniworker::{Error, Limits, Message, MiniProgram, Project, Runtime, Worker, WorkerEvent};
use serde_json::{Value, json};

/// Writes protocol lines; the reader thread and the event loop share it.
#[derive(Clone)]
struct Out(Arc<Mutex<std::io::Stdout>>);

impl Out {
    fn line(&self, value: &Value) {
        let mut out = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // A closed stdout leaves nobody to tell; the run still ends normally.
        let _ = writeln!(out, "{value}");
        let _ = out.flush();
    }

    fn protocol_error(&self, message: &str) {
        self.line(&json!({ "type": "protocol-error", "message": message }));
    }
}

/// How the input side ended.
#[derive(Default)]
struct InputState {
    eof: AtomicBool,
    terminated: AtomicBool,
}

/// Runs the protocol until the end; the process exit code.
pub fn serve(
    runtime: &Runtime,
    project: Project,
    entry: &str,
    limits: Limits,
    timeout: Option<Duration>,
) -> u8 {
    let out = Out(Arc::new(Mutex::new(std::io::stdout())));
    let max_line = limits.message_bytes();
    let program = match MiniProgram::with_limits(runtime, project, limits) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("miniworker: {e}");
            out.line(&json!({ "type": "exit", "code": 2 }));
            return 2;
        }
    };
    let worker = match program.create_worker(entry) {
        Ok(w) => Arc::new(w),
        Err(e) => {
            eprintln!("miniworker: {e}");
            out.line(&json!({ "type": "exit", "code": 2 }));
            return 2;
        }
    };
    let input = Arc::new(InputState::default());
    {
        let (worker, input, out) = (worker.clone(), input.clone(), out.clone());
        // Detached: it ends with the process (a blocked stdin read cannot be
        // interrupted portably).
        let _ = std::thread::Builder::new()
            .name("miniworker-stdin".into())
            .spawn(move || read_input(&worker, &input, &out, max_line));
    }
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        match worker.recv_timeout(Duration::from_millis(20)) {
            Ok(Some(event)) => {
                if write_event(&out, event) {
                    break;
                }
            }
            Ok(None) => {
                if input.terminated.load(Ordering::Acquire)
                    || (input.eof.load(Ordering::Acquire) && worker.is_quiescent())
                    || deadline.is_some_and(|d| Instant::now() >= d)
                {
                    break;
                }
            }
            Err(e) => out.line(&json!({ "type": "error", "message": e.to_string() })),
        }
    }
    worker.terminate();
    out.line(&json!({ "type": "exit", "code": 0 }));
    0
}

/// Writes one worker event; whether it was the last (a kill).
fn write_event(out: &Out, event: WorkerEvent) -> bool {
    match event {
        WorkerEvent::Message(message) => match message.to_json() {
            Ok(data) => out.line(&json!({ "type": "message", "data": data })),
            Err(why) => out.line(&json!({
                "type": "error",
                "message": format!("a message the worker posted is not JSON: {why}"),
                "stack": "", "filename": "", "lineno": 0,
            })),
        },
        WorkerEvent::Console { level, args, .. } => {
            out.line(&json!({ "type": "console", "level": level.as_str(), "args": args }))
        }
        WorkerEvent::Error(e) => out.line(&json!({
            "type": "error",
            "message": e.message,
            "stack": e.stack,
            "filename": e.filename,
            "lineno": e.lineno,
        })),
        WorkerEvent::Killed { reason, message } => {
            out.line(&json!({ "type": "killed", "reason": reason.as_str(), "message": message }));
            return true;
        }
        other => eprintln!("miniworker: an event the protocol does not carry: {other:?}"),
    }
    false
}

/// Reads input lines until EOF or `terminate`.
fn read_input(worker: &Worker, input: &InputState, out: &Out, max_line: usize) {
    let stdin = std::io::stdin();
    let mut reader = stdin.lock();
    loop {
        match read_line(&mut reader, max_line) {
            Ok(Line::Eof) => break,
            Ok(Line::TooLong) => {
                out.protocol_error(&format!("a line longer than the limit of {max_line} bytes"))
            }
            Ok(Line::Text(text)) => {
                if text.trim().is_empty() {
                    continue;
                }
                if handle_line(worker, out, &text) {
                    input.terminated.store(true, Ordering::Release);
                    return;
                }
            }
            Err(e) => {
                eprintln!("miniworker: reading stdin: {e}");
                break;
            }
        }
    }
    input.eof.store(true, Ordering::Release);
}

/// Acts on one input line; whether it was `terminate`.
fn handle_line(worker: &Worker, out: &Out, text: &str) -> bool {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            out.protocol_error(&format!("not JSON: {e}"));
            return false;
        }
    };
    match value.get("type").and_then(Value::as_str) {
        Some("message") => match value.get("data") {
            Some(data) => match worker.post_message(&Message::from_json(data)) {
                Ok(()) => {}
                Err(Error::Terminated | Error::Killed(_)) => {}
                Err(e) => out.protocol_error(&e.to_string()),
            },
            None => out.protocol_error("a message without data"),
        },
        Some("terminate") => {
            worker.terminate();
            return true;
        }
        Some(other) => out.protocol_error(&format!("unknown type '{other}'")),
        None => out.protocol_error("a line without a type"),
    }
    false
}

enum Line {
    Text(String),
    TooLong,
    Eof,
}

/// Reads one line of at most `max` bytes; a longer one is skipped whole.
fn read_line(reader: &mut impl BufRead, max: usize) -> std::io::Result<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let available = reader.fill_buf()?;
        let at_end = available.is_empty();
        if at_end && line.is_empty() && !too_long {
            return Ok(Line::Eof);
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
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Text(String::from_utf8_lossy(&line).into_owned())
            });
        }
    }
}
