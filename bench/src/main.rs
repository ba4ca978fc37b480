//! `make bench`: miniworker and its peers, measured in one run with the
//! definitions of bench/README.md; writes bench/results/latest.json and
//! prints a side-by-side table.
//!
//! `miniworker-bench [--quick] [--out FILE]`, or `--table FILE` to print the
//! table of an earlier run, or `--section start|rtt|tput|big|rss|terminate`
//! for one measurement alone.

mod library;
mod peers;
mod scale;
mod stats;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use miniworker::{HostCaps, Runtime};
use serde_json::{Value, json};

use stats::Stats;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Runs one compute script by name: (in-script ms, checksum).
type ComputeRun<'a> = dyn Fn(&str) -> Result<(f64, String)> + 'a;

const SCRIPTS: [(&str, &str); 4] = [
    ("fib", "fib"),
    ("json", "json"),
    ("sort_regex", "sort_regex"),
    ("tokenize", "tokenize"),
];

fn main() {
    if let Err(e) = run() {
        eprintln!("miniworker-bench: {e}");
        std::process::exit(1);
    }
}

/// The runtime of the start, message and compute measurements: slots for
/// 64 contexts reserved up front (`HostCaps::pool`), as `miniworker run`
/// (whose app.js rows these sit beside) and `miniworker serve` have.
fn pooled() -> Result<Runtime> {
    Ok(Runtime::with_caps(HostCaps::default().pool(64))?)
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let plan = library::Plan::new(quick);
    // Sections run in a child process of their own (fresh memory, or pinned).
    if let Some(i) = args.iter().position(|a| a == "--section") {
        let section = args.get(i + 1).map(String::as_str);
        // The scale and memory probes measure the default allocator (one
        // mapping per context, nothing kept resident); the rest a pool.
        let runtime = if matches!(section, Some("scale" | "rss")) {
            Runtime::new()?
        } else {
            pooled()?
        };
        let line = match section {
            Some("rtt") => {
                json!({ "metric": "rtt_us", "stats": library::rtt(&runtime, plan.rtt)?.to_json() })
            }
            // One measurement alone (for profiling, or a quick figure).
            Some("start") => {
                json!({ "metric": "start_ms", "stats": library::start(&runtime, plan.start)?.to_json() })
            }
            Some("terminate") => {
                json!({ "metric": "terminate_ms", "stats": library::terminate(&runtime, plan.terminate)?.to_json() })
            }
            Some("tput") => {
                json!({ "metric": "throughput_rt_per_s", "stats": library::throughput(&runtime, plan.tput)?.to_json() })
            }
            Some("big") => {
                json!({ "metric": "big_rt_ms", "stats": library::big(&runtime, plan.big)?.to_json() })
            }
            // The idle instances in a fresh process: its threads, memory and
            // mappings are the instances'.
            Some("scale") => {
                let target = if quick { 1_000 } else { 10_000 };
                scale::idle(&runtime, target, 4 * target)?
            }
            Some("rss") => {
                let (one, per) = library::rss(&runtime, plan.instances)?;
                json!({ "one": one, "per_instance": per })
            }
            other => return Err(format!("unknown section {other:?}").into()),
        };
        println!("{line}");
        return Ok(());
    }
    // Prints the table of a results file again.
    if let Some(i) = args.iter().position(|a| a == "--table") {
        let file = args.get(i + 1).ok_or("--table needs a results file")?;
        print_table(&serde_json::from_str(&std::fs::read_to_string(file)?)?);
        return Ok(());
    }
    let out = match args.iter().position(|a| a == "--out") {
        Some(i) => PathBuf::from(args.get(i + 1).ok_or("--out needs a file")?),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("results/latest.json"),
    };
    let me = std::env::current_exe()?;
    let bin_dir = me.parent().ok_or("no directory of the executable")?.to_path_buf();
    let target = bin_dir.parent().ok_or("no target directory")?.to_path_buf();
    let quick_flag: &[&str] = if quick { &["--quick"] } else { &[] };

    let runtime = pooled()?;
    let mut mw = BTreeMap::<&str, Value>::new();
    let mut detail = BTreeMap::<String, Value>::new();
    let mut record = |name: &str, s: Stats| {
        eprintln!("  {name}: median {:.3} (p99 {:.3}, n {})", s.median, s.p99, s.n);
        detail.insert(name.to_owned(), s.to_json());
        s
    };

    eprintln!("miniworker, through the Rust library:");
    let start = record("miniworker.start_ms", library::start(&runtime, plan.start)?);
    let rtt = record("miniworker.rtt_us", library::rtt(&runtime, plan.rtt)?);
    let pinned = peers::metrics(&peers::run_lines(
        &me,
        &[&["--section", "rtt"], quick_flag].concat(),
        true,
    )?);
    let rtt_pinned = record("miniworker.rtt_us_pinned", find(&pinned, "rtt_us")?);
    let tput = record(
        "miniworker.throughput_rt_per_s",
        library::throughput(&runtime, plan.tput)?,
    );
    let big = record("miniworker.big_rt_ms", library::big(&runtime, plan.big)?);
    let terminate = record(
        "miniworker.terminate_ms",
        library::terminate(&runtime, plan.terminate)?,
    );
    let rss_line = peers::run_lines(&me, &[&["--section", "rss"], quick_flag].concat(), false)?;
    let rss: Value = serde_json::from_str(rss_line.last().ok_or("no rss output")?)?;
    eprintln!(
        "  idle worker RSS {} KiB; per instance of {}: {} KiB",
        rss["one"], plan.instances, rss["per_instance"]
    );
    mw.insert("start_ms", json!(start.median));
    mw.insert("rtt_us", json!(rtt.median));
    mw.insert("rtt_us_pinned", json!(rtt_pinned.median));
    mw.insert("rtt_p99_us_pinned", json!(rtt_pinned.p99));
    mw.insert("throughput_rt_per_s", json!(tput.median));
    mw.insert("big_rt_ms", json!(big.median));
    mw.insert("idle_worker_rss_kib", rss["one"].clone());
    mw.insert(
        if quick {
            "rss_per_instance_kib_100"
        } else {
            "rss_per_instance_kib_1000"
        },
        rss["per_instance"].clone(),
    );
    mw.insert("terminate_ms_p50", json!(terminate.median));
    mw.insert("terminate_ms_p99", json!(terminate.p99));

    eprintln!("miniworker, from app.js (the JavaScript main thread):");
    let app = app_js(&bin_dir, &target, quick)?;
    for (name, s) in &app {
        record(&format!("miniworker_app_js.{name}"), *s);
    }

    let runs = if quick { 2 } else { 10 };
    let scripts_dir = library::project_dir().join("workers/compute");
    let mut compute = BTreeMap::<&str, BTreeMap<&str, f64>>::new();
    let mut checksums = BTreeMap::<&str, Vec<String>>::new();
    let mut engines: Vec<(&str, Box<ComputeRun>)> = vec![
        (
            "miniworker",
            Box::new(|s: &str| library::compute_once(&runtime, s)),
        ),
        ("native_quickjs_ng", {
            let (exe, dir) = (bin_dir.join("qjs_ng"), scripts_dir.clone());
            Box::new(move |s: &str| peers::compute_once(&exe, &dir.join(format!("{s}.js"))))
        }),
    ];
    let harness = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../guest/target/wasm32-wasip2/release/examples/run_script.wasm");
    if harness.is_file() {
        let (runner, dir) = (bin_dir.join("guest_command"), scripts_dir.clone());
        engines.push((
            "wasm_epochs_off",
            Box::new(move |s: &str| {
                peers::compute_in_wasm_without_epochs(&runner, &harness, &dir.join(format!("{s}.js")))
            }),
        ));
    } else {
        eprintln!("(no guest run_script harness: `make bench` builds it; no epochs-off column)");
    }
    match peers::qjs(&target) {
        Some(qjs) => engines.push(("native_qjs", {
            let dir = scripts_dir.clone();
            Box::new(move |s: &str| peers::compute_once(&qjs, &dir.join(format!("{s}.js"))))
        })),
        None => eprintln!("(no Debian-source qjs: set QJS or run `make bench`, which builds it)"),
    }
    let node = peers::node();
    if let Some(node) = node.clone() {
        engines.push(("node", {
            let dir = scripts_dir.clone();
            Box::new(move |s: &str| peers::compute_once(&node, &dir.join(format!("{s}.js"))))
        }));
    }
    eprintln!("compute workloads ({runs} runs each):");
    for (key, script) in SCRIPTS {
        for (engine, run) in &engines {
            let mut ms = Vec::new();
            for _ in 0..runs {
                let (t, checksum) = run(script)?;
                ms.push(t);
                checksums.entry(key).or_default().push(checksum);
            }
            let s = record(&format!("{engine}.compute_ms.{key}"), Stats::of(ms));
            compute.entry(engine).or_default().insert(key, s.median);
        }
    }
    for (key, sums) in &checksums {
        if sums.windows(2).any(|w| w[0] != w[1]) {
            return Err(format!("{key}: the engines disagree on the checksum: {sums:?}").into());
        }
    }

    let mut results = json!({
        "date": today(),
        "machine": machine(),
        "quick": quick,
        "miniworker": mw,
        "native_quickjs_ng": { "compute_ms": compute.get("native_quickjs_ng") },
        "native_qjs": { "compute_ms": compute.get("native_qjs") },
        // The same scripts in the same guest build, without the host protocol,
        // epoch interruption off: what the epoch checks cost.
        "miniworker_epochs_off": { "compute_ms": compute.get("wasm_epochs_off") },
        "miniworker_app_js": app.iter().map(|(k, s)| (k.clone(), json!(s.median))).collect::<BTreeMap<_, _>>(),
    });
    results["miniworker"]["compute_ms"] = json!(compute.get("miniworker"));
    if let Some(node) = &node {
        eprintln!("Node.js worker_threads:");
        let peer = Path::new(env!("CARGO_MANIFEST_DIR")).join("node/peer.js");
        let peer = peer.to_str().ok_or("path")?;
        let lines = peers::run_lines(node, &[&[peer], quick_flag].concat(), false)?;
        let unpinned = peers::metrics(&lines);
        let pinned = peers::metrics(&peers::run_lines(
            node,
            &[&[peer, "--only=rtt"], quick_flag].concat(),
            true,
        )?);
        let rss = peers::metrics(&peers::run_lines(node, &["--expose-gc", peer, "--rss"], false)?);
        let mut n = BTreeMap::<&str, Value>::new();
        for (name, s) in &unpinned {
            record(&format!("node.{name}"), *s);
        }
        let rtt_pinned = record("node.rtt_us_pinned", find(&pinned, "rtt_us")?);
        n.insert("start_ms", json!(find(&unpinned, "start_ms")?.median));
        n.insert("rtt_us", json!(find(&unpinned, "rtt_us")?.median));
        n.insert("rtt_us_pinned", json!(rtt_pinned.median));
        n.insert("rtt_p99_us_pinned", json!(rtt_pinned.p99));
        n.insert(
            "throughput_rt_per_s",
            json!(find(&unpinned, "throughput_rt_per_s")?.median),
        );
        n.insert("big_rt_ms", json!(find(&unpinned, "big_rt_ms")?.median));
        n.insert("typed_rt_ms", json!(find(&unpinned, "typed_rt_ms")?.median));
        n.insert(
            "idle_worker_rss_kib",
            json!(find(&rss, "idle_worker_rss_kib")?.median),
        );
        n.insert("compute_ms", json!(compute.get("node")));
        results["node"] = json!(n);
    }
    eprintln!("scale:");
    let idle_line = peers::run_lines(&me, &[&["--section", "scale"], quick_flag].concat(), false)?;
    let idle: Value = serde_json::from_str(idle_line.last().ok_or("no scale output")?)?;
    let (instances, round_trips) = if quick { (100, 20) } else { (1_000, 100) };
    // 1,000 instances at once: more than the pool's slots, so the default allocator.
    let active = scale::active(&Runtime::new()?, instances, round_trips)?;
    let timers = scale::timers(&runtime)?;
    let at = &idle["at_target"];
    results["scale"] = json!({
        "idle_10k_rss_mib": at["rss_mib"],
        "idle_10k_pss_mib": at["pss_mib"],
        "idle_10k_os_threads": at["os_threads"],
        "idle_10k_mappings": at["mappings"],
        "max_instances_one_process": idle["max_instances"],
        "active_1k_throughput_ratio": active["ratio"],
        "active_1k_rtt_p99_us": active["active_rtt_p99_us"],
        "timers_pending_5k_ratio": timers["ratio"],
    });
    detail.insert("scale.idle".into(), idle);
    detail.insert("scale.active".into(), active);
    detail.insert("scale.timers".into(), timers);
    results["detail"] = json!(detail);
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&results)? + "\n")?;
    print_table(&results);
    eprintln!("wrote {}", out.display());
    Ok(())
}

