//! The wake-up primitive of the library's waiting threads (a Rust main
//! thread, free pool threads): a condition variable over some state that a
//! waiter first spins on.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a waiting thread spins (yielding its CPU) before it sleeps: a
/// wake-up within it costs no futex sleep and wake, which on a shared
/// machine takes tens of microseconds. A wait that ends in sleep costs at
/// most this much CPU.
const SPIN: Duration = Duration::from_micros(50);

/// Every notification is made with the state's lock held (the guard is the
/// proof), which is what lets a sleeping waiter never miss one and a
/// notification with no sleeper skip the system call.
#[derive(Default)]
pub(crate) struct Signal {
    cv: Condvar,
    /// Bumped by every notification.
    seq: AtomicU64,
    /// Waiters asleep on `cv` (or about to be).
    sleepers: AtomicUsize,
}

impl Signal {
    /// Wakes every waiter.
    pub(crate) fn notify<T>(&self, _locked: &MutexGuard<'_, T>) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            self.cv.notify_all();
        }
    }

    /// Wakes spinning waiters and at most one sleeping waiter (for waiters
    /// that each take one item).
    pub(crate) fn notify_one<T>(&self, _locked: &MutexGuard<'_, T>) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            self.cv.notify_one();
        }
    }

    /// Waits for a notification until `deadline` at most; the caller
    /// re-checks the state either way.
    pub(crate) fn wait<'a, T>(
        &self,
        mutex: &'a Mutex<T>,
        guard: MutexGuard<'a, T>,
        deadline: Option<Instant>,
    ) -> MutexGuard<'a, T> {
        let seen = self.seq.load(Ordering::SeqCst);
        let start = Instant::now();
        drop(guard);
        let spin_until = deadline.map_or(start + SPIN, |d| d.min(start + SPIN));
        while Instant::now() < spin_until {
            if self.seq.load(Ordering::SeqCst) != seen {
                return relock(mutex);
            }
            std::thread::yield_now();
        }
        let guard = relock(mutex);
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        let guard = if self.seq.load(Ordering::SeqCst) != seen {
            guard
        } else {
            match deadline.map(|d| d.saturating_duration_since(Instant::now())) {
                Some(t) => match self.cv.wait_timeout(guard, t) {
                    Ok((g, _)) => g,
                    Err(p) => p.into_inner().0,
                },
                None => self.cv.wait(guard).unwrap_or_else(|p| p.into_inner()),
            }
        };
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
        guard
    }
}

/// Locks `mutex`. A panic elsewhere while holding the lock is a host bug;
/// the state stays usable.
pub(crate) fn relock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
