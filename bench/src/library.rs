//! miniworker measured through the Rust library, the host being the main
//! thread: the definitions of bench/README.md, items (a)-(e) and (g).

use std::path::Path;
use std::time::{Duration, Instant};

use miniworker::{Event, Limits, Message, MiniProgram, Project, Runtime, Worker};
use serde_json::{Value, json};

use crate::stats::Stats;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// How many of each measurement.
pub struct Plan {
    pub start: (usize, usize),
    pub rtt: (usize, usize),
    pub tput: (usize, usize),
    pub big: (usize, usize),
    pub instances: usize,
    pub terminate: usize,
}

impl Plan {
    pub fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                start: (2, 10),
                rtt: (200, 2_000),
                tput: (1, 20_000),
                big: (1, 5),
                instances: 100,
                terminate: 30,
            }
        } else {
            Plan {
                start: (3, 50),
                rtt: (2_000, 20_000),
                tput: (3, 200_000),
                big: (3, 30),
                instances: 1_000,
                terminate: 200,
            }
        }
    }
}

/// The benchmark project (bench/project).
pub fn project_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("project")
}

fn program(runtime: &Runtime) -> Result<MiniProgram> {
    // Queue limits raised for the throughput run (the defaults of docs/spec.md otherwise).
    let limits = Limits::default().queue_messages(1 << 20).queue_bytes(1 << 30);
    Ok(MiniProgram::with_limits(
        runtime,
        Project::open(project_dir())?,
        limits,
    )?)
}

fn next_message(worker: &Worker) -> Result<Message> {
    loop {
        match worker.recv_timeout(Duration::from_secs(60))? {
            Some(Event::Message(m)) => return Ok(m.decode()?),
            Some(Event::Console { .. } | Event::Ready { .. }) => continue,
            other => return Err(format!("expected a message, got {other:?}").into()),
        }
    }
}

/// (a) createWorker to the first message.
pub fn start(runtime: &Runtime, (warm, n): (usize, usize)) -> Result<Stats> {
    let program = program(runtime)?;
    let mut ms = Vec::new();
    for i in 0..warm + n {
        let t0 = Instant::now();
        let worker = program.create_worker("workers/echo.js")?;
        next_message(&worker)?;
        let took = t0.elapsed();
        worker.terminate();
        program.wait_workers_ended(Duration::from_secs(10));
        if i >= warm {
            ms.push(took.as_secs_f64() * 1e3);
        }
    }
    Ok(Stats::of(ms))
}

fn ping(i: usize) -> Message {
    Message::from_json(&json!({
        "id": i, "kind": "ping",
        "payload": { "user": "u-4711", "seq": i, "ts": 1_700_000_000_000u64 + i as u64, "tags": ["a", "b"] }
    }))
}

fn echo_worker(program: &MiniProgram) -> Result<Worker> {
    let worker = program.create_worker("workers/echo.js")?;
    next_message(&worker)?;
    Ok(worker)
}

/// (b) round trip of a ~100-byte object, microseconds.
pub fn rtt(runtime: &Runtime, (warm, n): (usize, usize)) -> Result<Stats> {
    let program = program(runtime)?;
    let worker = echo_worker(&program)?;
    let messages: Vec<Message> = (0..warm + n).map(ping).collect();
    let mut us = Vec::with_capacity(n);
    for (i, message) in messages.iter().enumerate() {
        let t0 = Instant::now();
        worker.post_message(message)?;
        let reply = next_message(&worker)?;
        let took = t0.elapsed();
        if i == 0 && reply.to_json()?["echo"] != json!(true) {
            return Err("bad echo".into());
        }
        if i >= warm {
            us.push(took.as_secs_f64() * 1e6);
        }
    }
    Ok(Stats::of(us))
}

/// (c) round trips per second: `n` ticks posted back to back, each answered.
pub fn throughput(runtime: &Runtime, (reps, n): (usize, usize)) -> Result<Stats> {
    let program = program(runtime)?;
    let worker = echo_worker(&program)?;
    let ticks: Vec<Message> = (0..n)
        .map(|i| Message::from_json(&json!({ "id": i, "kind": "tick", "v": i & 255 })))
        .collect();
    let mut rates = Vec::new();
    for rep in 0..=reps {
        let t0 = Instant::now();
        for tick in &ticks {
            worker.post_message(tick)?;
        }
        for _ in 0..n {
            next_message(&worker)?;
        }
        // The first pass warms up.
        if rep > 0 {
            rates.push(n as f64 / t0.elapsed().as_secs_f64());
        }
    }
    Ok(Stats::of(rates))
}

