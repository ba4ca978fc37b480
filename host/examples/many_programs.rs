//! Fifty mini-program instances in one host, as the limits test runs them:
//! one spins, one allocates without bound, one floods a main thread that
//! never reads, and 47 do 200 echo round trips each. Prints the wall time of
//! one well-behaved instance alone, and of the 47 beside the three bad ones.
//!
//! `cargo run --release --example many_programs`

use std::time::{Duration, Instant};

use miniworker::{Event, Limits, MiniProgram, Project, Runtime};
use serde_json::json;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn next_message(worker: &miniworker::Worker) -> Result<serde_json::Value> {
    loop {
        match worker.recv_timeout(Duration::from_secs(30))? {
            Some(Event::Message(m)) => return Ok(m.to_json()?),
            Some(Event::Console { .. } | Event::Ready { .. }) => continue,
            other => return Err(format!("unexpected {other:?}").into()),
        }
    }
}

fn program(runtime: &Runtime) -> Result<MiniProgram> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/limits");
    let limits = Limits::default()
        .cpu_time(Duration::from_millis(300))
        .memory(32 << 20)
        .queue_messages(20);
    Ok(MiniProgram::with_limits(runtime, Project::open(root)?, limits)?)
}

/// One instance's life; the time the good ones take.
fn run(runtime: &Runtime, kind: usize) -> Result<Duration> {
    let start = Instant::now();
    let program = program(runtime)?;
    match kind {
        0 => {
            let w = program.create_worker("workers/spin.js")?;
            next_message(&w)?;
            w.post_json(&json!("spin"))?;
            while !matches!(
                w.recv_timeout(Duration::from_secs(30))?,
                Some(Event::Killed { .. })
            ) {}
        }
        1 => {
            let w = program.create_worker("workers/bomb.js")?;
            next_message(&w)?;
            w.post_json(&json!("go"))?;
            while !matches!(
                w.recv_timeout(Duration::from_secs(30))?,
                Some(Event::Killed { .. })
            ) {}
        }
        2 => {
            let w = program.create_worker("workers/flood.js")?;
            w.post_json(&json!(1_000_000))?;
            std::thread::sleep(Duration::from_millis(300));
            w.terminate();
        }
        _ => {
            let w = program.create_worker("workers/echo.js")?;
            for n in 0..200 {
                w.post_json(&json!(n))?;
                if next_message(&w)? != json!(n) {
                    return Err("a message was lost or reordered".into());
                }
            }
        }
    }
    Ok(start.elapsed())
}

fn main() -> Result<()> {
    let runtime = Runtime::new()?;
    let mut solo: Vec<Duration> = (0..10).map(|_| run(&runtime, 3)).collect::<Result<_>>()?;
    solo.sort();
    let start = Instant::now();
    let threads: Vec<_> = (0..50)
        .map(|i| {
            let runtime = runtime.clone();
            std::thread::spawn(move || run(&runtime, i))
        })
        .collect();
    let mut together = Vec::new();
    for (i, t) in threads.into_iter().enumerate() {
        let took = t.join().map_err(|_| "a thread panicked")??;
        if i >= 3 {
            together.push(took);
        }
    }
    let all = start.elapsed();
    together.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "one well-behaved instance alone (200 echo round trips): median {:.1} ms over 10 runs",
        ms(solo[solo.len() / 2])
    );
    println!(
        "47 of them beside a spinner, a memory bomb and a flooder: median {:.1} ms, max {:.1} ms each; {:.1} ms in all",
        ms(together[together.len() / 2]),
        ms(together[together.len() - 1]),
        ms(all)
    );
    Ok(())
}
