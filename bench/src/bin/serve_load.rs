//! The server under load (`make bench-serve`, part of `make bench`): N
//! concurrent sessions over two `miniworker serve` hosts (clients alternate
//! between them), each doing R round trips with examples/hello's worker;
//! then the same workload on N `miniworker worker` processes driven over
//! their pipes. Reports opens (processes ready) per second, round-trip
//! p50/p99, aggregate round trips per second, and memory (PSS) per session
//! and per process.
//!
//!   serve_load [--sessions N] [--trips R] [--out FILE]

#[path = "../stats.rs"]
#[allow(dead_code)] // the main bench's too; not all of it is used here
mod stats;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use stats::Stats;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn miniworker() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.join("miniworker")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| root().join("target/release/miniworker"))
}

/// Proportional set size of a process, in bytes (shared pages split among
/// their users, so a sum over processes is fair).
fn pss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Pss:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

fn archive() -> (Vec<u8>, String) {
    let mut builder = tar::Builder::new(Vec::new());
    builder
        .append_dir_all(".", root().join("examples/hello"))
        .expect("examples/hello is archived");
    let bytes = builder.into_inner().expect("the archive ends");
    let hex: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let hash = format!("sha256:{hex}");
    (bytes, hash)
}

struct Host {
    child: tokio::process::Child,
    data: String,
}

