//! The state one mini-program's contexts share, under its lock: the worker
//! slot with its inbox, the queue of worker events toward the main thread,
//! their accounting against the queue limits, and the contexts parked while
//! they wait. Plain data: waking contexts and emitting events is
//! `Instance`'s job.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::bindings::WitMessage;
use crate::error::{Error, KillReason, QueueLimit, Toward};
use crate::event::Event;
use crate::limits::{Limits, Usage};
use crate::message::Encoded;
use crate::scheduler::Task;

/// What a mini-program instance uses ([`crate::MiniProgram::stats`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Linear memory of the live worker, in bytes (0 without one).
    pub worker_memory_bytes: usize,
    /// CPU time of the live worker, as of the end of its last turn: the sum
    /// of its turns (a turn shorter than an epoch tick, 10 ms, counted by
    /// its duration, a longer one by its thread's CPU time).
    pub worker_cpu_time: Duration,
    /// Messages queued toward the worker.
    pub queued_to_worker: usize,
    /// Their encoded bytes.
    pub queued_to_worker_bytes: usize,
    /// Events queued toward the main thread (messages, console lines, errors).
    pub queued_to_main: usize,
    /// The bytes the host keeps for them.
    pub queued_to_main_bytes: usize,
    /// Messages discarded so far.
    pub discarded_messages: u64,
    /// Worker messages refused so far because the queue toward the main
    /// thread was full (back-pressure: the worker's `postMessage` threw).
    pub refused_to_main: u64,
}

/// An event of worker `id` on its way to the main thread.
pub(crate) struct Queued {
    pub(crate) id: u32,
    /// When it became ready (turn order against the main thread's timers).
    pub(crate) at: Instant,
    pub(crate) event: Event,
}

/// How a worker ended.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ended {
    Terminated,
    Killed(KillReason),
}

impl Ended {
    pub(crate) fn error(self) -> Error {
        match self {
            Ended::Terminated => Error::Terminated,
            Ended::Killed(reason) => Error::Killed(reason),
        }
    }
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) next_id: u32,
    pub(crate) worker: Option<Slot>,
    /// Worker events toward the main thread, in the order they happened.
    pub(crate) to_main: VecDeque<Queued>,
    /// Bytes the host keeps for the events in `to_main`.
    pub(crate) to_main_bytes: usize,
    /// Worker console lines and errors refused by a full `to_main`, not
    /// reported yet.
    pub(crate) dropped: u64,
    /// The last worker that ended, and how (for `post_to_worker` after it).
    pub(crate) ended: Option<(u32, Ended)>,
    /// Messages discarded so far (toward a worker that ended, or left
    /// without a listener at exit).
    pub(crate) discarded: u64,
    /// The run was stopped from outside (deadline, cancel).
    pub(crate) stopped: bool,
    /// Worker messages the full `to_main` refused (back-pressure).
    pub(crate) refused_to_main: u64,
    /// The JavaScript main thread's context while it waits (a run of
    /// `app.js`): whoever makes it ready hands it to the pool.
    pub(crate) main_parked: Parked,
}

/// A context parked in the state while it has nothing to do, and the
/// wake-up its timers asked the timer thread for.
#[derive(Default)]
pub(crate) struct Parked {
    pub(crate) task: Option<Arc<dyn Task>>,
    pub(crate) timer_set: Option<Instant>,
}

/// The one live worker.
pub(crate) struct Slot {
    pub(crate) id: u32,
    /// Its limits; the queue limits hold in both directions.
    pub(crate) limits: Limits,
    pub(crate) inbox: VecDeque<(Instant, Encoded)>,
    /// Bytes of the messages in `inbox`.
    pub(crate) inbox_bytes: usize,
    pub(crate) listening: bool,
    /// Running a turn (or not started yet).
    pub(crate) busy: bool,
    pub(crate) timer_due: Option<Instant>,
    pub(crate) stop: Arc<AtomicBool>,
    /// What its store uses (set once the store exists).
    pub(crate) usage: Option<Arc<Usage>>,
    /// Its context while it waits for a job.
    pub(crate) parked: Parked,
}

impl Slot {
    pub(crate) fn new(id: u32, limits: Limits, stop: Arc<AtomicBool>) -> Slot {
        Slot {
            id,
            limits,
            inbox: VecDeque::new(),
            inbox_bytes: 0,
            listening: false,
            busy: true,
            timer_due: None,
            stop,
            usage: None,
            parked: Parked::default(),
        }
    }

    /// Neither running, nor holding a timer, nor a message it could take.
    pub(crate) fn idle(&self) -> bool {
        !self.busy && self.timer_due.is_none() && (self.inbox.is_empty() || !self.listening)
    }
}

/// The limit a queue holding `count` entries of `bytes` bytes would pass by
/// taking one of `adding` bytes under `limits`, if any.
pub(crate) fn queue_full(limits: &Limits, count: usize, bytes: usize, adding: usize) -> Option<QueueLimit> {
    if count >= limits.queue_message_count() {
        Some(QueueLimit::Messages(limits.queue_message_count()))
    } else if bytes.saturating_add(adding) > limits.queue_byte_count() {
        Some(QueueLimit::Bytes(limits.queue_byte_count()))
    } else {
        None
    }
}

