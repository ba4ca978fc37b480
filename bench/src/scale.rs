//! The scale rows of issue 15: idle instances (each a run of `app.js` with
//! a worker) until the host's capacity, with the process's memory, threads
//! and mappings at 10,000; 1,000 instances active at once against one
//! alone; timer ticks with 5,000 other timers pending.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use miniworker::{Error, Event, EventSink, MiniProgram, Project, RunControl, RunOptions, Runtime};
use serde_json::{Value, json};

use crate::stats::Stats;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn dir(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

/// A field of a /proc file of the form `Name:  value unit`, in its unit
/// (kB for sizes).
fn proc_field(file: &str, field: &str) -> Result<u64> {
    let text = std::fs::read_to_string(file)?;
    let line = text
        .lines()
        .find(|l| l.starts_with(field))
        .ok_or("no such field")?;
    Ok(line.split_whitespace().nth(1).ok_or("empty field")?.parse()?)
}

fn mappings() -> Result<usize> {
    Ok(std::fs::read_to_string("/proc/self/maps")?.lines().count())
}

/// What the process holds now.
fn snapshot() -> Result<Value> {
    Ok(json!({
        "rss_mib": proc_field("/proc/self/status", "VmRSS:")? as f64 / 1024.0,
        // Shared pages divided among their mappings: the guests' snapshot
        // images, mapped once per context, count once.
        "pss_mib": proc_field("/proc/self/smaps_rollup", "Pss:")? as f64 / 1024.0,
        "os_threads": proc_field("/proc/self/status", "Threads:")?,
        "mappings": mappings()?,
    }))
}

/// Idle instances of bench/idle, `target` of them or until the host's
/// capacity refuses one (`Error::HostLimit`), then on to the capacity
/// (at most `ceiling`): the process at `target`, and how many it held.
pub fn idle(runtime: &Runtime, target: usize, ceiling: usize) -> Result<Value> {
    let up = Arc::new(AtomicUsize::new(0));
    let counter = up.clone();
    let sink: Arc<dyn EventSink> = Arc::new(move |event: Event| {
        if let Event::Console { .. } = event {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let before = snapshot()?;
    let project = Project::open(dir("idle"))?;
    let mut runs = Vec::new();
    let mut at_target = Value::Null;
    let mut refused = None;
    let t0 = Instant::now();
    while runs.len() < ceiling {
        let control = RunControl::default();
        let options = RunOptions {
            control: control.clone(),
            ..RunOptions::default()
        };
        match MiniProgram::start(runtime, project.clone(), &options, sink.clone()) {
            Ok(running) => runs.push((control, running)),
            Err(e @ Error::HostLimit { .. }) => {
                refused = Some(e.to_string());
                break;
            }
            Err(e) => return Err(e.into()),
        }
        // Each instance up (its worker's echo heard) before the next: a
        // run whose worker the capacity refused ends with an error instead.
        let started = Instant::now();
        while up.load(Ordering::SeqCst) < runs.len() {
            if let Some(report) = runs.last().and_then(|(_, r)| r.report()) {
                refused = Some(format!("the last run ended: {:?}", report.status));
                break;
            }
            if started.elapsed() > Duration::from_secs(30) {
                return Err("an instance did not come up in 30 s".into());
            }
            std::thread::yield_now();
        }
        if refused.is_some() {
            runs.pop();
            break;
        }
        if runs.len() == target {
            // Idle: the pool's threads end after 5 s without work.
            std::thread::sleep(Duration::from_secs(6));
            at_target = snapshot()?;
            eprintln!(
                "  {target} idle instances after {:.1} s: {at_target}",
                t0.elapsed().as_secs_f64()
            );
        }
    }
    let held = runs.len();
    let stats = runtime.stats();
    eprintln!(
        "  one process held {held} instances (capacity {} contexts, bound by {}){}",
        stats.context_capacity,
        stats.capacity_bound_by,
        refused
            .as_deref()
            .map(|r| format!("; then: {r}"))
            .unwrap_or_default()
    );
    let at_max = snapshot()?;
    for (control, _) in &runs {
        control.stop();
    }
    for (_, running) in &runs {
        running.wait();
    }
    Ok(json!({
        "before": before,
        "at_target": at_target,
        "target": target,
        "max_instances": held,
        "at_max": at_max,
        "context_capacity": stats.context_capacity,
        "capacity_bound_by": stats.capacity_bound_by,
        "refused": refused,
    }))
}

/// `instances` Rust main threads with an echo worker each, `round_trips`
/// each, all in flight at once from one tokio thread; and one instance
/// alone doing as many round trips as each. Aggregate round trips per second
/// of each, and the p99 round trip with all in flight.
pub fn active(runtime: &Runtime, instances: usize, round_trips: usize) -> Result<Value> {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let alone = tokio.block_on(drive(runtime, 1, round_trips * 20))?;
    let together = tokio.block_on(drive(runtime, instances, round_trips))?;
    let ratio = together.0 / alone.0;
    eprintln!(
        "  {instances} active x {round_trips} round trips: {:.0}/s (p99 {:.1} us) vs one alone {:.0}/s: ratio {ratio:.2}",
        together.0, together.1.p99, alone.0
    );
    Ok(json!({
        "alone_rt_per_s": alone.0,
        "active_rt_per_s": together.0,
        "active_rtt_p50_us": together.1.median,
        "active_rtt_p99_us": together.1.p99,
        "ratio": ratio,
    }))
}

async fn drive(runtime: &Runtime, instances: usize, round_trips: usize) -> Result<(f64, Stats)> {
    let project = Project::open(dir("project"))?;
    let mut workers = Vec::new();
    for _ in 0..instances {
        let program = MiniProgram::new(runtime, project.clone())?;
        let worker = program.create_worker("workers/echo.js")?;
        next_message(&worker).await?;
        workers.push((program, worker));
    }
    let t0 = Instant::now();
    let all = workers.iter().map(|(_, worker)| async move {
        let mut us = Vec::with_capacity(round_trips);
        for i in 0..round_trips {
            let t = Instant::now();
            worker.post_json(&json!({ "i": i }))?;
            next_message(worker).await?;
            us.push(t.elapsed().as_secs_f64() * 1e6);
        }
        Ok::<_, Box<dyn std::error::Error>>(us)
    });
    let mut us = Vec::new();
    for one in futures_util::future::join_all(all).await {
        us.extend(one?);
    }
    let per_s = (instances * round_trips) as f64 / t0.elapsed().as_secs_f64();
    Ok((per_s, Stats::of(us)))
}

async fn next_message(worker: &miniworker::Worker) -> Result<()> {
    loop {
        match worker.next_event().await? {
            Event::Message(_) => return Ok(()),
            Event::Console { .. } | Event::Ready { .. } => continue,
            other => return Err(format!("expected a message, got {other:?}").into()),
        }
    }
}

/// 2,000 chained timer ticks with 5,000 other timers pending, against none
/// (bench/timers, its second round): the ratio of the two times.
pub fn timers(runtime: &Runtime) -> Result<Value> {
    let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
    let theirs = lines.clone();
    let sink: Arc<dyn EventSink> = Arc::new(move |event: Event| {
        if let Event::Console { args, .. } = event {
            theirs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(args.join(" "));
        }
    });
    MiniProgram::run(
        runtime,
        Project::open(dir("timers"))?,
        &RunOptions::default(),
        sink,
    )?;
    let lines = lines.lock().unwrap_or_else(|p| p.into_inner()).clone();
    // "2000 ticks with N pending: X ms", each case twice: the second counts.
    let ms = |pending: u32| -> Result<f64> {
        let prefix = format!("2000 ticks with {pending} pending: ");
        let line = lines
            .iter()
            .rev()
            .find(|l| l.starts_with(&prefix))
            .ok_or("a timer case is missing")?;
        Ok(line[prefix.len()..].trim_end_matches(" ms").parse()?)
    };
    let (none, pending) = (ms(0)?, ms(5000)?);
    eprintln!(
        "  2,000 timer ticks: {none:.1} ms with none pending, {pending:.1} ms with 5,000: ratio {:.2}",
        pending / none
    );
    Ok(json!({ "none_ms": none, "pending_5k_ms": pending, "ratio": pending / none }))
}
