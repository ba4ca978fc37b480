//! Contexts as tasks (docs/spec.md section 6): the pool of threads that
//! runs contexts' turns, and the timer thread that wakes contexts whose
//! timers are due. A context owns no OS thread while it is idle: it parks
//! itself in its instance's state, and whatever makes it ready (a message,
//! a terminate, a due timer) hands it back to the pool.
//!
//! The pool has a thread per CPU when that many contexts are ready at once;
//! past that it grows only for long turns, like a blocking pool: while
//! guests run, the epoch ticker asks [`Scheduler::grow_if_starved`] every
//! tick, and when tasks wait while every thread has been in one run for a
//! whole tick, one more thread starts, up to [`crate::HostCaps`]'s thread
//! cap. A thread idle for
//! [`KEEP_ALIVE`] ends. A free thread first spins (yielding its CPU) so that
//! a ready context is picked up by a thread that is awake.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::signal::{Signal, relock};

/// How long a pool thread with nothing to do lives on.
const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// Jobs a context runs before it lets the other queued contexts have its
/// thread (a worker flooded with messages does not hold one for ever).
pub(crate) const JOBS_PER_RUN: usize = 16;

/// How a context's run on a pool thread ended.
pub(crate) enum Ran {
    /// Nothing to do: parked in its instance's state.
    Parked,
    /// It still has jobs: back in the queue, behind the others.
    Yielded,
    /// Stopped, quiescent or killed: its store is gone.
    Done,
}

/// A context (or anything else) the pool can run.
pub(crate) trait Task: Send + Sync + 'static {
    /// Runs what is ready, on a pool thread; the task parks itself again
    /// (or ends) before it returns.
    fn run(self: Arc<Self>);

    /// A timer the task asked for is due (on the timer thread: must not
    /// block). Spurious calls are harmless.
    fn timer_fired(self: Arc<Self>);
}

/// The pool and the timer thread of one [`crate::Runtime`]. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Scheduler {
    shared: Arc<Shared>,
}

struct Shared {
    stack_size: usize,
    /// Threads started as soon as tasks wait: one per CPU.
    core_threads: usize,
    max_threads: usize,
    pool: Mutex<Pool>,
    /// Wakes free pool threads.
    ready: Signal,
    timers: Mutex<Timers>,
    timers_cv: Condvar,
}

#[derive(Default)]
struct Pool {
    /// Ready tasks.
    queue: VecDeque<Arc<dyn Task>>,
    threads: usize,
    free: usize,
    /// When each busy thread (by its number) began its current run.
    busy: std::collections::HashMap<u64, Instant>,
    /// The next thread's number.
    next_thread: u64,
    shut_down: bool,
}

#[derive(Default)]
struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    /// The task of each heap entry, by its sequence number (entries whose
    /// task is gone are skipped).
    tasks: std::collections::HashMap<u64, Weak<dyn Task>>,
    next: u64,
    shut_down: bool,
}

