// A host for the worker component under Node.js, written against the WIT
// imports of wit/ (miniworker:sandbox/context and worker-host): what another
// host has to give the component. jco transpiles the component with this
// module mapped to those imports; WASI comes from jco's preview2-shim.
export const events = [];

export const context = {
  console(level, args) {
    events.push({ type: 'console', level, args });
  },
  uncaughtError(error) {
    events.push({ type: 'error', message: error.message, filename: error.filename, lineno: error.lineno });
  },
  beginTurn() {},
  // The payload of an ArrayBuffer of 64 KiB or more in the next message
  // (docs/codec.md, ARRAY_BUFFER_OUT); this test's messages have none.
  postOutside(payload) {
    events.push({ type: 'outside', bytes: payload.length });
  },
  // This host serves no module files: every require is refused, with the
  // message a worker expects (a WIT result error is a thrown value in jco).
  resolveModule(from, request) {
    throw `module '${request}' is not defined, require args is '${request}'`;
  },
  loadModule(filename) {
    throw `cannot load ${filename}`;
  },
};

export const workerHost = {
  postMessage(data) {
    events.push({ type: 'message', data: Uint8Array.from(data) });
  },
  testKill() {
    throw new Error('the worker asked to be killed (test)');
  },
};
