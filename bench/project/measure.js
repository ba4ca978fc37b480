// The JavaScript side of the benchmark definitions (bench/README.md), shared
// by miniworker's app.js and the Node peer (bench/node/peer.js). `host` adapts
// a runtime: start() gives { post(msg), terminate(), ready } for a fresh echo
// worker whose messages go to `onMessage` (set per measurement).
'use strict'

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
}

function stats(values) {
  const s = values.slice().sort(function (a, b) { return a - b })
  return { n: s.length, median: quantile(s, 0.5), p90: quantile(s, 0.9), p99: quantile(s, 0.99), min: s[0] }
}

function ping(i) {
  return { id: i, kind: 'ping', payload: { user: 'u-4711', seq: i, ts: 1700000000000 + i, tags: ['a', 'b'] } }
}

// The ~1 MB object: records from a fixed LCG until the JSON text reaches targetBytes.
function makeBig(targetBytes) {
  let seed = 7
  const rnd = function () { return (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) >>> 8 }
  const words = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta']
  const items = []
  let bytes = 40
  for (let i = 0; bytes < targetBytes; i++) {
    const rec = {
      id: i, name: words[rnd() & 7] + '-' + i, active: (rnd() & 1) === 1, score: (rnd() % 100000) / 100,
      tags: [words[rnd() & 7], words[rnd() & 7]], pos: { x: rnd() % 1000, y: rnd() % 1000 },
      text: 'lorem ipsum dolor sit amet ' + rnd().toString(36),
    }
    bytes += JSON.stringify(rec).length + 1
    items.push(rec)
  }
  return { kind: 'bulk', id: 1, payload: { items } }
}

// (a) start: createWorker -> first message; terminate between.
async function start(host, cfg) {
  const times = []
  for (let i = 0; i < cfg.startWarm + cfg.startN; i++) {
    const t0 = host.now()
    const w = host.start()
    await w.ready
    const dt = host.now() - t0
    await w.terminate()
    if (i >= cfg.startWarm) times.push(dt)
  }
  return stats(times)
}

// Sends `msg` and resolves with the reply.
function roundTrip(w, msg) {
  return new Promise(function (resolve) {
    w.onMessage = resolve
    w.post(msg)
  })
}

// (b) round trip of a ~100-byte object, one at a time (microseconds).
async function rtt(host, w, cfg) {
  const times = []
  for (let i = 0; i < cfg.rttWarm + cfg.rttN; i++) {
    const t0 = host.now()
    const reply = await roundTrip(w, ping(i))
    const dt = host.now() - t0
    if (reply.id !== i || reply.echo !== true) throw new Error('bad echo')
    if (i >= cfg.rttWarm) times.push(dt * 1000)
  }
  return stats(times)
}

// (c) throughput: n ticks posted back to back, each answered (round trips/s).
function tputOnce(host, w, n) {
  return new Promise(function (resolve, reject) {
    let got = 0
    const t0 = host.now()
    w.onMessage = function (m) {
      if (m.id !== got) return reject(new Error('out of order'))
      if (++got === n) resolve(n / ((host.now() - t0) / 1000))
    }
    for (let i = 0; i < n; i++) w.post({ id: i, kind: 'tick', v: i & 255 })
  })
}

async function tput(host, w, cfg) {
  await tputOnce(host, w, Math.min(20000, cfg.tputN))
  const rates = []
  for (let r = 0; r < cfg.tputReps; r++) rates.push(await tputOnce(host, w, cfg.tputN))
  return stats(rates)
}

// (d) round trip of the ~1 MB object (milliseconds).
async function big(host, w, cfg) {
  const obj = makeBig(1 << 20)
  const times = []
  for (let i = 0; i < cfg.bigWarm + cfg.bigN; i++) {
    const t0 = host.now()
    const reply = await roundTrip(w, obj)
    const dt = host.now() - t0
    if (reply.echo !== true || reply.payload.items.length !== obj.payload.items.length) throw new Error('bad echo')
    if (i >= cfg.bigWarm) times.push(dt)
  }
  return stats(times)
}

// (f) round trip of 10 MB of typed arrays: five ArrayBuffers of 2 MB, each
// seen through a Uint8Array, copied both ways (no transfer) (milliseconds).
async function typed(host, w, cfg) {
  const buffers = []
  for (let b = 0; b < 5; b++) {
    const view = new Uint8Array(2 << 20)
    for (let i = 0; i < view.length; i += 4096) view[i] = (i >> 12) + b
    buffers.push(view)
  }
  const msg = { kind: 'typed', id: 1, buffers }
  const times = []
  for (let i = 0; i < cfg.bigWarm + cfg.bigN; i++) {
    const t0 = host.now()
    const reply = await roundTrip(w, msg)
    const dt = host.now() - t0
    const last = reply.buffers && reply.buffers[4]
    if (reply.echo !== true || !(last instanceof Uint8Array) || last.length !== 2 << 20 || last[4096] !== 5) {
      throw new Error('bad echo')
    }
    if (i >= cfg.bigWarm) times.push(dt)
  }
  return stats(times)
}

function config(quick) {
  return quick
    ? { startWarm: 2, startN: 10, rttWarm: 200, rttN: 2000, tputN: 20000, tputReps: 1, bigWarm: 1, bigN: 5 }
    : { startWarm: 3, startN: 50, rttWarm: 2000, rttN: 20000, tputN: 200000, tputReps: 3, bigWarm: 3, bigN: 30 }
}

// Runs (a)-(d) and (f), reporting each result through `emit`.
async function run(host, quick, emit) {
  const cfg = config(quick)
  emit('start_ms', await start(host, cfg))
  const w = host.start()
  await w.ready
  emit('rtt_us', await rtt(host, w, cfg))
  emit('throughput_rt_per_s', await tput(host, w, cfg))
  emit('big_rt_ms', await big(host, w, cfg))
  emit('typed_rt_ms', await typed(host, w, cfg))
  await w.terminate()
}

module.exports = { run, config, rtt, makeBig, ping, stats }
