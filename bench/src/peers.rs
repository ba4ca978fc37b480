//! The peers, run as child processes: Node.js worker_threads (bench/node),
//! and the compute scripts under Node, native QuickJS-ng (this crate's
//! `qjs-ng`, the same rquickjs version as the guest) and Debian's `qjs`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::stats::Stats;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Runs `program args...` (under `taskset -c 0` when `pinned`) and returns
/// its stdout lines.
pub fn run_lines(program: &Path, args: &[&str], pinned: bool) -> Result<Vec<String>> {
    let mut command = if pinned {
        let mut c = Command::new("taskset");
        c.args(["-c", "0"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    let out = command.args(args).output()?;
    if !out.status.success() {
        return Err(format!(
            "{} {}: {}\n{}",
            program.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect())
}

/// `{"metric": NAME, "stats": {...}}` lines (a leading `[main] ` is dropped) by metric.
pub fn metrics(lines: &[String]) -> Vec<(String, Stats)> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim_start_matches("[main] ")).ok())
        .filter_map(|v| Some((v["metric"].as_str()?.to_owned(), Stats::from_json(&v["stats"]))))
        .collect()
}

/// The `ms` and `checksum` of a compute script's one JSON line.
pub fn parse_compute_line(line: &str) -> Result<(f64, String)> {
    let v: Value = serde_json::from_str(line.trim_start_matches("[worker] "))?;
    let ms = v["ms"].as_f64().ok_or("no ms in the compute line")?;
    Ok((ms, v["checksum"].as_str().unwrap_or_default().to_owned()))
}

/// A compute script's (ms, checksum) under an engine binary.
pub fn compute_once(engine: &Path, script: &Path) -> Result<(f64, String)> {
    let lines = run_lines(engine, &[script.to_str().unwrap_or_default()], false)?;
    parse_compute_line(lines.last().ok_or("no output")?)
}

/// A compute script's (ms, checksum) from the guest's `run_script` harness,
/// the script on its stdin, epoch interruption off.
pub fn compute_in_wasm_without_epochs(runner: &Path, harness: &Path, script: &Path) -> Result<(f64, String)> {
    let out = Command::new(runner)
        .arg("--no-epochs")
        .arg(harness)
        .stdin(std::fs::File::open(script)?)
        .output()?;
    if !out.status.success() {
        return Err(format!("{}: {}", runner.display(), String::from_utf8_lossy(&out.stderr)).into());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    parse_compute_line(stdout.lines().last().ok_or("no output")?)
}

/// `node`, if on PATH.
pub fn node() -> Option<PathBuf> {
    which("node")
}

/// Debian-source `qjs`: `$QJS`, else `target/bench/qjs/src/qjs`
/// (`make bench` builds it there with bench/qjs/build.sh).
pub fn qjs(target: &Path) -> Option<PathBuf> {
    std::env::var_os("QJS")
        .map(PathBuf::from)
        .or_else(|| Some(target.join("bench/qjs/src/qjs")))
        .filter(|p| p.is_file())
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
}
