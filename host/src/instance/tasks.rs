//! What an instance does for its contexts as tasks (`scheduler.rs`): each
//! context's next job, parking a context that has none (with a wake-up from
//! the timer thread for its next timer), and handing a parked context back
//! to the pool when something makes it ready.

use std::sync::Arc;
use std::time::Instant;

use super::queues::Parked;
use super::{BATCH, Instance, MainJob, WorkerJob};
use crate::error::{Error, Result};
use crate::scheduler::Task;

impl Instance {
    /// Parks the context `me` (it has nothing to do), asking the timer
    /// thread to wake it at `due`.
    pub(super) fn park(&self, parked: &mut Parked, me: &Arc<dyn Task>, due: Option<Instant>) {
        parked.task = Some(me.clone());
        if let Some(due) = due.filter(|due| parked.timer_set != Some(*due)) {
            parked.timer_set = Some(due);
            self.host.scheduler.wake_at(due, Arc::downgrade(me));
        }
    }

    /// Hands a parked context to the pool; nothing when it is not parked
    /// (it runs, or is queued, and sees the state before it parks again).
    pub(super) fn unpark(&self, parked: &mut Parked) {
        if let Some(task) = parked.task.take()
            && let Err(e) = self.host.scheduler.schedule(task)
        {
            tracing::error!(instance = self.id, "no thread can run a context: {e}");
        }
    }

    /// Queues `task` to run on the pool.
    pub(crate) fn schedule(&self, task: Arc<dyn Task>) -> Result<()> {
        self.host.scheduler.schedule(task).map_err(Error::Io)
    }

    /// The timer thread woke worker `id`.
    pub(crate) fn worker_timer_fired(&self, id: u32) {
        if let Some(slot) = self.lock().slot(id) {
            slot.parked.timer_set = None;
            self.unpark(&mut slot.parked);
        }
    }

    /// The timer thread woke the JavaScript main thread.
    pub(crate) fn main_timer_fired(&self) {
        let mut st = self.lock();
        st.main_parked.timer_set = None;
        self.unpark(&mut st.main_parked);
    }

    /// Worker `id`'s next job: its due timer, or the messages that became
    /// ready before it (when it has a listener), at most [`BATCH`]; or,
    /// with nothing to do, its context `me` parks.
    pub(crate) fn next_worker_job(&self, id: u32, me: &Arc<dyn Task>) -> WorkerJob {
        let mut st = self.lock();
        {
            let Some(slot) = st.slot(id) else {
                return WorkerJob::Stop;
            };
            let now = Instant::now();
            let timer_ready = slot.timer_due.filter(|due| *due <= now);
            let message_first = slot
                .inbox
                .front()
                .filter(|_| slot.listening)
                .is_some_and(|(at, _)| timer_ready.is_none_or(|due| *at < due));
            if message_first {
                slot.busy = true;
                let mut batch = Vec::new();
                while let Some((at, message)) = slot.inbox.front() {
                    if batch.len() == BATCH || timer_ready.is_some_and(|due| *at >= due) {
                        break;
                    }
                    let len = message.len();
                    let Some((_, message)) = slot.inbox.pop_front() else {
                        break;
                    };
                    slot.inbox_bytes = slot.inbox_bytes.saturating_sub(len);
                    batch.push(message.into());
                }
                return WorkerJob::Messages(batch);
            }
            if timer_ready.is_some() {
                slot.busy = true;
                slot.timer_due = None;
                return WorkerJob::Timer;
            }
            let due = slot.timer_due;
            self.park(&mut slot.parked, me, due);
            WorkerJob::Parked
        }
    }

    /// The JavaScript main thread's next job; `None` when it has nothing
    /// to do now and its context `me` parked.
    pub(crate) fn next_main_job(
        &self,
        listening: bool,
        timer_due: Option<Instant>,
        me: &Arc<dyn Task>,
    ) -> Option<MainJob> {
        let mut st = self.lock();
        match st.next_main_job(listening, timer_due) {
            Ok(job) => Some(job),
            Err(()) => {
                let st = &mut *st;
                self.park(&mut st.main_parked, me, timer_due);
                None
            }
        }
    }
}
