// A typed main thread: what tsc checks against types/miniworker.d.ts.
App({
  onLaunch(options) {
    console.log('launched at scene', options.scene);
  },
  onError(message) {
    console.log('main error: ' + message.split('\n')[0]);
  },
});

if (wx.canIUse('createWorker')) {
  const w = wx.createWorker('workers/request/index.js', { useExperimentalWorker: true });
  w.onMessage((res) => console.log('worker says', res));
  w.onError((e) => console.log(e.filename + ':' + e.lineno, e.message));
  w.onProcessKilled(({ reason, message }) => console.log('killed', reason, message));
  w.postMessage({ msg: 'hello', when: new Date(), ids: new Set([1, 2]), big: 10n });
  setTimeout(() => w.terminate(), 1000);
}
const app = getApp();
console.log(typeof app.onLaunch);

// What the types refuse: tsc fails if any of these is accepted.
// @ts-expect-error wx has only the Worker API
wx.request({ url: 'https://example.com' });
// @ts-expect-error a function cannot be posted
wx.createWorker('workers/a.js').postMessage(() => 1);
// @ts-expect-error no such kill reason
const reason: MiniworkerKillReason = 'oom';
