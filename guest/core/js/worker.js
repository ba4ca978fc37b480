// The worker role: the `worker` global of a mini-program Worker.
(function (native, common) {
  'use strict';
  const listeners = [];

  function expectFunction(method, cb) {
    if (typeof cb !== 'function') {
      throw new TypeError('worker.' + method + ' expects a function');
    }
  }

  const worker = {
    onMessage(callback) {
      expectFunction('onMessage', callback);
      listeners.push(callback);
      common.setListening(true);
    },
    postMessage(message) {
      native.postMessage(message);
    },
    testOnProcessKilled() {
      native.testKill();
    },
    getCameraFrameData() {
      throw new Error('worker.getCameraFrameData is not supported by this host');
    },
  };
  Object.defineProperty(globalThis, 'worker', { value: worker, writable: true, configurable: true });

  return {
    deliverMessage(message) {
      // Listeners added by a listener wait for the next message.
      const count = listeners.length;
      for (let i = 0; i < count; i++) {
        // A plain call (`this` undefined, as `.call(undefined, ...)` gave):
        // no lookup of Function.prototype.call, which project code can replace.
        const listener = listeners[i];
        try {
          listener(message);
        } catch (e) {
          common.reportError(e);
        }
      }
    },
  };
});