async fn start_host() -> Host {
    let mut child = Command::new(miniworker())
        .args(["serve", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .args(["--capacity", "100000", "--ping-interval", "600"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("miniworker serve starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let line = lines
        .next_line()
        .await
        .ok()
        .flatten()
        .expect("the listening line");
    let v: Value = serde_json::from_str(&line).expect("JSON");
    Host {
        child,
        data: v["listening"].as_str().expect("listening").to_owned(),
    }
}

async fn text(ws: &mut Ws) -> Value {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(t.as_str()).expect("JSON"),
            Some(Ok(_)) => continue,
            other => panic!("the session ended: {other:?}"),
        }
    }
}

/// Opens a hello worker session on `addr`, up to its `ready`.
async fn open(addr: &str, archive: &(Vec<u8>, String)) -> Ws {
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(format!("ws://{addr}/v1/session"), None, true)
            .await
            .expect("connected");
    let open = json!({ "type": "open", "project": archive.1, "entry": "workers/request/index.js" });
    ws.send(Message::Text(open.to_string().into()))
        .await
        .expect("sent");
    loop {
        let v = text(&mut ws).await;
        match v["type"].as_str() {
            Some("need-project") => ws
                .send(Message::Binary(archive.0.clone().into()))
                .await
                .expect("sent"),
            Some("ready") => return ws,
            Some("opened") => {}
            _ => panic!("unexpected {v}"),
        }
    }
}

/// One round trip on a session: its time.
async fn ws_trip(ws: &mut Ws, n: usize) -> Duration {
    let started = Instant::now();
    let msg = json!({ "type": "message", "data": { "msg": n.to_string() } }).to_string();
    ws.send(Message::Text(msg.into())).await.expect("sent");
    loop {
        if text(ws).await["type"] == "message" {
            return started.elapsed();
        }
    }
}

struct Outcome {
    ready_per_second: f64,
    trips: Stats,
    trips_per_second: f64,
    pss_per_unit: f64,
}

async fn run_sessions(n: usize, trips: usize) -> Outcome {
    let archive = Arc::new(archive());
    let hosts = [start_host().await, start_host().await];
    // Each host gets the project once before the clock starts.
    for host in &hosts {
        drop(open(&host.data, &archive).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pids: Vec<u32> = hosts.iter().filter_map(|h| h.child.id()).collect();
    let baseline: u64 = pids.iter().map(|p| pss(*p)).sum();
    let started = Instant::now();
    let mut opening = Vec::new();
    for i in 0..n {
        let (addr, archive) = (hosts[i % 2].data.clone(), archive.clone());
        opening.push(tokio::spawn(async move { open(&addr, &archive).await }));
    }
    let mut sessions = Vec::new();
    for task in opening {
        sessions.push(task.await.expect("a session"));
    }
    let opened = started.elapsed();
    let loaded: u64 = pids.iter().map(|p| pss(*p)).sum();
    let (all, elapsed) = round_trips(sessions, trips).await;
    Outcome {
        ready_per_second: n as f64 / opened.as_secs_f64(),
        trips: Stats::of(all),
        trips_per_second: (n * trips) as f64 / elapsed.as_secs_f64(),
        pss_per_unit: loaded.saturating_sub(baseline) as f64 / n as f64,
    }
}

/// A session or a process: one round trip at a time.
trait Peer: Send + 'static {
    fn trip(&mut self, n: usize) -> impl Future<Output = Duration> + Send;
}

impl Peer for Ws {
    fn trip(&mut self, n: usize) -> impl Future<Output = Duration> + Send {
        ws_trip(self, n)
    }
}

impl Peer for Proc {
    fn trip(&mut self, n: usize) -> impl Future<Output = Duration> + Send {
        pipe_trip(self, n)
    }
}

/// All peers doing `trips` round trips at once: every round trip's time in
/// microseconds, and the time all of them took.
async fn round_trips<P: Peer>(peers: Vec<P>, trips: usize) -> (Vec<f64>, Duration) {
    let started = Instant::now();
    let mut running = Vec::new();
    for mut peer in peers {
        running.push(tokio::spawn(async move {
            let mut times = Vec::with_capacity(trips);
            for t in 0..trips {
                times.push(peer.trip(t).await.as_secs_f64() * 1e6);
            }
            times
        }));
    }
    let mut all = Vec::new();
    for task in running {
        all.extend(task.await.expect("round trips"));
    }
    (all, started.elapsed())
}

struct Proc {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

async fn start_process() -> Proc {
    let mut child = Command::new(miniworker())
        .arg("worker")
        .arg(root().join("examples/hello"))
        .arg("workers/request/index.js")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("miniworker worker starts");
    let stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let ready = lines.next_line().await.ok().flatten().expect("ready");
    assert!(ready.contains("\"ready\""), "{ready}");
    Proc { child, stdin, lines }
}

async fn pipe_trip(p: &mut Proc, n: usize) -> Duration {
    let started = Instant::now();
    let msg = json!({ "type": "message", "data": { "msg": n.to_string() } }).to_string() + "\n";
    p.stdin.write_all(msg.as_bytes()).await.expect("written");
    loop {
        let line = p.lines.next_line().await.ok().flatten().expect("a line");
        if line.starts_with("{\"type\":\"message\"") {
            return started.elapsed();
        }
    }
}

async fn run_processes(n: usize, trips: usize) -> Outcome {
    let started = Instant::now();
    let mut starting = Vec::new();
    for _ in 0..n {
        starting.push(tokio::spawn(start_process()));
    }
    let mut procs = Vec::new();
    for task in starting {
        procs.push(task.await.expect("a process"));
    }
    let ready = started.elapsed();
    let total: u64 = procs.iter().filter_map(|p| p.child.id()).map(pss).sum();
    let (all, elapsed) = round_trips(procs, trips).await;
    Outcome {
        ready_per_second: n as f64 / ready.as_secs_f64(),
        trips: Stats::of(all),
        trips_per_second: (n * trips) as f64 / elapsed.as_secs_f64(),
        pss_per_unit: total as f64 / n as f64,
    }
}

fn report(name: &str, o: &Outcome) -> Value {
    println!(
        "{name:<28} {:>10.0}/s ready {:>9.0} us p50 {:>9.0} us p99 {:>10.0} trips/s {:>8.2} MiB each",
        o.ready_per_second,
        o.trips.median,
        o.trips.p99,
        o.trips_per_second,
        o.pss_per_unit / (1 << 20) as f64
    );
    json!({
        "ready_per_second": o.ready_per_second,
        "round_trip_us": o.trips.to_json(),
        "round_trips_per_second": o.trips_per_second,
        "pss_bytes_each": o.pss_per_unit,
    })
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let n: usize = flag("--sessions").and_then(|v| v.parse().ok()).unwrap_or(1000);
    let trips: usize = flag("--trips").and_then(|v| v.parse().ok()).unwrap_or(100);
    let out = flag("--out")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("bench/results/serve-load.json"));
    println!("{n} sessions x {trips} round trips (examples/hello), two serve hosts vs {n} worker processes");
    let sessions = run_sessions(n, trips).await;
    let serve = report("serve (2 hosts, WebSocket)", &sessions);
    let processes = run_processes(n, trips).await;
    let workers = report("worker processes (stdio)", &processes);
    let result = json!({
        "date": std::process::Command::new("date").arg("+%F").output().ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()),
        "sessions": n,
        "round_trips_each": trips,
        "serve": serve,
        "worker_processes": workers,
    });
    if let Some(dir) = out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(&out, serde_json::to_string_pretty(&result).unwrap_or_default())
        .expect("the result is written");
    println!("written to {}", out.display());
}
