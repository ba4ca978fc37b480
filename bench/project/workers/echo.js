// The benchmark worker (same body as bench/node/echo.js): posts
// { kind: 'ready' } once evaluated, and echoes every message with echo: true.
worker.onMessage(function (msg) {
  msg.echo = true
  worker.postMessage(msg)
})
worker.postMessage({ kind: 'ready' })
