//! Nothing lost, host memory bounded (docs/spec.md sections 4a and 5): messages
//! that would be huge as trees, errors with huge strings, events behind an
//! unheard message, floods of errors, kill notices, deadlines and signals.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use miniworker::{Dropped, Event, MiniProgram, Project};
use serde_json::{Value, json};

use crate::common::{PATIENCE, event_lines, fixture, runtime, stderr, stdout};

/// A copy of the `lossless` fixture whose `app.js` runs `scenario`.
fn scenario(scenario: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    copy_dir(&fixture("lossless"), dir.path());
    std::fs::write(
        dir.path().join("scenario.js"),
        format!("module.exports = '{scenario}';\n"),
    )
    .expect("write scenario.js");
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read the fixture") {
        let entry = entry.expect("an entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a type").is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

fn miniworker(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_miniworker"));
    command.args(args);
    command
}

/// Watches `child`'s peak RSS (`VmHWM` of /proc/PID/status, which starts
/// afresh at exec) until it exits; the thread returns it in bytes.
fn watch_peak_rss(child: &Child) -> std::thread::JoinHandle<u64> {
    let status = format!("/proc/{}/status", child.id());
    std::thread::spawn(move || {
        let mut peak = 0;
        while let Ok(text) = std::fs::read_to_string(&status) {
            let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            else {
                break; // a zombie has no memory left to measure
            };
            peak = peak.max(kib * 1024);
            std::thread::sleep(Duration::from_millis(10));
        }
        peak
    })
}

const MIB: u64 = 1 << 20;

/// The length of `{"type":"message","data":[null,...]}` for 15 million holes.
const HOLES_LINE: usize = 25 + 2 + 15_000_000 * 4 + 14_999_999 + 1;

#[test]
fn fifteen_million_holes_posted_five_times_keep_the_host_small() {
    // The stdio protocol, with a reader that waits 2 s before reading: the
    // queue fills by bytes (the encoded 15 MB each), and each message
    // becomes JSON text only when it is written.
    let project = fixture("lossless");
    let mut child = miniworker(&["worker", project.to_str().unwrap(), "workers/holes.js"])
        .args(["--timeout", "120"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let watch = watch_peak_rss(&child);
    std::thread::sleep(Duration::from_secs(2));
    // Big lines are checked as they come, never kept.
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let (mut holes, mut small) = (0, Vec::new());
    let mut line = Vec::new();
    while reader.read_until(b'\n', &mut line).unwrap() > 0 {
        if line.starts_with(b"{\"type\":\"message\"") {
            assert_eq!(line.len(), HOLES_LINE + 1);
            assert!(line.starts_with(b"{\"type\":\"message\",\"data\":[null,null,"));
            assert!(line.ends_with(b",null]}\n"));
            holes += 1;
        } else {
            small.extend_from_slice(&line);
        }
        line.clear();
    }
    let code = child.wait().unwrap().code();
    let peak = watch.join().unwrap();
    assert_eq!(code, Some(0));
    // At least four fit the 64 MiB queue; a post that did not fit was
    // refused at the worker (back-pressure), none was lost.
    assert!(holes >= 4, "{holes} messages");
    let small = event_lines(&small);
    let sent = format!("sent {holes}");
    assert!(
        small
            .iter()
            .any(|l| l["type"] == "console" && l["args"][0] == sent.as_str()),
        "{small:?}"
    );
    assert!(peak < 300 * MIB, "peak RSS {} MiB", peak / MIB);
    eprintln!("worker mode: peak RSS {} MiB", peak / MIB);

    // run: the main thread's guest decodes each message under its own limits.
    let dir = scenario("holes");
    let mut child = miniworker(&["run", "--timeout", "120", dir.path().to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let watch = watch_peak_rss(&child);
    std::thread::sleep(Duration::from_secs(1));
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let code = child.wait().unwrap().code();
    let peak = watch.join().unwrap();
    assert_eq!(code, Some(0), "{out}");
    let got = out.matches("[main] holes 15000000").count();
    assert!(got >= 4 && out.contains(&format!("[worker] sent {got}")), "{out}");
    assert!(peak < 300 * MIB, "peak RSS {} MiB", peak / MIB);
    eprintln!("run mode: peak RSS {} MiB", peak / MIB);
}

#[test]
fn every_string_of_an_error_counts_against_the_queue() {
    let program = MiniProgram::new(runtime(), Project::open(fixture("lossless")).unwrap()).unwrap();
    let worker = program.create_worker("workers/big-names.js").unwrap();
    // A slow reader: nothing is read until the worker's turn ended (`Ready`,
    // seven errors and the dropped count are queued).
    let start = Instant::now();
    while program.stats().queued_to_main < 9 {
        assert!(start.elapsed() < PATIENCE, "{:?}", program.stats());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(program.stats().queued_to_main_bytes <= 64 << 20);
    let (mut errors, mut dropped) = (0u64, 0u64);
    loop {
        match worker.recv_timeout(Duration::from_secs(2)).unwrap() {
            Some(Event::Error { error, .. }) => {
                assert_eq!(error.name.len(), 8 << 20);
                errors += 1;
            }
            Some(Event::Dropped {
                what: Dropped::WorkerEvents,
                count,
            }) => dropped += count,
            Some(Event::Ready { .. }) => {}
            None => break,
            other => panic!("unexpected {other:?}"),
        }
        if errors + dropped == 200 {
            break;
        }
    }
    // 64 MiB of queue holds seven 8 MiB names; the rest are counted.
    assert_eq!(errors, 7);
    assert_eq!(errors + dropped, 200);
}

#[test]
fn an_error_and_a_kill_behind_an_unheard_message_reach_their_listeners() {
    let dir = scenario("unheard");
    let out = miniworker(&["run", "--timeout", "30", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "[main] onError behind the unheard message\n[main] onProcessKilled test after 1 errors\n"
    );
    assert!(
        stderr(&out).contains("(1 message(s) waiting for an onMessage listener discarded at exit)"),
        "{}",
        stderr(&out)
    );
    let out = miniworker(&["run", "--json", "--timeout", "30", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    let lines = event_lines(&out.stdout);
    assert!(
        lines.contains(&json!({ "type": "dropped", "what": "messages-without-listener", "count": 1 })),
        "{lines:?}"
    );
}

#[test]
fn a_hundred_thousand_rejections_are_delivered_or_counted() {
    let dir = scenario("rejects");
    let out = miniworker(&["run", "--json", "--timeout", "120", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = event_lines(&out.stdout);
    let delivered: u64 = lines
        .iter()
        .find_map(|l| {
            l["args"][0]
                .as_str()?
                .strip_prefix("onError calls ")?
                .parse()
                .ok()
        })
        .expect("the count line");
    let dropped: u64 = lines
        .iter()
        .filter(|l| l["type"] == "dropped" && l["what"] == "worker-events")
        .map(|l| l["count"].as_u64().unwrap())
        .sum();
    assert_eq!(
        delivered + dropped,
        100_000,
        "{delivered} delivered, {dropped} dropped"
    );
}

#[test]
fn the_kill_notice_is_printed_in_every_run() {
    let dir = scenario("unheard");
    let path = dir.path().to_str().unwrap();
    for i in 0..50 {
        let json = i % 2 == 1;
        let out = if json {
            miniworker(&["run", "--json", path]).output().unwrap()
        } else {
            miniworker(&["run", path]).output().unwrap()
        };
        if json {
            let lines = event_lines(&out.stdout);
            assert!(
                lines
                    .iter()
                    .any(|l| l["type"] == "killed" && l["reason"] == "test"),
                "run {i}: {lines:?}"
            );
        } else {
            assert!(
                stderr(&out).contains("miniworker: worker killed (test)"),
                "run {i}: {}",
                stderr(&out)
            );
        }
    }
}

#[test]
fn a_worker_timeout_ends_the_stream_however_busy_the_worker_is() {
    let project = fixture("lossless");
    let start = Instant::now();
    let mut child = miniworker(&["worker", project.to_str().unwrap(), "workers/ticker.js"])
        .args(["--timeout", "2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // stdin stays open: only the deadline can end it.
    let _stdin = child.stdin.take();
    let mut text = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut text).unwrap();
    let status = child.wait().unwrap();
    let elapsed = start.elapsed();
    assert_eq!(status.code(), Some(124));
    let lines = event_lines(&text);
    assert_eq!(
        lines.last(),
        Some(&json!({ "type": "exit", "code": 124, "reason": "timeout" }))
    );
    assert!(lines.iter().filter(|l| l["type"] == "message").count() > 10);
    // The old loop never ended; the bound is loose for a shared machine.
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

/// Starts `args`, waits for a stdout line containing `marker`, sends
/// `signal`, and returns the exit code and every stdout line.
fn signal_after(args: &[&str], marker: &str, signal: libc::c_int) -> (Option<i32>, Vec<String>) {
    let mut child = miniworker(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 {
        let seen = line.contains(marker);
        lines.push(std::mem::take(&mut line));
        if seen {
            break;
        }
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    lines.extend(rest.lines().map(|l| format!("{l}\n")));
    let code = child.wait().unwrap().code();
    (
        code,
        lines.into_iter().map(|l| l.trim_end().to_string()).collect(),
    )
}

#[test]
fn sigint_and_sigterm_stop_with_every_diagnostic() {
    let dir = scenario("idle-timer");
    let path = dir.path().to_str().unwrap();
    let (code, lines) = signal_after(&["run", "--json", path], "waiting", libc::SIGTERM);
    assert_eq!(code, Some(143));
    let bytes: Vec<u8> = lines.iter().flat_map(|l| l.bytes().chain([b'\n'])).collect();
    let events = event_lines(&bytes);
    assert_eq!(
        events.last(),
        Some(&json!({ "type": "exit", "code": 143, "reason": "signal" }))
    );
    let (code, lines) = signal_after(&["run", path], "waiting", libc::SIGINT);
    assert_eq!(code, Some(130), "{lines:?}");

    let project: PathBuf = fixture("lossless");
    let (code, lines) = signal_after(
        &["worker", project.to_str().unwrap(), "workers/idle-timer.js"],
        "waiting",
        libc::SIGINT,
    );
    assert_eq!(code, Some(130));
    let bytes: Vec<u8> = lines.iter().flat_map(|l| l.bytes().chain([b'\n'])).collect();
    let events: Vec<Value> = event_lines(&bytes);
    assert_eq!(
        events.last(),
        Some(&json!({ "type": "exit", "code": 130, "reason": "signal" }))
    );
}

#[test]
fn messages_a_worker_never_listened_for_are_counted_as_unheard_at_exit() {
    let dir = scenario("deaf");
    let out = miniworker(&["run", "--json", "--timeout", "30", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = event_lines(&out.stdout);
    let dropped: Vec<&Value> = lines.iter().filter(|l| l["type"] == "dropped").collect();
    assert_eq!(
        dropped,
        [&json!({ "type": "dropped", "what": "messages-without-listener", "count": 2 })]
    );
}
