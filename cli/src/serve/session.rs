//! One session (docs/spec.md section 9): one WebSocket connection is one mini-program
//! instance. `open`, the project (from the cache, or `need-project` and one
//! binary frame), admission, `opened`, then the stream of section 8 both
//! ways until `exit`; the connection closes with a code that says why.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message as Frame, WebSocket};
use miniworker::{Error, Event, EventSink, MiniProgram, Project, RunControl, RunOptions, Worker};
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use super::auth::Grant;
use super::cache::parse_hash;
use super::host::{Host, Phase, close};
use super::metrics::{DirectionLabel, ReasonLabel};
use crate::input::{self, Input};
use crate::line::{EffectiveLimits, ExitReason, Line, What};

/// Serves one upgraded connection to its end.
pub async fn serve(host: Arc<Host>, socket: WebSocket, grant: Grant) {
    let id = host.session_id();
    let span = tracing::info_span!("session", id = %id, tenant = %grant.tenant);
    async move {
        tracing::info!("connected");
        let mut conn = Conn::new(socket, host);
        conn.session(&id, &grant).await;
    }
    .instrument(span)
    .await;
}

/// How a session's main loop ended.
enum End {
    /// With `exit` (code, reason) and a close code.
    Exit(u8, ExitReason, u16),
    /// The client went away: nobody to tell.
    Gone,
    /// The open was refused (and counted as such): no session was had.
    Refused,
}

/// The connection, with the liveness and drain state every wait watches.
struct Conn {
    socket: WebSocket,
    host: Arc<Host>,
    phase: watch::Receiver<Phase>,
    /// Pings sent since the last pong.
    unanswered: u32,
    last_ping: Instant,
}

/// What the connection brought while we waited.
enum Incoming {
    Text(Vec<u8>),
    Binary(Vec<u8>),
    /// The client closed, or the connection broke.
    Gone,
    /// Two pings went unanswered.
    Idle,
    /// The drain timeout passed.
    Expired,
}

impl Conn {
    fn new(socket: WebSocket, host: Arc<Host>) -> Conn {
        let phase = host.phase();
        Conn {
            socket,
            host,
            phase,
            unanswered: 0,
            last_ping: Instant::now(),
        }
    }

    fn ping_interval(&self) -> Duration {
        self.host.settings.ping_interval
    }

    /// The whole session, counted by how it ended (`closed`: the client
    /// went away).
    async fn session(&mut self, id: &str, grant: &Grant) {
        let end = self.open_and_run(id, grant).await;
        let reason = match end {
            End::Exit(_, reason, _) => reason.name(),
            End::Gone => "closed".into(),
            End::Refused => return,
        };
        tracing::info!(%reason, "ended");
        self.host
            .metrics
            .ends
            .get_or_create(&ReasonLabel {
                reason: reason.clone(),
            })
            .inc();
        if let End::Exit(code, reason, close_code) = end {
            self.send(Line::Exit { code, reason }).await;
            self.close(close_code, &reason.name()).await;
        }
    }

