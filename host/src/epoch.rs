//! The epoch ticker: advances the engine's epoch while guests run, so each
//! store's deadline callback can check its turn's CPU time (and `stop`),
//! and lets the pool grow when long turns hold every thread.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use wasmtime::Engine;

use crate::scheduler::Scheduler;

/// How often the epoch advances while a guest runs: the granularity of the
/// CPU-time check.
const TICK: Duration = Duration::from_millis(10);

/// How long the ticker keeps ticking after the last guest call ended before
/// it parks: calls in quick succession never have to wake it.
const GRACE: Duration = Duration::from_millis(50);

/// The thread that advances the engine's epoch every [`TICK`] while guest
/// calls run (and for [`GRACE`] after), and parks otherwise. Entering and
/// leaving a call are two atomic operations; only a call that finds the
/// ticker parked takes its lock to wake it.
pub(crate) struct Ticker {
    running: AtomicUsize,
    parked: AtomicBool,
    shut_down: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

impl Ticker {
    pub(crate) fn start(engine: &Engine, scheduler: Scheduler) -> std::io::Result<Arc<Ticker>> {
        let ticker = Arc::new(Ticker {
            running: AtomicUsize::new(0),
            parked: AtomicBool::new(false),
            shut_down: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        let (me, engine) = (ticker.clone(), engine.clone());
        std::thread::Builder::new()
            .name("miniworker-epoch".into())
            .spawn(move || me.run(&engine, &scheduler))?;
        Ok(ticker)
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run(&self, engine: &Engine, scheduler: &Scheduler) {
        let mut idle_since: Option<Instant> = None;
        loop {
            if self.shut_down.load(Ordering::SeqCst) {
                return;
            }
            if self.running.load(Ordering::SeqCst) > 0 {
                idle_since = None;
            } else if idle_since.get_or_insert_with(Instant::now).elapsed() >= GRACE {
                let guard = self.lock();
                self.parked.store(true, Ordering::SeqCst);
                // A call that began before `parked` was set is seen here; one
                // that begins after it takes the lock to notify.
                if self.running.load(Ordering::SeqCst) == 0 && !self.shut_down.load(Ordering::SeqCst) {
                    drop(self.wake.wait(guard).unwrap_or_else(|p| p.into_inner()));
                }
                self.parked.store(false, Ordering::SeqCst);
                idle_since = None;
                continue;
            }
            std::thread::sleep(TICK);
            engine.increment_epoch();
            scheduler.grow_if_starved(TICK);
        }
    }

    /// Marks a guest call in progress until the guard drops: the epoch
    /// ticks only while some guest runs.
    pub(crate) fn enter(&self) -> RunningGuard<'_> {
        self.running.fetch_add(1, Ordering::SeqCst);
        if self.parked.load(Ordering::SeqCst) {
            let _guard = self.lock();
            self.wake.notify_all();
        }
        RunningGuard(self)
    }

    fn leave(&self) {
        self.running.fetch_sub(1, Ordering::SeqCst);
    }

    pub(crate) fn shut_down(&self) {
        self.shut_down.store(true, Ordering::SeqCst);
        let _guard = self.lock();
        self.wake.notify_all();
    }
}

/// A guest call in progress (see [`Ticker::enter`]).
pub(crate) struct RunningGuard<'a>(&'a Ticker);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.leave();
    }
}
