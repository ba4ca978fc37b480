// The main-thread role: App, getApp and the `wx` object of app.js.
(function (native, common) {
  'use strict';
  const global = globalThis;
  // Saved before any project code runs (see js/common.js).
  const apply = Reflect.apply;
  const hasOwn = Object.prototype.hasOwnProperty;
  const define = (name, value) =>
    Object.defineProperty(global, name, { value, writable: true, configurable: true });

  // ---- App ------------------------------------------------------------------

  let app;
  let registered = false;
  define('App', function App(options) {
    if (registered) throw new Error('App() may be called only once');
    if (options !== undefined && (options === null || typeof options !== 'object')) {
      throw new TypeError('App() expects an object');
    }
    registered = true;
    app = options === undefined ? {} : options;
  });
  define('getApp', function getApp() {
    return app;
  });

  // App({ onError(msg) }) sees every uncaught main-thread error.
  common.onUncaughtError(function (d, e) {
    if (app && typeof app.onError === 'function') {
      const text = e instanceof Error ? (d.name ? d.name + ': ' : '') + d.message + (d.stack ? '\n' + d.stack : '') : d.message;
      apply(app.onError, app, [text]);
    }
  });

  // ---- Worker objects -------------------------------------------------------

  const workers = new Map(); // id -> record, for workers whose events still matter
  // The record of the worker created last, while it is live (terminate and
  // its kill clear it). An older record may still be 'live' until the news
  // of its kill arrives: it is found in `workers`.
  let current = null;

  function expectFunction(method, cb) {
    if (typeof cb !== 'function') {
      throw new TypeError('Worker.' + method + ' expects a function');
    }
  }

  function makeWorker(id) {
    const rec = { id, message: [], error: [], killed: [], state: 'live', reason: '' };
    const w = {
      postMessage(message) {
        // `current` is live: only another record's state is compared (no
        // string compared per message on the usual path).
        if (rec !== current) {
          if (rec.state === 'terminated') throw new Error('worker was terminated');
          if (rec.state === 'killed') throw new Error('worker was killed: ' + rec.reason);
        }
        native.postToWorker(id, message);
      },
      onMessage(callback) {
        expectFunction('onMessage', callback);
        rec.message.push(callback);
        listeningChanged();
      },
      onError(callback) {
        expectFunction('onError', callback);
        rec.error.push(callback);
      },
      onProcessKilled(callback) {
        expectFunction('onProcessKilled', callback);
        rec.killed.push(callback);
      },
      terminate() {
        if (rec.state === 'live') {
          rec.state = 'terminated';
          workers.delete(id);
          if (current === rec) current = null;
          listeningChanged();
          native.terminateWorker(id);
        }
        return undefined;
      },
    };
    workers.set(id, rec);
    current = rec;
    listeningChanged();
    return w;
  }

  // Incoming messages have a listener: the live worker's onMessage.
  function listeningChanged() {
    common.setListening(current !== null && current.message.length > 0);
  }

  // Listeners added by a listener wait for the next event.
  function callEach(callbacks, value) {
    const count = callbacks.length;
    for (let i = 0; i < count; i++) {
      // A plain call (`this` undefined, as `.call(undefined, ...)` gave):
      // no lookup of Function.prototype.call, which project code can replace.
      const callback = callbacks[i];
      try {
        callback(value);
      } catch (e) {
        common.reportError(e);
      }
    }
  }

  // ---- wx -------------------------------------------------------------------

  const SUPPORTED = new Set([
    'createWorker',
    'createWorker.object.useExperimentalWorker',
    'Worker',
    'Worker.postMessage',
    'Worker.onMessage',
    'Worker.onError',
    'Worker.onProcessKilled',
    'Worker.terminate',
    'preDownloadSubpackage',
    'canIUse',
  ]);

  const wxTarget = {
    createWorker(scriptPath, options) {
      if (typeof scriptPath !== 'string') {
        throw new TypeError('createWorker: the script path must be a string');
      }
      if (options !== undefined && options !== null && typeof options === 'object' &&
          'useExperimentalWorker' in options && typeof options.useExperimentalWorker !== 'boolean') {
        throw new TypeError('createWorker: options.useExperimentalWorker must be a boolean');
      }
      return makeWorker(native.createWorker(scriptPath));
    },
    canIUse(name) {
      return SUPPORTED.has(String(name).replace(/^wx\./, ''));
    },
    preDownloadSubpackage(options) {
      const o = options || {};
      const ok = o.packageType === 'workers';
      const res = ok
        ? { errMsg: 'preDownloadSubpackage:ok' }
        : { errMsg: 'preDownloadSubpackage:fail only packageType "workers" is supported' };
      Promise.resolve().then(() => {
        if (ok && typeof o.success === 'function') o.success(res);
        if (!ok && typeof o.fail === 'function') o.fail(res);
        if (typeof o.complete === 'function') o.complete(res);
      });
      return { onProgressUpdate() {} };
    },
  };

  const wx = new Proxy(wxTarget, {
    get(target, key) {
      if (typeof key === 'symbol' || apply(hasOwn, target, [key])) return target[key];
      return function unsupported() {
        throw new TypeError('wx.' + key + ' is not supported by this host');
      };
    },
    has(target, key) {
      return apply(hasOwn, target, [key]);
    },
    set() {
      return false;
    },
    defineProperty() {
      return false;
    },
    deleteProperty() {
      return false;
    },
  });
  define('wx', wx);

  const LAUNCH_OPTIONS = () => ({ path: '', query: {}, scene: 1001, referrerInfo: {} });

  return {
    deliverMessage(id, data) {
      // The message path (docs/BENCHMARKS.md): `current` (nearly every
      // message's record, live) without the map's lookup or a state
      // compared, and one listener (the usual case) called here, without
      // callEach's call and loop.
      let rec = current;
      if (rec === null || rec.id !== id) {
        rec = workers.get(id);
        if (rec === undefined || rec.state !== 'live') return;
      }
      const callbacks = rec.message;
      if (callbacks.length !== 1) {
        callEach(callbacks, data);
        return;
      }
      // A plain call, `this` undefined (as in callEach).
      const callback = callbacks[0];
      try {
        callback(data);
      } catch (e) {
        common.reportError(e);
      }
    },
    deliverError(id, error) {
      const rec = workers.get(id);
      if (rec === undefined || rec.state !== 'live') return;
      const res = { message: error.message, stack: error.stack, filename: error.filename, lineno: error.lineno };
      if (rec.error.length === 0) native.unhandledWorkerError(id, error);
      else callEach(rec.error, res);
    },
    deliverKill(id, reason, message) {
      const rec = workers.get(id);
      if (rec === undefined || rec.state !== 'live') return;
      rec.state = 'killed';
      rec.reason = reason;
      workers.delete(id);
      if (current === rec) current = null;
      listeningChanged();
      callEach(rec.killed, { reason, message });
    },
    callApp(hook) {
      if (app && typeof app[hook] === 'function') apply(app[hook], app, [LAUNCH_OPTIONS()]);
    },
  };
});