    async fn open_and_run(&mut self, id: &str, grant: &Grant) -> End {
        let deadline = Instant::now() + self.host.settings.open_timeout;
        let open = match self.next_until(deadline).await {
            Some(Incoming::Text(bytes)) => input::parse(&bytes),
            Some(Incoming::Binary(_)) => Err("the first frame must be an open line, not binary".into()),
            Some(Incoming::Expired) | Some(Incoming::Gone) | Some(Incoming::Idle) => return End::Gone,
            None => Err("no open within the open timeout".into()),
        };
        let open = match open {
            Ok(Input::Open(open)) => open,
            Ok(_) => {
                return self
                    .refuse_open("the first frame must be an open line".into())
                    .await;
            }
            Err(message) => return self.refuse_open(message).await,
        };
        let started = Instant::now();
        let hex = match parse_hash(&open.project) {
            Ok(hex) => hex,
            Err(message) => return self.refuse_open(message).await,
        };
        if open.entry.is_some() == open.run {
            return self
                .refuse_open("open takes either entry or run: true".into())
                .await;
        }
        let limits = grant.limits.lower(&self.host.settings.ceilings);
        let contexts = if open.run { 2 } else { 1 };
        let slot = match self
            .host
            .admit(&grant.tenant, limits.memory_bytes() as u64 * contexts)
        {
            Ok(slot) => slot,
            Err(refusal) => {
                tracing::info!(reason = %refusal.reason, "refused");
                self.host.metrics.opened(refusal.result);
                self.close(refusal.code, &refusal.reason).await;
                return End::Refused;
            }
        };
        let project = match self.project(&hex).await {
            Ok(project) => project,
            Err(Some(message)) => return self.bad_project(message).await,
            Err(None) => return End::Gone,
        };
        let program = match MiniProgram::with_limits(&self.host.runtime, project.clone(), limits.clone()) {
            Ok(program) => program,
            Err(e) => return self.bad_project(e.to_string()).await,
        };
        let worker = match &open.entry {
            Some(entry) => match program.create_worker(entry) {
                Ok(worker) => Some(worker),
                Err(e) => return self.bad_project(e.to_string()).await,
            },
            None => None,
        };
        self.host.metrics.opened("opened");
        self.host
            .metrics
            .open_latency
            .observe(started.elapsed().as_secs_f64());
        tracing::info!(entry = open.entry.as_deref().unwrap_or("app.js"), "opened");
        let opened = Line::Opened {
            session: id.to_owned(),
            limits: EffectiveLimits::of(&limits),
        };
        if !self.send(opened).await {
            return End::Gone;
        }
        let end = match worker {
            Some(worker) => self.worker_loop(&program, &worker).await,
            None => {
                drop(program);
                self.run_loop(project, limits).await
            }
        };
        drop(slot);
        end
    }

    async fn refuse_open(&mut self, message: String) -> End {
        self.host.metrics.opened("protocol");
        self.send(Line::ProtocolError {
            message: message.clone(),
        })
        .await;
        self.close(close::PROTOCOL, &message).await;
        End::Refused
    }

    async fn bad_project(&mut self, message: String) -> End {
        self.host.metrics.opened("bad-project");
        self.send(Line::ProtocolError { message }).await;
        End::Exit(crate::BAD, ExitReason::BadProject, close::NORMAL)
    }

    /// The project from the cache, or asked for and unpacked; `Err(Some)`:
    /// it cannot be used (why); `Err(None)`: the client went away.
    async fn project(&mut self, hex: &str) -> Result<Project, Option<String>> {
        if let Some(ready) = self.host.cache.get(hex).await {
            return ready.map_err(Some);
        }
        let max_bytes = self.host.cache.max_bytes;
        if !self.send(Line::NeedProject { max_bytes }).await {
            return Err(None);
        }
        let deadline = Instant::now() + self.host.settings.open_timeout;
        let archive = match self.next_until(deadline).await {
            Some(Incoming::Binary(bytes)) => bytes,
            Some(Incoming::Text(_)) => {
                return Err(Some("expected the project archive as one binary frame".into()));
            }
            None => return Err(Some("no project archive within the open timeout".into())),
            Some(_) => return Err(None),
        };
        let (unpacked, ready) = self.host.cache.put(hex, archive).await;
        if unpacked {
            self.host.metrics.unpacks.inc();
        }
        ready.map_err(Some)
    }