impl Scheduler {
    /// A scheduler whose pool threads have `stack_size` bytes of stack, at
    /// most `max_threads` of them; starts the timer thread.
    pub(crate) fn start(stack_size: usize, max_threads: usize) -> std::io::Result<Scheduler> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let shared = Arc::new(Shared {
            stack_size,
            core_threads: cpus.min(max_threads.max(1)),
            max_threads: max_threads.max(1),
            pool: Mutex::new(Pool::default()),
            ready: Signal::default(),
            timers: Mutex::new(Timers::default()),
            timers_cv: Condvar::new(),
        });
        let theirs = shared.clone();
        std::thread::Builder::new()
            .name("miniworker-timers".into())
            .spawn(move || theirs.timer_loop())?;
        Ok(Scheduler { shared })
    }

    /// Queues `task` to run on a pool thread, starting one when none is
    /// free and there are fewer than one per CPU. Fails only when no thread
    /// runs and none can be started.
    pub(crate) fn schedule(&self, task: Arc<dyn Task>) -> std::io::Result<()> {
        let shared = &self.shared;
        let mut pool = relock(&shared.pool);
        pool.queue.push_back(task);
        if pool.queue.len() > pool.free && pool.threads < shared.core_threads {
            match shared.spawn_thread(&mut pool) {
                Ok(()) => {}
                Err(e) if pool.threads == 0 => {
                    pool.queue.pop_back();
                    return Err(e);
                }
                Err(e) => tracing::warn!("cannot start another pool thread: {e}"),
            }
        }
        shared.ready.notify_one(&pool);
        Ok(())
    }

    /// Calls `task.timer_fired()` at `due` (or soon after), unless the
    /// task is gone by then.
    pub(crate) fn wake_at(&self, due: Instant, task: Weak<dyn Task>) {
        let mut timers = relock(&self.shared.timers);
        let seq = timers.next;
        timers.next += 1;
        let earliest = timers.heap.peek().is_none_or(|Reverse((at, _))| due < *at);
        timers.heap.push(Reverse((due, seq)));
        timers.tasks.insert(seq, task);
        if earliest {
            self.shared.timers_cv.notify_one();
        }
    }

    /// Starts another thread when tasks wait and every thread has been in
    /// its current run for `long` or more (long turns); called by the epoch
    /// ticker while guests run.
    pub(crate) fn grow_if_starved(&self, long: Duration) {
        let shared = &self.shared;
        let mut pool = relock(&shared.pool);
        let starved = !pool.queue.is_empty()
            && pool.free == 0
            && pool.busy.len() == pool.threads
            && pool.busy.values().all(|since| since.elapsed() >= long);
        if starved
            && pool.threads < shared.max_threads
            && let Err(e) = shared.spawn_thread(&mut pool)
        {
            tracing::warn!("cannot start another pool thread: {e}");
        }
    }

    /// Pool threads now.
    pub(crate) fn threads(&self) -> usize {
        relock(&self.shared.pool).threads
    }

    /// Ends the timer thread and, once their queue is empty, the pool threads.
    pub(crate) fn shut_down(&self) {
        relock(&self.shared.timers).shut_down = true;
        self.shared.timers_cv.notify_all();
        let mut pool = relock(&self.shared.pool);
        pool.shut_down = true;
        self.shared.ready.notify(&pool);
    }
}

impl Shared {
    /// Starts a pool thread (with `pool` locked).
    fn spawn_thread(self: &Arc<Self>, pool: &mut Pool) -> std::io::Result<()> {
        let shared = self.clone();
        let number = pool.next_thread;
        std::thread::Builder::new()
            .name("miniworker-pool".into())
            .stack_size(self.stack_size)
            .spawn(move || shared.pool_loop(number))?;
        pool.next_thread += 1;
        pool.threads += 1;
        Ok(())
    }

    /// A pool thread: runs queued tasks; ends after [`KEEP_ALIVE`] without one.
    fn pool_loop(&self, number: u64) {
        let mut pool = relock(&self.pool);
        let mut idle_since = Instant::now();
        loop {
            if let Some(task) = pool.queue.pop_front() {
                pool.busy.insert(number, Instant::now());
                drop(pool);
                // A panic is a host bug; the thread and its count survive it.
                let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task.run()));
                if run.is_err() {
                    tracing::error!("a context's run panicked (a host bug)");
                }
                pool = relock(&self.pool);
                pool.busy.remove(&number);
                idle_since = Instant::now();
                continue;
            }
            let expires = idle_since + KEEP_ALIVE;
            if pool.shut_down || Instant::now() >= expires {
                pool.threads -= 1;
                return;
            }
            pool.free += 1;
            pool = self.ready.wait(&self.pool, pool, Some(expires));
            pool.free -= 1;
        }
    }

    /// The timer thread: fires each due entry whose task still lives.
    fn timer_loop(&self) {
        let mut timers = relock(&self.timers);
        loop {
            if timers.shut_down {
                return;
            }
            let now = Instant::now();
            match timers.heap.peek() {
                Some(Reverse((due, seq))) if *due <= now => {
                    let seq = *seq;
                    timers.heap.pop();
                    let task = timers.tasks.remove(&seq).and_then(|t| t.upgrade());
                    if let Some(task) = task {
                        drop(timers);
                        task.timer_fired();
                        timers = relock(&self.timers);
                    }
                }
                Some(Reverse((due, _))) => {
                    let wait = *due - now;
                    timers = match self.timers_cv.wait_timeout(timers, wait) {
                        Ok((g, _)) => g,
                        Err(p) => p.into_inner().0,
                    };
                }
                None => timers = self.timers_cv.wait(timers).unwrap_or_else(|p| p.into_inner()),
            }
        }
    }
}
