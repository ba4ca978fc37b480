// In the Worker thread execution context, a worker object is globally exposed.
// You can directly call worker.onMessage/postMessage.
worker.onMessage(function (res) {
  console.log(res)
  worker.postMessage({
    msg: 'hello main',
    echo: res.msg,
  })
})
