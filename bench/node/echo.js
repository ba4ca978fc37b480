'use strict';
// The benchmark worker for Node (same body as bench/project/workers/echo.js),
// over worker_threads' parentPort.
const { parentPort } = require('worker_threads');
const worker = {
  onMessage(cb) { parentPort.on('message', cb); },
  postMessage(msg) { parentPort.postMessage(msg); },
};
worker.onMessage(function (msg) {
  msg.echo = true;
  worker.postMessage(msg);
});
worker.postMessage({ kind: 'ready' });
