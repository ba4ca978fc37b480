// An idle mini-program for the scale bench (bench/src/scale.rs): app.js
// starts its worker, hears one echo, says "up", then waits an hour on a
// timer; the worker waits for messages.
const worker = wx.createWorker('workers/echo.js')
worker.onMessage(function () {
  console.log('up')
})
worker.postMessage(1)
setTimeout(function () {}, 3600 * 1000)
