//! The side of an instance a Rust main thread uses: taking a worker's
//! events (blocking with a deadline, or as a future) and waiting until the
//! worker is quiescent.

use std::task::Poll;
use std::time::Instant;

use super::Instance;
use super::queues::{Slot, State};
use crate::error::Result;
use crate::event::Event;
use crate::signal::relock;

impl Instance {
    /// The next event of worker `id` for a Rust main thread, waiting until
    /// `deadline` at most.
    pub(crate) fn recv(&self, id: u32, deadline: Option<Instant>) -> Option<Event> {
        let mut st = self.lock();
        loop {
            if let Some(event) = st.take_event_of(id) {
                return Some(event);
            }
            if deadline.is_some_and(|d| d <= Instant::now()) {
                return None;
            }
            st = self.main_cv.wait(&self.state, st, deadline);
        }
    }

    /// Polls for worker `id`'s next event: `Ready(Err(..))` once the worker
    /// ended and all its events were taken.
    pub(crate) fn poll_event(&self, id: u32, cx: &mut std::task::Context<'_>) -> Poll<Result<Event>> {
        let mut st = self.lock();
        if let Some(event) = st.take_event_of(id) {
            return Poll::Ready(Ok(event));
        }
        if st.slot(id).is_none() {
            return Poll::Ready(Err(st.ended_error(id)));
        }
        // Registered under the state lock: the next notification wakes it.
        relock(&self.main_wakers).push(cx.waker().clone());
        Poll::Pending
    }

    /// Polls until worker `id` is quiescent ([`Instance::worker_quiescent`]).
    pub(crate) fn poll_quiescent(&self, id: u32, cx: &mut std::task::Context<'_>) -> Poll<()> {
        let st = self.lock();
        if quiescent(&st, id) {
            return Poll::Ready(());
        }
        relock(&self.main_wakers).push(cx.waker().clone());
        Poll::Pending
    }

    /// See [`crate::Worker::is_quiescent`].
    pub(crate) fn worker_quiescent(&self, id: u32) -> bool {
        quiescent(&self.lock(), id)
    }
}

/// Worker `id` is neither running nor holding a timer or a message it
/// could take, and none of its events waits to be received.
fn quiescent(st: &State, id: u32) -> bool {
    st.worker.as_ref().filter(|s| s.id == id).is_none_or(Slot::idle) && !st.to_main.iter().any(|q| q.id == id)
}