/// The ~1 MB object of bench/project/measure.js (`makeBig`).
pub fn make_big(target_bytes: usize) -> Value {
    let mut seed: u32 = 7;
    let mut rnd = move || {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        seed >> 8
    };
    let words = [
        "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
    ];
    let mut items = Vec::new();
    let mut bytes = 40;
    let mut i = 0;
    while bytes < target_bytes {
        let name = format!("{}-{i}", words[(rnd() & 7) as usize]);
        let active = rnd() & 1 == 1;
        let score = (rnd() % 100_000) as f64 / 100.0;
        let tags = [words[(rnd() & 7) as usize], words[(rnd() & 7) as usize]];
        let (x, y) = (rnd() % 1000, rnd() % 1000);
        let text = format!("lorem ipsum dolor sit amet {}", radix36(rnd()));
        let rec = json!({ "id": i, "name": name, "active": active, "score": score, "tags": tags,
                          "pos": { "x": x, "y": y }, "text": text });
        bytes += js_json_len(&rec) + 1;
        items.push(rec);
        i += 1;
    }
    json!({ "kind": "bulk", "id": 1, "payload": { "items": items } })
}

fn radix36(mut v: u32) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(digits[(v % 36) as usize]);
        v /= 36;
        if v == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// The length of `JSON.stringify(value)`: serde_json writes a float with an
/// integral value as `1.0`, JavaScript as `1`.
pub fn js_json_len(value: &Value) -> usize {
    match value {
        Value::Number(n) if n.is_f64() && n.as_f64().is_some_and(|f| f.fract() == 0.0) => {
            format!("{}", n.as_f64().unwrap_or(0.0) as i64).len()
        }
        Value::Array(items) => {
            2 + items.iter().map(|v| js_json_len(v) + 1).sum::<usize>() - usize::from(!items.is_empty())
        }
        Value::Object(map) => {
            2 + map
                .iter()
                .map(|(k, v)| Value::String(k.clone()).to_string().len() + 1 + js_json_len(v) + 1)
                .sum::<usize>()
                - usize::from(!map.is_empty())
        }
        other => other.to_string().len(),
    }
}

/// (d) round trip of the ~1 MB object, milliseconds.
pub fn big(runtime: &Runtime, (warm, n): (usize, usize)) -> Result<Stats> {
    let program = program(runtime)?;
    let worker = echo_worker(&program)?;
    let value = make_big(1 << 20);
    let message = Message::from_json(&value);
    let mut ms = Vec::new();
    for i in 0..warm + n {
        let t0 = Instant::now();
        worker.post_message(&message)?;
        let reply = next_message(&worker)?;
        let took = t0.elapsed();
        if i == 0 && reply.nodes.len() < message.nodes.len() {
            return Err("bad big echo".into());
        }
        if i >= warm {
            ms.push(took.as_secs_f64() * 1e3);
        }
    }
    Ok(Stats::of(ms))
}

/// Resident memory of this process, in KiB.
fn rss_kib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4.0
}

/// (e) RSS added by one idle worker, and per instance with `instances`
/// idle instances each holding a worker (KiB). Run in a fresh process.
pub fn rss(runtime: &Runtime, instances: usize) -> Result<(f64, f64)> {
    // Warm: the first worker maps the compiled code.
    let warm = program(runtime)?;
    drop(echo_worker(&warm)?);
    warm.wait_workers_ended(Duration::from_secs(10));
    drop(warm);
    std::thread::sleep(Duration::from_millis(300));
    let before = rss_kib();
    let first = program(runtime)?;
    let first_worker = echo_worker(&first)?;
    std::thread::sleep(Duration::from_millis(300));
    let one = rss_kib() - before;
    let mut held = vec![(first, first_worker)];
    for _ in 1..instances {
        let p = program(runtime)?;
        let w = echo_worker(&p)?;
        held.push((p, w));
    }
    std::thread::sleep(Duration::from_millis(300));
    let per_instance = (rss_kib() - before) / instances as f64;
    drop(held);
    Ok((one, per_instance))
}

/// (g) terminate() to the worker's thread gone, for a spinning worker (ms).
pub fn terminate(runtime: &Runtime, runs: usize) -> Result<Stats> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/basic");
    let program = MiniProgram::new(runtime, Project::open(root)?)?;
    let mut ms = Vec::new();
    for _ in 0..runs {
        let worker = program.create_worker("workers/spin.js")?;
        next_message(&worker)?;
        std::thread::sleep(Duration::from_millis(2));
        let t0 = Instant::now();
        worker.terminate();
        if !program.wait_workers_ended(Duration::from_secs(10)) {
            return Err("a terminated worker's thread did not end".into());
        }
        ms.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    Ok(Stats::of(ms))
}

/// (f) one compute script run in a worker: the `ms` its one console line reports.
pub fn compute_once(runtime: &Runtime, script: &str) -> Result<(f64, String)> {
    let program = MiniProgram::new(runtime, Project::open(project_dir())?)?;
    let worker = program.create_worker(&format!("workers/compute/{script}.js"))?;
    loop {
        return match worker.recv_timeout(Duration::from_secs(300))? {
            Some(Event::Ready { .. }) => continue,
            Some(Event::Console { args, .. }) => crate::peers::parse_compute_line(&args.join(" ")),
            Some(Event::Error { error, .. }) => Err(format!("{script}: {error}").into()),
            other => Err(format!("{script}: unexpected {other:?}").into()),
        };
    }
}
