//! Measures `createWorker` to the worker's first message, through the
//! library (the Rust host as the main thread): the echo worker of
//! `tests/fixtures/basic` posts `{kind: 'ready'}` once evaluated.
//!
//! `cargo run --release --example start_latency [-- RUNS]`

use std::time::{Duration, Instant};

use miniworker::{MiniProgram, Project, Runtime, WorkerEvent};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(200);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/basic");
    let runtime = Runtime::new()?;
    let program = MiniProgram::new(&runtime, Project::open(root)?)?;
    let mut samples = Vec::with_capacity(runs);
    for i in 0..runs + 10 {
        let start = Instant::now();
        let worker = program.create_worker("workers/echo.js")?;
        loop {
            match worker.recv_timeout(Duration::from_secs(10))? {
                Some(WorkerEvent::Message(_)) => break,
                Some(_) => continue,
                None => return Err("no reply".into()),
            }
        }
        let elapsed = start.elapsed();
        worker.terminate();
        if i >= 10 {
            samples.push(elapsed);
        }
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    println!(
        "createWorker -> first message, {runs} runs: median {:.3} ms, p90 {:.3} ms, min {:.3} ms",
        at(0.5),
        at(0.9),
        at(0.0)
    );
    Ok(())
}