fn find(metrics: &[(String, Stats)], name: &str) -> Result<Stats> {
    metrics
        .iter()
        .find(|(m, _)| m == name)
        .map(|(_, s)| *s)
        .ok_or_else(|| format!("no {name} in the output").into())
}

/// Runs bench/project's app.js (a copy with settings.js) under the
/// miniworker binary, with the queue limits raised for the throughput run;
/// then its round trip alone pinned to one CPU (`rtt_us_pinned`).
fn app_js(bin_dir: &Path, target: &Path, quick: bool) -> Result<Vec<(String, Stats)>> {
    let run = |only: &str, pinned: bool| -> Result<Vec<(String, Stats)>> {
        let dir = target.join("bench/project");
        let _ = std::fs::remove_dir_all(&dir);
        copy_dir(&library::project_dir(), &dir)?;
        std::fs::write(
            dir.join("settings.js"),
            format!("module.exports = {{ quick: {quick}, only: {only:?} }}\n"),
        )?;
        let lines = peers::run_lines(
            &bin_dir.join("miniworker"),
            &[
                "run",
                "--max-queue",
                "1000000",
                "--max-queue-bytes",
                "1073741824",
                dir.to_str().ok_or("path")?,
            ],
            pinned,
        )?;
        Ok(peers::metrics(&lines))
    };
    let mut metrics = run("", false)?;
    let pinned = run("rtt", true)?;
    metrics.push(("rtt_us_pinned".into(), find(&pinned, "rtt_us")?));
    Ok(metrics)
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()))?;
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

