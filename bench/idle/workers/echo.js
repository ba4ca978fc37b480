worker.onMessage(function (msg) {
  worker.postMessage(msg)
})
