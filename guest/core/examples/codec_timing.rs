//! Times the message codec inside the guest: encode (JS value to bytes) plus
//! decode (bytes to a new JS value) in the same QuickJS-in-wasm build the
//! components use. Built as a WASI command (`make bench-codec`) and run by
//! `bench/`'s `codec` program; prints one JSON line per object.

use std::time::Instant;

use miniworker_guest::quickjs::{self, Function, Value};
mod harness;

use miniworker_guest::{DEFAULT_MAX_MESSAGE, Level, codec};

/// The objects of the benchmark (`bench/project/measure.js`).
const OBJECTS: &str = r#"
({
  ping: { id: 1, kind: 'ping', payload: { user: 'u-4711', seq: 1, ts: 1700000001, tags: ['a', 'b'] } },
  big: (function makeBig(targetBytes) {
    let seed = 7;
    const rnd = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) >>> 8;
    const words = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta'];
    const items = [];
    let bytes = 40;
    for (let i = 0; bytes < targetBytes; i++) {
      const rec = {
        id: i, name: words[rnd() & 7] + '-' + i, active: (rnd() & 1) === 1, score: (rnd() % 100000) / 100,
        tags: [words[rnd() & 7], words[rnd() & 7]], pos: { x: rnd() % 1000, y: rnd() % 1000 },
        text: 'lorem ipsum dolor sit amet ' + rnd().toString(36),
      };
      bytes += JSON.stringify(rec).length + 1;
      items.push(rec);
    }
    return { kind: 'bulk', id: 1, payload: { items } };
  })(1 << 20),
})
"#;

struct Times {
    median: f64,
    p99: f64,
    min: f64,
}

/// Runs `f` `n` times after `n / 10` warm-up runs; microseconds per run.
fn time(n: usize, mut f: impl FnMut() -> quickjs::Result<()>) -> quickjs::Result<Times> {
    let mut times = Vec::with_capacity(n);
    for i in 0..n + n / 10 {
        let t0 = Instant::now();
        f()?;
        if i >= n / 10 {
            times.push(t0.elapsed().as_secs_f64() * 1e6);
        }
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    Ok(Times {
        median: at(0.5),
        p99: at(0.99),
        min: times[0],
    })
}

fn main() {
    let runs = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let plan = [("ping", runs("PING_RUNS", 20_000)), ("big", runs("BIG_RUNS", 30))];
    let context = harness::context(|_: Level, args: &[String]| eprintln!("{}", args.join(" ")));
    context.turn(|ctx, _, _| {
        let objects: miniworker_guest::quickjs::Object = ctx.eval(OBJECTS)?;
        let stringify: Function = ctx.eval("JSON.stringify")?;
        let parse: Function = ctx.eval("JSON.parse")?;
        for (name, n) in plan {
            let value: Value = objects.get(name)?;
            let json: String = stringify.call((value.clone(),))?;
            let mut encoded = 0;
            let codec = time(n, || {
                codec::encode(ctx, value.clone(), DEFAULT_MAX_MESSAGE, |bytes| {
                    codec::decode(ctx, bytes, Vec::new())?;
                    encoded = bytes.len();
                    Ok(())
                })
            })?;
            let encode_only = time(n, || {
                codec::encode(ctx, value.clone(), DEFAULT_MAX_MESSAGE, |_| Ok(()))
            })?;
            // The same copy through JSON text, for scale (JSON loses types).
            let via_json = time(n, || {
                let text: Value = stringify.call((value.clone(),))?;
                parse.call::<_, Value>((text,))?;
                Ok(())
            })?;
            println!(
                r#"{{"object":"{name}","runs":{n},"json_bytes":{},"encoded_bytes":{encoded},"median_us":{:.2},"p99_us":{:.2},"min_us":{:.2},"encode_median_us":{:.2},"json_roundtrip_median_us":{:.2}}}"#,
                json.len(),
                codec.median,
                codec.p99,
                codec.min,
                encode_only.median,
                via_json.median,
            );
        }
        Ok(())
    });
}