    /// A worker session: the client is the main thread.
    async fn worker_loop(&mut self, program: &MiniProgram, worker: &Worker) -> End {
        let host = self.host.clone();
        let metrics = &host.metrics;
        let end = loop {
            tokio::select! {
                biased;
                event = worker.next_event() => match event {
                    Ok(Event::Ready { .. }) => {
                        if !self.send(Line::Ready { protocol: crate::line::PROTOCOL }).await {
                            break End::Gone;
                        }
                    }
                    Ok(event) => {
                        let killed = match &event {
                            Event::Killed { reason, .. } => {
                                metrics.kills.get_or_create(&ReasonLabel { reason: reason.to_string() }).inc();
                                true
                            }
                            Event::Message(_) => {
                                metrics.messages.get_or_create(&DirectionLabel { direction: "from-worker" }).inc();
                                false
                            }
                            _ => false,
                        };
                        if let Some(line) = Line::from_event(event)
                            && !self.send(line).await
                        {
                            break End::Gone;
                        }
                        if killed {
                            break End::Exit(0, ExitReason::Killed, close::NORMAL);
                        }
                    }
                    Err(Error::Killed(_)) => break End::Exit(0, ExitReason::Killed, close::NORMAL),
                    Err(_) => break End::Exit(0, ExitReason::Terminated, close::NORMAL),
                },
                incoming = self.next() => match incoming {
                    Incoming::Text(bytes) => match input::parse(&bytes) {
                        Ok(Input::Message(data)) => match worker.post_json(&data) {
                            Ok(()) => {
                                metrics.messages.get_or_create(&DirectionLabel { direction: "to-worker" }).inc();
                            }
                            Err(Error::Terminated | Error::Killed(_)) => {}
                            Err(e) => {
                                if !self.send(Line::ProtocolError { message: e.to_string() }).await {
                                    break End::Gone;
                                }
                            }
                        },
                        Ok(Input::Terminate) => break End::Exit(0, ExitReason::Terminated, close::NORMAL),
                        Ok(Input::Blank) => {}
                        Ok(Input::Open(_)) => {
                            if !self.send(Line::ProtocolError { message: "the session is open already".into() }).await {
                                break End::Gone;
                            }
                        }
                        Err(message) => {
                            if !self.send(Line::ProtocolError { message }).await {
                                break End::Gone;
                            }
                        }
                    },
                    Incoming::Binary(_) => {
                        let message = "a binary frame outside need-project".into();
                        if !self.send(Line::ProtocolError { message }).await {
                            break End::Gone;
                        }
                    }
                    Incoming::Gone => break End::Gone,
                    Incoming::Idle => break End::Exit(0, ExitReason::Idle, close::NORMAL),
                    Incoming::Expired => break End::Exit(0, ExitReason::Draining, close::GOING_AWAY),
                },
            }
        };
        let stats = program.stats();
        metrics.cpu_seconds.inc_by(stats.worker_cpu_time.as_secs_f64());
        metrics.backpressure_refusals.inc_by(stats.refused_to_main);
        let discarded = worker.terminate() as u64;
        if discarded > 0 && matches!(end, End::Exit(..)) {
            self.send(Line::Dropped {
                what: What::MessagesToWorker,
                count: discarded,
            })
            .await;
        }
        end
    }

    /// A run session: `app.js` runs in the runtime's pool, its events come
    /// through a bounded channel (a slow client holds the run back).
    async fn run_loop(&mut self, project: Project, limits: miniworker::Limits) -> End {
        let (events, mut lines) = mpsc::channel::<Event>(256);
        let control = RunControl::default();
        let options = RunOptions {
            timeout: None,
            limits,
            control: control.clone(),
        };
        let sink: Arc<dyn EventSink> = Arc::new(move |event: Event| {
            // The runtime's pool threads are not the server's: blocking is
            // fine (a turn waiting here counts as a long turn).
            let _ = events.blocking_send(event);
        });
        let running = match MiniProgram::start(&self.host.runtime, project, &options, sink) {
            Ok(running) => running,
            Err(e) => {
                self.send(Line::ProtocolError {
                    message: e.to_string(),
                })
                .await;
                return End::Exit(crate::BAD, ExitReason::BadProject, close::NORMAL);
            }
        };
        let mut stopped_for: Option<End> = None;
        loop {
            tokio::select! {
                biased;
                event = lines.recv() => match event {
                    Some(Event::Ready { .. }) => {
                        if !self.send(Line::Ready { protocol: crate::line::PROTOCOL }).await {
                            control.stop();
                            stopped_for.get_or_insert(End::Gone);
                        }
                    }
                    Some(event) => {
                        if let Event::Killed { reason, .. } = &event {
                            self.host.metrics.kills.get_or_create(&ReasonLabel { reason: reason.to_string() }).inc();
                        }
                        if let Some(line) = Line::from_event(event)
                            && !self.send(line).await
                        {
                            control.stop();
                            stopped_for.get_or_insert(End::Gone);
                        }
                    }
                    // Every sender is gone: the run has ended.
                    None => break,
                },
                incoming = self.next(), if stopped_for.is_none() => {
                    let end = match incoming {
                        Incoming::Text(bytes) => match input::parse(&bytes) {
                            Ok(Input::Terminate) => Some(End::Exit(0, ExitReason::Terminated, close::NORMAL)),
                            Ok(Input::Blank) => None,
                            Ok(_) => {
                                let message = "a run session takes only terminate".into();
                                self.send(Line::ProtocolError { message }).await;
                                None
                            }
                            Err(message) => {
                                self.send(Line::ProtocolError { message }).await;
                                None
                            }
                        },
                        Incoming::Binary(_) => None,
                        Incoming::Gone => Some(End::Gone),
                        Incoming::Idle => Some(End::Exit(0, ExitReason::Idle, close::NORMAL)),
                        Incoming::Expired => Some(End::Exit(0, ExitReason::Draining, close::GOING_AWAY)),
                    };
                    if let Some(end) = end {
                        control.stop();
                        stopped_for = Some(end);
                    }
                },
            }
        }
        let report = running.finished().await;
        if let Some(end) = stopped_for {
            return end;
        }
        match crate::run_outcome(report.status) {
            Some((code, reason)) => End::Exit(code, reason, close::NORMAL),
            None => End::Exit(0, ExitReason::Terminated, close::NORMAL),
        }
    }

