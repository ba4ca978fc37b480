//! Contexts as tasks (docs/spec.md section 6): idle contexts hold no
//! thread, long turns do not hold up the others, the thread cap holds, and
//! a run can be started and awaited without a thread of its own.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use miniworker::{
    Event, ExitStatus, HostCaps, Limits, MiniProgram, Project, RunControl, RunOptions, Runtime,
};
use serde_json::json;

use crate::common::{PATIENCE, fixture, next_message};

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn open(runtime: &Runtime, name: &str) -> MiniProgram {
    MiniProgram::new(runtime, Project::open(fixture(name)).unwrap()).unwrap()
}

/// The console lines of a run, in order.
fn console_sink() -> (Arc<Mutex<Vec<String>>>, Arc<dyn miniworker::EventSink>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let theirs = lines.clone();
    let sink = Arc::new(move |event: Event| {
        if let Event::Console { args, .. } = event {
            theirs.lock().unwrap().push(args.join(" "));
        }
    });
    (lines, sink)
}

/// A new worker of a new instance is refused at once: the host's `cap`
/// contexts are taken.
fn refuses_a_worker(runtime: &Runtime, cap: usize) {
    use miniworker::{Error, HostResource};
    let refused = open(runtime, "basic").create_worker("workers/echo.js");
    assert!(
        matches!(refused, Err(Error::HostLimit { what: HostResource::Contexts, cap: c }) if c == cap),
        "{:?}",
        refused.err()
    );
}

/// Starts a run of fixture `waiting` (its worker's echo, then an hour's
/// timer): its console lines, its control and its handle.
fn start_waiting(runtime: &Runtime) -> (Arc<Mutex<Vec<String>>>, RunControl, miniworker::Running) {
    let (lines, sink) = console_sink();
    let control = RunControl::default();
    let options = RunOptions {
        control: control.clone(),
        ..RunOptions::default()
    };
    let project = Project::open(fixture("waiting")).unwrap();
    let running = MiniProgram::start(runtime, project, &options, sink).unwrap();
    (lines, control, running)
}

