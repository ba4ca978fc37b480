'use strict';
// The Node.js worker_threads peer: the same definitions as miniworker's
// (bench/project/measure.js), one JSON line per metric.
//
//   node peer.js [--quick] [--only=rtt] [--rss]
const { Worker } = require('worker_threads');
const { performance } = require('perf_hooks');
const path = require('path');
const measure = require('../project/measure.js');

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const emit = (metric, stats) => console.log(JSON.stringify({ metric, stats }));

const host = {
  now: () => performance.now(),
  start() {
    const worker = new Worker(path.join(__dirname, 'echo.js'));
    const w = {
      onMessage: null,
      post: (m) => worker.postMessage(m),
      terminate: () => worker.terminate(),
    };
    w.ready = new Promise((resolve) => { w.onMessage = resolve; });
    worker.on('message', (m) => w.onMessage(m));
    return w;
  },
};

// (e) RSS added by one idle worker, in a fresh process (node --expose-gc).
async function rss() {
  const settle = async () => {
    for (let i = 0; i < 3; i++) { global.gc(); await new Promise((r) => setTimeout(r, 50)); }
  };
  await settle();
  const before = process.memoryUsage().rss;
  const w = host.start();
  await w.ready;
  await new Promise((r) => setTimeout(r, 300));
  await settle();
  emit('idle_worker_rss_kib', { median: (process.memoryUsage().rss - before) / 1024 });
  await w.terminate();
}

async function main() {
  if (args.includes('--rss')) return rss();
  if (args.includes('--only=rtt')) {
    const w = host.start();
    await w.ready;
    emit('rtt_us', await measure.rtt(host, w, measure.config(quick)));
    return w.terminate();
  }
  await measure.run(host, quick, emit);
}

main().catch((e) => { console.error(e); process.exit(1); });
