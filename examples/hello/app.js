App({
  onLaunch() {
    // The filename is the worker entry file, relative to the project root.
    const worker = wx.createWorker('workers/request/index.js')
    worker.onMessage(function (res) {
      console.log('worker says:', res)
      worker.terminate()
    })
    worker.postMessage({
      msg: 'hello worker'
    })
  }
})
