//! The one event stream of docs/spec.md section 8: its one serde type ([`Line`]),
//! its one writer ([`JsonOut`]), and its JSON Schema
//! (`docs/events.schema.json`, generated from [`Line`] by `miniworker
//! schema`). `run --json`, the stdio protocol and the server all write it.

use std::io::Write;

use miniworker::{ConsoleLevel, Dropped, Event, KillReason, Limits, Source};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::value::RawValue;

/// The protocol version, in the `ready` line.
pub const PROTOCOL: u32 = 1;

/// Who a line is about.
#[derive(Clone, Copy, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LineSource {
    /// The JavaScript main thread (`app.js`).
    Main,
    /// The worker.
    Worker,
}

impl From<Source> for LineSource {
    fn from(source: Source) -> Self {
        match source {
            Source::Main => LineSource::Main,
            _ => LineSource::Worker,
        }
    }
}

/// How a stream ended (`exit`'s `reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ExitReason {
    /// `run`: the mini-program became quiescent.
    Quiescent,
    /// `worker`: the input ended and the worker became quiescent.
    EndOfInput,
    /// `worker`: a `terminate` line.
    Terminated,
    /// The worker (`worker`) or the main thread (`run`) was killed.
    Killed,
    /// `run`: an uncaught error on the main thread.
    Uncaught,
    /// `--timeout` was reached.
    Timeout,
    /// SIGINT or SIGTERM.
    Signal,
    /// The project could not be used.
    BadProject,
    /// The command line was wrong.
    BadUsage,
    /// The host itself failed (a broken build; exit code 70).
    HostError,
    /// `serve`: the host was draining and the drain timeout passed.
    Draining,
    /// `serve`: the client missed two pings in a row.
    Idle,
}

impl ExitReason {
    /// Its name in the stream (`end-of-input`).
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

/// One line of the stream. `type` comes first; object keys of messages keep
/// the order in which JavaScript created them.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Line {
    /// First line: the context is up and its entry file starts running.
    Ready {
        /// The protocol version (1).
        protocol: u32,
    },
    /// A message (out: from the worker; in: to it).
    Message {
        /// The message as `JSON.stringify` writes it (a BigInt as a decimal string).
        #[schemars(with = "serde_json::Value")]
        data: Box<RawValue>,
    },
    /// A console call.
    Console {
        /// Who called it.
        source: LineSource,
        /// `log`, `info`, `warn`, `error` or `debug`.
        level: Level,
        /// Each argument, formatted.
        args: Vec<String>,
    },
    /// An uncaught error that no JavaScript listener took.
    Error {
        /// Where it was thrown.
        source: LineSource,
        /// `error.name`; empty for a thrown non-Error.
        name: String,
        /// The message.
        message: String,
        /// The stack, project-relative paths.
        stack: String,
        /// The project-relative file, or empty.
        filename: String,
        /// The 1-based line, or 0.
        lineno: u32,
    },
    /// A context was killed.
    Killed {
        /// Which.
        source: LineSource,
        /// `memory`, `cpu-time`, `stack`, `test` or `crash`.
        reason: Reason,
        /// A human-readable explanation.
        message: String,
    },
    /// Things were dropped or discarded.
    Dropped {
        /// What.
        what: What,
        /// How many.
        count: u64,
    },
    /// `serve`: the host lacks the project: send it as one binary frame, a
    /// tar archive whose SHA-256 is the project's hash.
    NeedProject {
        /// The largest archive the host takes.
        max_bytes: u64,
    },
    /// `serve`: the session is open; the stream of the entry file follows.
    Opened {
        /// The session's id (in the host's logs too).
        session: String,
        /// The limits in effect for each context of the session.
        limits: EffectiveLimits,
    },
    /// An input line was refused; the stream goes on.
    ProtocolError {
        /// Why.
        message: String,
    },
    /// Always the last line.
    Exit {
        /// The process exit code.
        code: u8,
        /// Why it ended.
        reason: ExitReason,
    },
}

/// The limits of one session, as `opened` reports them and a token's `lim`
/// claim lowers them (docs/spec.md sections 5 and 9). Sizes in bytes, CPU time in
/// seconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EffectiveLimits {
    /// Linear memory of each context.
    pub memory: u64,
    /// QuickJS stack of each context.
    pub stack: u64,
    /// CPU time of one turn.
    pub cpu_time: f64,
    /// The largest message.
    pub message: u64,
    /// Messages queued per direction.
    pub queue_messages: u64,
    /// Encoded bytes queued per direction.
    pub queue_bytes: u64,
    /// Live timers of each context.
    pub timers: u64,
    /// Console output per turn.
    pub console: u64,
}

impl EffectiveLimits {
    /// The values of `limits`.
    pub fn of(limits: &Limits) -> EffectiveLimits {
        EffectiveLimits {
            memory: limits.memory_bytes() as u64,
            stack: limits.stack_bytes() as u64,
            cpu_time: limits.cpu_time_per_turn().as_secs_f64(),
            message: limits.message_bytes() as u64,
            queue_messages: limits.queue_message_count() as u64,
            queue_bytes: limits.queue_byte_count() as u64,
            timers: limits.timer_count() as u64,
            console: limits.console_bytes_per_turn() as u64,
        }
    }
}