fn today() -> String {
    std::process::Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%dT%H:%M:%SZ")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    format!("{cores} x {cpu}")
}

fn print_table(r: &Value) {
    let m = &r["miniworker"];
    let n = &r["node"];
    let ratio = |a: &Value, b: &Value| match (a.as_f64(), b.as_f64()) {
        (Some(a), Some(b)) if b != 0.0 => format!("{:.2}x", a / b),
        _ => "-".into(),
    };
    let cell = |v: &Value| v.as_f64().map_or("-".into(), |f| format!("{f:.3}"));
    println!("\n| metric | miniworker | node | miniworker / node |");
    println!("| --- | ---: | ---: | ---: |");
    for (key, label) in [
        ("start_ms", "createWorker -> first message (ms)"),
        ("rtt_us", "round trip, ~100 B (us)"),
        ("rtt_us_pinned", "round trip, pinned to 1 CPU (us)"),
        ("rtt_p99_us_pinned", "round trip p99, pinned (us)"),
        ("throughput_rt_per_s", "throughput (round trips/s)"),
        ("big_rt_ms", "1 MB round trip (ms)"),
        ("idle_worker_rss_kib", "RSS of one idle worker (KiB)"),
    ] {
        println!(
            "| {label} | {} | {} | {} |",
            cell(&m[key]),
            cell(&n[key]),
            ratio(&m[key], &n[key])
        );
    }
    for key in [
        "rss_per_instance_kib_1000",
        "rss_per_instance_kib_100",
        "terminate_ms_p50",
        "terminate_ms_p99",
    ] {
        if !m[key].is_null() {
            println!("| {key} | {} | - | - |", cell(&m[key]));
        }
    }
    println!(
        "\n| compute (ms, in-script) | miniworker | epochs off | native quickjs-ng | Debian qjs | node | miniworker / quickjs-ng | epochs off / quickjs-ng |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (key, _) in SCRIPTS {
        let get = |who: &str| r[who]["compute_ms"][key].clone();
        println!(
            "| {key} | {} | {} | {} | {} | {} | {} | {} |",
            cell(&get("miniworker")),
            cell(&get("miniworker_epochs_off")),
            cell(&get("native_quickjs_ng")),
            cell(&get("native_qjs")),
            cell(&get("node")),
            ratio(&get("miniworker"), &get("native_quickjs_ng")),
            ratio(&get("miniworker_epochs_off"), &get("native_quickjs_ng"))
        );
    }
    let a = &r["miniworker_app_js"];
    println!(
        "\n| from app.js (the JavaScript main thread) | miniworker | node | miniworker / node | target |"
    );
    println!("| --- | ---: | ---: | ---: | --- |");
    for (key, target) in [
        ("start_ms", "<= 0.2 ms"),
        ("rtt_us", "<= 0.5x"),
        ("rtt_us_pinned", "<= 1.0x"),
        ("throughput_rt_per_s", ">= 0.5x"),
        ("big_rt_ms", "<= 1.0x"),
        ("typed_rt_ms", "<= 1.0x"),
    ] {
        println!(
            "| {key} | {} | {} | {} | {target} |",
            cell(&a[key]),
            cell(&n[key]),
            ratio(&a[key], &n[key])
        );
    }
    let s = &r["scale"];
    if s.is_object() {
        println!("\n| scale (issue 15) | miniworker | target |");
        println!("| --- | ---: | --- |");
        for (key, target) in [
            ("idle_10k_rss_mib", "< 4096"),
            ("idle_10k_pss_mib", "reported"),
            ("idle_10k_os_threads", "<= 64"),
            ("idle_10k_mappings", "< 30000"),
            ("max_instances_one_process", "reported"),
            ("active_1k_throughput_ratio", ">= 0.8"),
            ("active_1k_rtt_p99_us", "reported"),
            ("timers_pending_5k_ratio", "<= 2"),
        ] {
            println!("| {key} | {} | {target} |", cell(&s[key]));
        }
    }
}