/// Messages delivered to the JavaScript main thread in one call, at most.
const MAIN_BATCH: usize = 64;

/// What the JavaScript main thread does next.
pub(crate) enum MainJob {
    /// An error, a kill, a console line or a notice of a worker (messages
    /// always come as `Messages`).
    Event(u32, Event),
    /// Messages of one worker that are ready together, in order, at most
    /// [`MAIN_BATCH`] (each its own turn).
    Messages(u32, Vec<WitMessage>),
    Timer,
    Quiescent,
    Stopped,
}

impl State {
    /// How worker `id` ended (terminated when unknown).
    pub(crate) fn ended_error(&self, id: u32) -> Error {
        match self.ended {
            Some((ended, how)) if ended == id => how.error(),
            _ => Error::Terminated,
        }
    }

    /// The live worker, if it is `id`.
    pub(crate) fn slot(&mut self, id: u32) -> Option<&mut Slot> {
        self.worker.as_mut().filter(|s| s.id == id)
    }

    /// Queues `message` toward worker `id`.
    pub(crate) fn post_to_worker(&mut self, id: u32, message: Encoded) -> Result<(), Error> {
        let Some(slot) = self.slot(id) else {
            return Err(self.ended_error(id));
        };
        let len = message.len();
        if let Some(limit) = queue_full(&slot.limits, slot.inbox.len(), slot.inbox_bytes, len) {
            return Err(Error::QueueFull {
                toward: Toward::Worker,
                limit,
            });
        }
        slot.inbox_bytes += len;
        slot.inbox.push_back((Instant::now(), message));
        Ok(())
    }

    /// Queues an event toward the main thread, past the limits (kills and
    /// dropped counts: small, and never refused).
    pub(crate) fn push_to_main(&mut self, id: u32, event: Event) {
        self.to_main_bytes += event.byte_len();
        self.to_main.push_back(Queued {
            id,
            at: Instant::now(),
            event,
        });
    }

    /// Takes the event at `index` of `to_main`.
    pub(crate) fn take_to_main(&mut self, index: usize) -> Option<Queued> {
        let taken = self.to_main.remove(index)?;
        self.to_main_bytes = self.to_main_bytes.saturating_sub(taken.event.byte_len());
        Some(taken)
    }

    /// Takes the oldest event of worker `id`.
    pub(crate) fn take_event_of(&mut self, id: u32) -> Option<Event> {
        let i = self.to_main.iter().position(|q| q.id == id)?;
        self.take_to_main(i).map(|q| q.event)
    }

    /// Drops every event of worker `id` from `to_main`.
    pub(crate) fn forget_worker_events(&mut self, id: u32) {
        self.to_main.retain(|q| q.id != id);
        self.to_main_bytes = self.to_main.iter().map(|q| q.event.byte_len()).sum();
    }

    /// The first event the JavaScript main thread can take: a message
    /// waits for an `onMessage` listener and holds back later messages
    /// only; errors and kills behind it go to their own listeners.
    fn deliverable(&self, listening: bool) -> Option<usize> {
        if listening {
            return (!self.to_main.is_empty()).then_some(0);
        }
        self.to_main
            .iter()
            .position(|q| !matches!(q.event, Event::Message(_)))
    }

    /// The JavaScript main thread's next job: a deliverable worker event
    /// or a due timer, in the order they became ready; or quiescence, or
    /// the stop; `Err` when it has to wait.
    pub(crate) fn next_main_job(
        &mut self,
        listening: bool,
        timer_due: Option<Instant>,
    ) -> Result<MainJob, ()> {
        if self.stopped {
            return Ok(MainJob::Stopped);
        }
        let now = Instant::now();
        let event = self.deliverable(listening);
        let timer_ready = timer_due.filter(|due| *due <= now);
        match (event, timer_ready) {
            (Some(i), Some(due)) if due <= self.to_main[i].at => return Ok(MainJob::Timer),
            (Some(i), _) => {
                if let Some(q) = self.take_to_main(i) {
                    let Event::Message(first) = q.event else {
                        return Ok(MainJob::Event(q.id, q.event));
                    };
                    // With a listener, the messages of the same worker right
                    // behind it that became ready before the timer go too.
                    let mut batch = vec![first.into()];
                    while listening && batch.len() < MAIN_BATCH {
                        let next = self.to_main.front().filter(|n| {
                            n.id == q.id
                                && matches!(n.event, Event::Message(_))
                                && timer_due.is_none_or(|due| n.at < due)
                        });
                        if next.is_none() {
                            break;
                        }
                        if let Some(Queued {
                            event: Event::Message(m),
                            ..
                        }) = self.take_to_main(0)
                        {
                            batch.push(m.into());
                        }
                    }
                    return Ok(MainJob::Messages(q.id, batch));
                }
            }
            (None, Some(_)) => return Ok(MainJob::Timer),
            (None, None) => {}
        }
        if timer_due.is_none() && self.worker.as_ref().is_none_or(Slot::idle) {
            return Ok(MainJob::Quiescent);
        }
        Err(())
    }
}