/// A console level.
#[derive(Clone, Copy, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// `console.log`
    Log,
    /// `console.info`
    Info,
    /// `console.warn`
    Warn,
    /// `console.error`
    Error,
    /// `console.debug`
    Debug,
}

/// A kill reason.
#[derive(Clone, Copy, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Over its memory limit.
    Memory,
    /// One turn over its CPU-time limit.
    CpuTime,
    /// The WebAssembly stack overflowed.
    Stack,
    /// `worker.testOnProcessKilled()`.
    Test,
    /// Any other trap, or a broken protocol.
    Crash,
}

/// What a `dropped` line counts.
#[derive(Clone, Copy, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum What {
    /// Console lines past a turn's budget.
    ConsoleLines,
    /// Worker console lines and errors refused by the full queue toward the main thread.
    WorkerEvents,
    /// Messages queued toward a worker that ended.
    MessagesToWorker,
    /// Messages left without an `onMessage` listener at the end.
    MessagesWithoutListener,
}

impl Line {
    /// The line as JSON text, without its newline (a WebSocket text frame).
    pub fn to_text(&self) -> String {
        // Serializing these types cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The line of a library event; `None` for one that has no line
    /// (`ready`, which the stream's owner writes itself).
    pub fn from_event(event: Event) -> Option<Line> {
        Some(match event {
            Event::Message(message) => match message.json_text().and_then(|text| {
                RawValue::from_string(text)
                    .map_err(|_| miniworker::MessageError::NotJson(miniworker::JsonError::TooDeep))
            }) {
                Ok(data) => Line::Message { data },
                Err(why) => Line::Error {
                    source: LineSource::Worker,
                    name: "DataCloneError".into(),
                    message: format!("a message the worker posted has no JSON form: {why}"),
                    stack: String::new(),
                    filename: String::new(),
                    lineno: 0,
                },
            },
            Event::Console { source, level, args } => Line::Console {
                source: source.into(),
                level: level.into(),
                args,
            },
            Event::Error { source, error } => Line::Error {
                source: source.into(),
                name: error.name,
                message: error.message,
                stack: error.stack,
                filename: error.filename,
                lineno: error.lineno,
            },
            Event::Killed {
                source,
                reason,
                message,
            } => Line::Killed {
                source: source.into(),
                reason: reason.into(),
                message,
            },
            Event::Dropped { what, count } => Line::Dropped {
                what: what.into(),
                count,
            },
            // `ready` is written by the stream's owner; later kinds have no line yet.
            _ => return None,
        })
    }

    /// The JSON Schema of the stream (`docs/events.schema.json`).
    pub fn schema() -> serde_json::Value {
        let mut schema = serde_json::to_value(schemars::schema_for!(Line)).unwrap_or_default();
        if let Some(object) = schema.as_object_mut() {
            object.insert("$id".into(), "https://miniworker.dev/schema/events-1.json".into());
            object.insert(
                "description".into(),
                "One line of miniworker's event stream (protocol 1): run --json, the stdio protocol, the server.".into(),
            );
        }
        schema
    }
}

impl From<ConsoleLevel> for Level {
    fn from(level: ConsoleLevel) -> Self {
        match level {
            ConsoleLevel::Log => Level::Log,
            ConsoleLevel::Info => Level::Info,
            ConsoleLevel::Warn => Level::Warn,
            ConsoleLevel::Error => Level::Error,
            _ => Level::Debug,
        }
    }
}

impl From<KillReason> for Reason {
    fn from(reason: KillReason) -> Self {
        match reason {
            KillReason::Memory => Reason::Memory,
            KillReason::CpuTime => Reason::CpuTime,
            KillReason::Stack => Reason::Stack,
            KillReason::Test => Reason::Test,
            _ => Reason::Crash,
        }
    }
}

impl From<Dropped> for What {
    fn from(what: Dropped) -> Self {
        match what {
            Dropped::ConsoleLines => What::ConsoleLines,
            Dropped::WorkerEvents => What::WorkerEvents,
            Dropped::MessagesToWorker => What::MessagesToWorker,
            _ => What::MessagesWithoutListener,
        }
    }
}

/// The one writer of the stream: whole lines on stdout, threads sharing it.
#[derive(Clone, Copy, Default)]
pub struct JsonOut;

impl JsonOut {
    /// Writes one line.
    pub fn line(&self, line: Line) {
        write(&[line]);
    }

    /// Writes `ready` (the library's [`Event::Ready`] comes first).
    pub fn ready(&self) {
        self.line(Line::Ready { protocol: PROTOCOL });
    }

    /// Writes the last line, `exit`.
    pub fn exit(&self, code: u8, reason: ExitReason) {
        self.line(Line::Exit { code, reason });
    }
}

/// Writes whole lines straight to stdout (a message's text is not copied
/// again: it can be tens of megabytes).
fn write(lines: &[Line]) {
    let mut out = std::io::BufWriter::with_capacity(64 << 10, std::io::stdout().lock());
    for line in lines {
        // Serializing these types cannot fail; a closed stdout leaves
        // nobody to tell, and the run still ends normally.
        let _ = serde_json::to_writer(&mut out, line);
        let _ = out.write_all(b"\n");
    }
    let _ = out.flush();
}
