//! Measures the time from `terminate()` to the worker's thread being gone,
//! for a worker spinning in `while (true) {}` (`tests/fixtures/basic`'s
//! spin.js, which posts once and then never yields).
//!
//! `cargo run --release --example terminate_latency [-- RUNS]`

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
    for _ in 0..runs {
        let worker = program.create_worker("workers/spin.js")?;
        match worker.recv_timeout(Duration::from_secs(10))? {
            Some(WorkerEvent::Message(_)) => {}
            other => return Err(format!("expected the spinning message, got {other:?}").into()),
        }
        // Let it spin a little inside the loop.
        std::thread::sleep(Duration::from_millis(2));
        let start = Instant::now();
        worker.terminate();
        if !program.wait_worker_threads(Duration::from_secs(10)) {
            return Err("the worker thread did not end".into());
        }
        samples.push(start.elapsed());
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
    println!(
        "terminate() -> worker thread gone, spinning worker, {runs} runs: median {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        at(0.5),
        at(0.99),
        at(1.0)
    );
    Ok(())
}