#[test]
fn idle_contexts_hold_no_thread() {
    let runtime = Runtime::new().unwrap();
    // 200 Rust main threads with a worker each, and 40 runs of app.js
    // with a worker each, all started and then idle.
    let programs: Vec<_> = (0..200).map(|_| open(&runtime, "basic")).collect();
    let workers: Vec<_> = programs
        .iter()
        .map(|p| p.create_worker("workers/echo.js").unwrap())
        .collect();
    for worker in &workers {
        assert_eq!(next_message(worker), json!({ "kind": "ready" }));
    }
    let runs: Vec<_> = (0..40).map(|_| start_waiting(&runtime)).collect();
    for (lines, _, running) in &runs {
        let start = std::time::Instant::now();
        while lines.lock().unwrap().is_empty() && start.elapsed() < PATIENCE {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(*lines.lock().unwrap(), ["echo 1"]);
        assert!(running.report().is_none(), "it waits on its timer");
    }
    // 480 contexts, none of them running: the pool threads end after 5 s
    // without work, and none is left.
    let start = std::time::Instant::now();
    while runtime.threads() > 0 && start.elapsed() < PATIENCE {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(runtime.threads(), 0);
    for (i, worker) in workers.iter().enumerate() {
        worker.post_json(&json!({ "i": i })).unwrap();
        assert_eq!(next_message(worker)["i"], json!(i));
    }
    for (_, control, running) in &runs {
        control.stop();
        assert_eq!(running.wait().status, ExitStatus::Stopped);
    }
}

#[test]
fn long_turns_do_not_hold_up_other_contexts() {
    let runtime = Runtime::new().unwrap();
    // More workers spinning than there are CPUs: the pool grows for them.
    let spinning: Vec<_> = (0..cpus() + 1).map(|_| open(&runtime, "basic")).collect();
    let spinners: Vec<_> = spinning
        .iter()
        .map(|p| p.create_worker("workers/spin.js").unwrap())
        .collect();
    for spinner in &spinners {
        assert_eq!(next_message(spinner), json!("spinning"));
    }
    let program = open(&runtime, "basic");
    let worker = program.create_worker("workers/echo.js").unwrap();
    assert_eq!(next_message(&worker), json!({ "kind": "ready" }));
    worker.post_json(&json!({ "n": 7 })).unwrap();
    assert_eq!(next_message(&worker)["n"], json!(7));
    assert!(runtime.threads() > cpus(), "{} pool threads", runtime.threads());
    for (program, spinner) in spinning.iter().zip(&spinners) {
        spinner.terminate();
        assert!(program.wait_workers_ended(PATIENCE));
    }
}

#[test]
fn the_thread_cap_holds() {
    let runtime = Runtime::with_caps(HostCaps::default().threads(1)).unwrap();
    let limits = Limits::default().cpu_time(Duration::from_millis(300));
    let spinning =
        MiniProgram::with_limits(&runtime, Project::open(fixture("basic")).unwrap(), limits).unwrap();
    let spinner = spinning.create_worker("workers/spin.js").unwrap();
    assert_eq!(next_message(&spinner), json!("spinning"));
    // The one thread is the spinner's until its CPU-time limit kills it:
    // the other worker starts only after that.
    let program = open(&runtime, "basic");
    let worker = program.create_worker("workers/echo.js").unwrap();
    assert_eq!(next_message(&worker), json!({ "kind": "ready" }));
    let killed = spinner.recv_timeout(Duration::ZERO).unwrap();
    assert!(
        matches!(
            killed,
            Some(Event::Killed {
                reason: miniworker::KillReason::CpuTime,
                ..
            })
        ),
        "{killed:?}"
    );
    assert_eq!(runtime.threads(), 1);
}

#[test]
fn a_run_can_be_awaited() {
    let runtime = Runtime::new().unwrap();
    let (lines, sink) = console_sink();
    let project = Project::open(fixture("worker-timer")).unwrap();
    let running = MiniProgram::start(&runtime, project, &RunOptions::default(), sink).unwrap();
    let tokio = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let report = tokio.block_on(running.finished());
    assert_eq!(report.status, ExitStatus::Normal);
    assert!(!lines.lock().unwrap().is_empty());
    assert_eq!(running.report().map(|r| r.status), Some(ExitStatus::Normal));
    // A worker event right away, then the run's deadline on the timer thread.
    let options = RunOptions {
        timeout: Some(Duration::from_millis(200)),
        ..RunOptions::default()
    };
    let (_, sink) = console_sink();
    let project = Project::open(fixture("waiting")).unwrap();
    let running = MiniProgram::start(&runtime, project, &options, sink).unwrap();
    assert_eq!(running.wait().status, ExitStatus::TimedOut);
}

#[test]
fn the_host_capacity_is_known_up_front_and_refuses_at_once() {
    // Derived from this machine's limits when the runtime starts.
    let stats = Runtime::new().unwrap().stats();
    assert!(stats.context_capacity > 1000, "{stats:?}");
    assert!(
        ["vm.max_map_count", "address space", "memory"].contains(&stats.capacity_bound_by),
        "{stats:?}"
    );

    let runtime = Runtime::with_caps(HostCaps::default().contexts(3)).unwrap();
    let a = open(&runtime, "basic");
    let b = open(&runtime, "basic");
    let first = a.create_worker("workers/echo.js").unwrap();
    let second = b.create_worker("workers/echo.js").unwrap();
    // A run's main thread is a context too: the third.
    let (lines, _, running) = start_waiting(&runtime);
    let stats = runtime.stats();
    assert_eq!(
        (stats.contexts, stats.context_capacity, stats.capacity_bound_by),
        (3, 3, "HostCaps::contexts")
    );
    // Its createWorker finds the capacity taken: an exception in app.js,
    // which has no handler here, so the run ends with an uncaught error.
    assert_eq!(running.wait().status, ExitStatus::UncaughtError);
    assert!(lines.lock().unwrap().is_empty());
    let c = open(&runtime, "basic");
    // The main thread's context was given back when its run ended: one free.
    let third = c.create_worker("workers/echo.js").unwrap();
    refuses_a_worker(&runtime, 3);
    // A worker's context is given back once it ended.
    first.terminate();
    assert!(a.wait_workers_ended(PATIENCE));
    let again = a.create_worker("workers/echo.js").unwrap();
    for worker in [&second, &third, &again] {
        assert_eq!(next_message(worker), json!({ "kind": "ready" }));
    }
}

#[test]
fn dropped_instances_give_back_their_parked_contexts() {
    let runtime = Runtime::new().unwrap();
    // Parked with a timer an hour away (a run), or with nothing to do (a
    // worker): dropping their instances frees every context and store.
    let (_, control, running) = start_waiting(&runtime);
    let programs: Vec<_> = (0..20).map(|_| open(&runtime, "basic")).collect();
    for program in &programs {
        let worker = program.create_worker("workers/echo.js").unwrap();
        assert_eq!(next_message(&worker), json!({ "kind": "ready" }));
    }
    assert_eq!(runtime.stats().contexts, 22);
    drop(programs);
    control.stop();
    assert_eq!(running.wait().status, ExitStatus::Stopped);
    let start = std::time::Instant::now();
    while runtime.stats().contexts > 0 && start.elapsed() < PATIENCE {
        std::thread::sleep(Duration::from_millis(10));
    }
    let stats = runtime.stats();
    assert_eq!((stats.contexts, stats.instances), (0, 0), "{stats:?}");
}

#[test]
fn a_pool_of_slots_is_the_capacity_and_each_slot_starts_clean() {
    let runtime = Runtime::with_caps(HostCaps::default().pool(2)).unwrap();
    let stats = runtime.stats();
    assert_eq!(
        (stats.context_capacity, stats.capacity_bound_by),
        (2, "HostCaps::pool")
    );
    let program = open(&runtime, "basic");
    // Slots are used again and again; each worker starts from the snapshot
    // (its message count is its own), never from what the last one left.
    for i in 0..12 {
        let worker = program.create_worker("workers/echo.js").unwrap();
        assert_eq!(next_message(&worker), json!({ "kind": "ready" }));
        worker.post_json(&json!({ "i": i })).unwrap();
        assert_eq!(next_message(&worker), json!({ "i": i, "echo": true, "count": 1 }));
        worker.terminate();
        assert!(program.wait_workers_ended(PATIENCE));
    }
    // Two live contexts fill the pool: the third is refused at once.
    let other = open(&runtime, "basic");
    let a = program.create_worker("workers/echo.js").unwrap();
    let b = other.create_worker("workers/echo.js").unwrap();
    refuses_a_worker(&runtime, 2);
    for worker in [&a, &b] {
        assert_eq!(next_message(worker), json!({ "kind": "ready" }));
    }
    // A lower context cap wins over the pool.
    let runtime = Runtime::with_caps(HostCaps::default().pool(4).contexts(3)).unwrap();
    let stats = runtime.stats();
    assert_eq!(
        (stats.context_capacity, stats.capacity_bound_by),
        (3, "HostCaps::contexts")
    );
}
