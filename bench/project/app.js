// miniworker's JavaScript main thread running the benchmark definitions
// (bench/project/measure.js). The bench copies this project and writes
// settings.js ({ quick }) beside it.
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

measure.run(host, settings.quick, function (metric, stats) {
  console.log(JSON.stringify({ metric: metric, stats: stats }))
}).catch(function (e) {
  console.error('benchmark failed: ' + e + '\n' + e.stack)
})
