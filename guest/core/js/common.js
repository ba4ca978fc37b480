// The part of every context's setup written in JavaScript: modules, console,
// timers, queueMicrotask and error description. Evaluated once, before any project
// code, as a function of the host natives, so that nothing but the globals
// it defines is visible to project code.
(function (native) {
  'use strict';
  const global = globalThis;
  // Built-ins saved before any project code runs: a project that replaces
  // Function.prototype.call or .apply (or these) changes nothing here.
  const apply = Reflect.apply;
  const objectToString = Object.prototype.toString;
  const arrayMap = Array.prototype.map;
  const arrayJoin = Array.prototype.join;

  // Error.prepareStackTrace (a V8 extension QuickJS-ng has) would hand project
  // code each frame's function through CallSite.getFunction(), the preludes'
  // closures included (docs/spec.md section 3): it is removed before any project code
  // runs, so a stack is always a string and no frame's function is reachable.
  delete Error.prepareStackTrace;

  // ---- modules (docs/spec.md section 3) ---------------------------------------------

  // Every project file run so far, by project-relative name: { module } for
  // CommonJS, { esm: true } for an ES module (QuickJS keeps those itself).
  const modules = new Map();

  function dirnameOf(filename) {
    return filename.slice(0, filename.lastIndexOf('/')) || '/';
  }

  // The record of a file, run first if it is new: { module } or { esm: true }.
  function record(filename) {
    const known = modules.get(filename);
    if (known) return known;
    const compiled = native.loadModule(filename);
    if (compiled === null) {
      const esm = { esm: true };
      modules.set(filename, esm);
      return esm;
    }
    runCommonJs(compiled, filename);
    return modules.get(filename);
  }

  function requireFile(filename) {
    const r = record(filename);
    return r.esm ? native.esmNamespace(filename) : r.module.exports;
  }

  function makeRequire(from) {
    return function require(request) {
      return requireFile(native.resolveModule(from, String(request)));
    };
  }

  // Runs a compiled CommonJS wrapper once; a module that throws is forgotten,
  // as in Node, so a later require runs it again.
  function runCommonJs(fn, filename) {
    const module = { exports: {}, id: filename, filename, loaded: false };
    modules.set(filename, { module });
    try {
      apply(fn, module.exports, [module.exports, makeRequire(filename), module, filename, dirnameOf(filename)]);
    } catch (e) {
      modules.delete(filename);
      throw e;
    }
    module.loaded = true;
    return module.exports;
  }

  // For the module loader: { exports } of a CommonJS file (run now if need
  // be), or undefined for an ES module.
  function importFile(filename) {
    const r = record(filename);
    return r.esm ? undefined : { exports: r.module.exports };
  }

  // The global require (ES modules have no wrapper): relative to its caller.
  Object.defineProperty(global, 'require', {
    value: function require(request) {
      return requireFile(native.resolveModule(native.callerFile() || '/', String(request)));
    },
    writable: true,
    configurable: true,
  });

  // ---- errors ---------------------------------------------------------------

  // The first "path:line" of a QuickJS stack frame: "    at f (/workers/a.js:3:9)".
  const FRAME = /\((\/[^()]*?):(\d+)(?::\d+)?\)|at (\/[^\s()]*?):(\d+)(?::\d+)?$/m;

  // A stack without the frames of miniworker's own preludes (and the native
  // calls that led into them): only project code is the project's business.
  function projectFrames(stack) {
    const lines = stack.split('\n').filter((line) => line.indexOf('(<miniworker:') < 0);
    while (lines.length && /^\s*(at \S+ \(native\))?\s*$/.test(lines[lines.length - 1])) lines.pop();
    return lines.join('\n') + '\n';
  }

  function describeError(e) {
    let message;
    let stack = '';
    let filename = '';
    let lineno = 0;
    if (e instanceof Error) {
      message = String(e.message);
      stack = typeof e.stack === 'string' ? projectFrames(e.stack) : '';
      const m = FRAME.exec(stack);
      if (m) {
        filename = m[1] || m[3];
        lineno = Number(m[2] || m[4]);
      }
      if (typeof e.fileName === 'string' && e.fileName && !filename) {
        filename = e.fileName;
        lineno = Number(e.lineNumber) || 0;
      }
    } else {
      try {
        message = String(e);
      } catch (_) {
        message = apply(objectToString, e, []);
      }
    }
    return { message, stack, filename, lineno, name: e instanceof Error ? String(e.name) : '' };
  }

  const errorObservers = [];

  // Reports an exception no JavaScript code caught: the role's observers first
  // (App.onError), then the host.
  function reportError(e) {
    const d = describeError(e);
    for (const observer of errorObservers) {
      try {
        observer(d, e);
      } catch (inner) {
        native.uncaughtError(describeError(inner));
      }
    }
    native.uncaughtError(d);
  }

  // ---- console --------------------------------------------------------------

  const MAX_DEPTH = 4;

  function quote(s) {
    return JSON.stringify(s);
  }

  // A readable, JSON-like rendering of one console argument (strings at the
  // top level are printed as they are). Depth-limited, so never deep recursion.
  function inspect(v, depth, seen) {
    switch (typeof v) {
      case 'string':
        return depth === 0 ? v : quote(v);
      case 'number':
        return Object.is(v, -0) ? '-0' : String(v);
      case 'bigint':
        return String(v) + 'n';
      case 'undefined':
        return 'undefined';
      case 'boolean':
        return String(v);
      case 'symbol':
        return v.toString();
      case 'function':
        return v.name ? '[Function: ' + v.name + ']' : '[Function (anonymous)]';
    }
    if (v === null) return 'null';
    if (seen.includes(v)) return '[Circular]';
    if (v instanceof Error) {
      const head = String(v.name) + ': ' + String(v.message);
      return typeof v.stack === 'string' && v.stack ? head + '\n' + v.stack.replace(/\n$/, '') : head;
    }
    if (v instanceof Date) return isNaN(v) ? 'Invalid Date' : v.toISOString();
    if (v instanceof RegExp) return String(v);
    if (depth >= MAX_DEPTH) return Array.isArray(v) ? '[Array]' : '[Object]';
    seen.push(v);
    try {
      if (Array.isArray(v)) {
        return '[' + apply(arrayMap, v, [(x) => inspect(x, depth + 1, seen)]).join(',') + ']';
      }
      if (v instanceof Map) {
        const parts = [];
        v.forEach((val, key) => parts.push(inspect(key, depth + 1, seen) + ' => ' + inspect(val, depth + 1, seen)));
        return 'Map(' + v.size + ') {' + parts.join(',') + '}';
      }
      if (v instanceof Set) {
        const parts = [];
        v.forEach((val) => parts.push(inspect(val, depth + 1, seen)));
        return 'Set(' + v.size + ') {' + parts.join(',') + '}';
      }
      if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
        return v.constructor.name + '(' + v.length + ') [' + apply(arrayJoin, v, [',']) + ']';
      }
      const parts = [];
      for (const key of Object.keys(v)) {
        parts.push(quote(key) + ':' + inspect(v[key], depth + 1, seen));
      }
      return '{' + parts.join(',') + '}';
    } finally {
      seen.pop();
    }
  }

  // Each argument of a console call, formatted (the host joins them).
  function format(args) {
    const out = [];
    for (let i = 0; i < args.length; i++) {
      try {
        out.push(inspect(args[i], 0, []));
      } catch (e) {
        out.push('[uninspectable]');
      }
    }
    return out;
  }

  const LEVELS = ['log', 'info', 'warn', 'error', 'debug'];
  const console = {};
  LEVELS.forEach((name, level) => {
    console[name] = function () {
      native.console(level, format(arguments));
    };
  });
  Object.defineProperty(global, 'console', { value: console, writable: true, configurable: true });

  // performance.now(): milliseconds on the context's monotonic clock, which
  // starts with the context (timeOrigin: the wall-clock time it started).
  const performance = {
    now() {
      return native.now();
    },
    timeOrigin: 0,
  };
  Object.defineProperty(global, 'performance', { value: performance, writable: true, configurable: true });

  // ---- timers ---------------------------------------------------------------

  // Timers are due at a time of the context's monotonic clock (native.now(),
  // milliseconds). The host asks for the delay to the earliest one after each
  // turn and calls runTimer() when it is due, so a sleeping context runs nothing.
  // `timers` holds the live ones by id. Their [due, order, id] entries are in
  // one of two structures: `queue`, a list in (due, order) order that takes
  // a timer due no earlier than its last entry in O(1) (chains of
  // setTimeout(f, 0), equal delays), or else `heap`, a binary min-heap
  // (O(log n)); the earliest timer is the first of their two heads. An
  // entry whose timer was cleared or rescheduled is stale (its order no
  // longer matches) and is dropped when it reaches a head.
  const timers = new Map();
  const heap = [];
  const queue = [];
  let queueHead = 0;
  let nextId = 1;
  let order = 0;
  let maxTimers = 10000;

  const before = (a, b) => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);

  function heapPush(entry) {
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i], heap[parent])) break;
      const t = heap[i];
      heap[i] = heap[parent];
      heap[parent] = t;
      i = parent;
    }
  }

  function heapPop() {
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let min = i;
        if (l < heap.length && before(heap[l], heap[min])) min = l;
        if (r < heap.length && before(heap[r], heap[min])) min = r;
        if (min === i) break;
        const t = heap[i];
        heap[i] = heap[min];
        heap[min] = t;
        i = min;
      }
    }
    return top;
  }

  function place(entry) {
    if (queueHead === queue.length || !before(entry, queue[queue.length - 1])) queue.push(entry);
    else heapPush(entry);
  }

  function schedule(id, timer) {
    place([timer.due, timer.order, id]);
    // Stale entries never outnumber live timers by much: rebuild past that.
    if (heap.length + queue.length - queueHead > 2 * timers.size + 64) {
      heap.length = 0;
      queue.length = 0;
      queueHead = 0;
      const live = [];
      for (const [liveId, t] of timers) live.push([t.due, t.order, liveId]);
      live.sort((a, b) => (before(a, b) ? -1 : 1));
      for (const entry of live) place(entry);
    }
  }

  // The timer of `entry`, unless the entry is stale.
  function liveTimer(entry) {
    const timer = timers.get(entry[2]);
    return timer !== undefined && timer.order === entry[1] ? timer : undefined;
  }

  // Removes the earliest entry (`fromQueue`: the queue's head, else the heap's).
  function takeEarliest(fromQueue) {
    if (!fromQueue) return heapPop();
    queueHead++;
    if (queueHead === queue.length) {
      queue.length = 0;
      queueHead = 0;
    } else if (queueHead > 1024 && 2 * queueHead > queue.length) {
      queue.splice(0, queueHead);
      queueHead = 0;
    }
  }

  // What the host reads after every call, without calling in (context.rs,
  // `TurnState`): [0] when the earliest timer is due (`native.now()`'s
  // clock, ms), -1 with none; [1] 1 while the role listens for messages.
  // Written where they change.
  const turnState = new Float64Array(2);
  turnState[0] = -1;
  function timersChanged() {
    const next = earliest();
    turnState[0] = next === null ? -1 : next.timer.due;
  }

  function addTimer(callback, delay, args, repeat) {
    if (typeof callback !== 'function') {
      throw new TypeError('the timer callback must be a function');
    }
    delay = Number(delay);
    if (!(delay >= 0)) delay = 0;
    if (repeat && delay < 1) delay = 1;
    if (timers.size >= maxTimers) {
      throw new RangeError('too many timers: the limit is ' + maxTimers + ' live timers');
    }
    const id = nextId++;
    const timer = { callback, args, delay: repeat ? delay : -1, due: native.now() + delay, order: order++ };
    timers.set(id, timer);
    schedule(id, timer);
    // A new timer can only make the earliest one earlier.
    if (turnState[0] < 0 || timer.due < turnState[0]) turnState[0] = timer.due;
    return id;
  }

  function clearTimer(id) {
    const timer = timers.get(Number(id));
    if (timer === undefined) return;
    timers.delete(Number(id));
    // Only a timer that may be the earliest changes the earliest.
    if (timer.due <= turnState[0]) timersChanged();
  }

  function earliest() {
    while (heap.length > 0 && liveTimer(heap[0]) === undefined) heapPop();
    while (queueHead < queue.length && liveTimer(queue[queueHead]) === undefined) takeEarliest(true);
    const h = heap.length > 0 ? heap[0] : null;
    const q = queueHead < queue.length ? queue[queueHead] : null;
    const fromQueue = q !== null && (h === null || before(q, h));
    const entry = fromQueue ? q : h;
    if (entry === null) return null;
    return { id: entry[2], timer: timers.get(entry[2]), fromQueue };
  }

  const define = (name, fn) =>
    Object.defineProperty(global, name, { value: fn, writable: true, configurable: true });
  define('setTimeout', function setTimeout(callback, delay, ...args) {
    return addTimer(callback, delay, args, false);
  });
  define('setInterval', function setInterval(callback, delay, ...args) {
    return addTimer(callback, delay, args, true);
  });
  define('clearTimeout', function clearTimeout(id) {
    clearTimer(id);
  });
  define('clearInterval', function clearInterval(id) {
    clearTimer(id);
  });
  // The message codec applied in place (docs/spec.md section 3): same types, same
  // DataCloneError and size limit as postMessage.
  define('structuredClone', function structuredClone(value) {
    return native.structuredClone(value);
  });
  define('queueMicrotask', function queueMicrotask(callback) {
    if (typeof callback !== 'function') {
      throw new TypeError('queueMicrotask expects a function');
    }
    Promise.resolve().then(() => {
      try {
        callback();
      } catch (e) {
        reportError(e);
      }
    });
  });

  return {
    reportError,
    describeError,
    onUncaughtError(observer) {
      errorObservers.push(observer);
    },
    // Runs the earliest timer if it is due.
    runTimer() {
      const next = earliest();
      if (next === null || next.timer.due > native.now()) {
        timersChanged();
        return;
      }
      const { id, timer, fromQueue } = next;
      takeEarliest(fromQueue);
      if (timer.delay >= 0) {
        timer.due = Math.max(timer.due + timer.delay, native.now());
        timer.order = order++;
        schedule(id, timer);
      } else {
        timers.delete(id);
      }
      timersChanged();
      try {
        apply(timer.callback, undefined, timer.args);
      } catch (e) {
        reportError(e);
      }
    },
    turnState,
    // The role says whether incoming messages have a listener.
    setListening(on) {
      turnState[1] = on ? 1 : 0;
    },
    runCommonJs,
    importFile,
    // Called when the context starts (it may come from a build-time snapshot).
    configure(timerLimit) {
      maxTimers = timerLimit;
      performance.timeOrigin = Date.now();
    },
    // The entry file is an ES module: registered, so require() of it runs nothing twice.
    markModule(filename) {
      modules.set(filename, { esm: true });
    },
    // An ES entry module's failure arrives as a rejection; report it like a throw.
    watchEntry(promise) {
      promise.then(undefined, reportError);
    },
  };
});