    /// The next frame that matters, answering pings and sending ours.
    async fn next(&mut self) -> Incoming {
        loop {
            let next_ping = self.last_ping + self.ping_interval();
            tokio::select! {
                biased;
                _ = expired(&mut self.phase) => return Incoming::Expired,
                _ = tokio::time::sleep_until(next_ping.into()) => {
                    if self.unanswered >= 2 {
                        return Incoming::Idle;
                    }
                    self.unanswered += 1;
                    self.last_ping = Instant::now();
                    if self.socket.send(Frame::Ping(Default::default())).await.is_err() {
                        return Incoming::Gone;
                    }
                }
                frame = self.socket.recv() => match frame {
                    Some(Ok(Frame::Text(text))) => return Incoming::Text(text.as_bytes().to_vec()),
                    Some(Ok(Frame::Binary(bytes))) => return Incoming::Binary(bytes.to_vec()),
                    Some(Ok(Frame::Pong(_))) => self.unanswered = 0,
                    Some(Ok(Frame::Ping(_))) => {}
                    Some(Ok(Frame::Close(_))) | Some(Err(_)) | None => return Incoming::Gone,
                },
            }
        }
    }

    /// [`Conn::next`], or `None` at `deadline`.
    async fn next_until(&mut self, deadline: Instant) -> Option<Incoming> {
        tokio::time::timeout_at(deadline.into(), self.next()).await.ok()
    }

    /// Sends one line; false when the client is gone, or stopped reading
    /// for two ping intervals (after the drain timeout: for a second), or
    /// the drain timeout passed meanwhile.
    async fn send(&mut self, line: Line) -> bool {
        let frame = Frame::Text(line.to_text().into());
        if *self.phase.borrow() == Phase::Expired {
            let sent = tokio::time::timeout(Duration::from_secs(1), self.socket.send(frame)).await;
            return matches!(sent, Ok(Ok(())));
        }
        let stall = self.ping_interval() * 2;
        let mut phase = self.phase.clone();
        tokio::select! {
            sent = tokio::time::timeout(stall, self.socket.send(frame)) => matches!(sent, Ok(Ok(()))),
            _ = expired(&mut phase) => false,
        }
    }

    async fn close(&mut self, code: u16, reason: &str) {
        let frame = Frame::Close(Some(CloseFrame {
            code,
            reason: reason.chars().take(100).collect::<String>().into(),
        }));
        if tokio::time::timeout(Duration::from_secs(1), self.socket.send(frame))
            .await
            .is_err()
        {
            return;
        }
        // The closing handshake: wait (a little) for the client's close, so
        // that closing the socket does not reset a connection whose client
        // has not read the last lines yet.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(frame)) = self.socket.recv().await {
                if matches!(frame, Frame::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
}

/// Resolves once the drain timeout has passed.
async fn expired(phase: &mut watch::Receiver<Phase>) {
    let _ = phase.wait_for(|p| *p == Phase::Expired).await;
}
