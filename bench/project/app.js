// miniworker's JavaScript main thread running the benchmark definitions
// (bench/project/measure.js). The bench copies this project and writes
// settings.js ({ quick, only }) beside it; only: 'rtt' measures the round
// trip alone (the bench runs that copy pinned to one CPU, as it runs
// Node's peer with --only=rtt).
const measure = require('./measure.js')
const settings = require('./settings.js')

const host = {
  now: function () { return performance.now() },
  start: function () {
    const worker = wx.createWorker('workers/echo.js')
    const w = {
      onMessage: null,
      post: function (m) { worker.postMessage(m) },
      terminate: function () { worker.terminate(); return Promise.resolve() },
    }
    w.ready = new Promise(function (resolve) { w.onMessage = resolve })
    worker.onMessage(function (m) { w.onMessage(m) })
    return w
  },
}

function emit(metric, stats) {
  console.log(JSON.stringify({ metric: metric, stats: stats }))
}

async function rttOnly() {
  const w = host.start()
  await w.ready
  emit('rtt_us', await measure.rtt(host, w, measure.config(settings.quick)))
  return w.terminate()
}

;(settings.only === 'rtt' ? rttOnly() : measure.run(host, settings.quick, emit)).catch(function (e) {
  console.error('benchmark failed: ' + e + '\n' + e.stack)
})
