// Helpers of the message codec (src/codec.rs), over built-ins saved before any
// project code runs, so that project code cannot change how messages are
// copied. Class checks are done in Rust by QuickJS class id, never here.
(function () {
  'use strict';
  const call = Function.prototype.call.bind(Function.prototype.call);
  const apply = Reflect.apply;
  const getter = (proto, name) => Object.getOwnPropertyDescriptor(proto, name).get;
  const mapForEach = Map.prototype.forEach;
  const setForEach = Set.prototype.forEach;
  const mapSet = Map.prototype.set;
  const setAdd = Set.prototype.add;
  const regexpSource = getter(RegExp.prototype, 'source');
  const regexpFlags = getter(RegExp.prototype, 'flags');
  const TypedArray = Object.getPrototypeOf(Int8Array.prototype);
  const taBuffer = getter(TypedArray, 'buffer');
  const taOffset = getter(TypedArray, 'byteOffset');
  const taLength = getter(TypedArray, 'length');
  const dvBuffer = getter(DataView.prototype, 'buffer');
  const dvOffset = getter(DataView.prototype, 'byteOffset');
  const dvLength = getter(DataView.prototype, 'byteLength');
  const bigintToString = BigInt.prototype.toString;
  const dateGetTime = Date.prototype.getTime;
  const charCodeAt = String.prototype.charCodeAt;
  const fromCharCode = String.fromCharCode;
  const defineProperty = Object.defineProperty;
  const hasOwn = Object.hasOwn;
  const RegExpCtor = RegExp;
  const MapCtor = Map;
  const SetCtor = Set;
  const BigIntCtor = BigInt;
  const ErrorCtor = Error;
  const views = {
    Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
    Float32Array, Float64Array, BigInt64Array, BigUint64Array, DataView,
  };
  if (typeof Float16Array === 'function') views.Float16Array = Float16Array;
  const errors = { Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError };
  if (typeof AggregateError === 'function') errors.AggregateError = AggregateError;

  // One object of each class the codec tells apart, for their class ids.
  const exemplars = {
    array: [],
    map: new Map(),
    set: new Set(),
    date: new Date(0),
    regexp: /x/,
    arrayBuffer: new ArrayBuffer(0),
    sharedArrayBuffer: typeof SharedArrayBuffer === 'function' ? new SharedArrayBuffer(0) : null,
    error: new Error(),
    proxy: new Proxy({}, {}),
    promise: Promise.resolve(),
    weakMap: new WeakMap(),
    weakSet: new WeakSet(),
    weakRef: typeof WeakRef === 'function' ? new WeakRef({}) : null,
    finalizationRegistry: typeof FinalizationRegistry === 'function' ? new FinalizationRegistry(() => {}) : null,
  };
  const viewExemplars = Object.keys(views).map((name) =>
    name === 'DataView' ? new DataView(new ArrayBuffer(0)) : new views[name](0));

  return {
    exemplars,
    viewExemplars,
    viewNames: Object.keys(views),
    mapEntries(m) {
      const out = [];
      call(mapForEach, m, (v, k) => { out.push(k, v); });
      return out;
    },
    setValues(s) {
      const out = [];
      call(setForEach, s, (v) => { out.push(v); });
      return out;
    },
    regexpParts(r) {
      return [call(regexpSource, r), call(regexpFlags, r)];
    },
    // [buffer, byteOffset, length in elements (bytes for a DataView)]
    viewParts(v, isDataView) {
      return isDataView
        ? [call(dvBuffer, v), call(dvOffset, v), call(dvLength, v)]
        : [call(taBuffer, v), call(taOffset, v), call(taLength, v)];
    },
    // [negative, magnitude in hex]
    bigintParts(b) {
      return [b < 0n, call(bigintToString, b < 0n ? -b : b, 16)];
    },
    dateValue(d) {
      return call(dateGetTime, d);
    },
    // Own or inherited name, message and stack, as strings (stack may be
    // undefined), and whether it has its own `errors` (an AggregateError's).
    errorParts(e) {
      const name = e.name;
      const stack = e.stack;
      return [name === undefined ? 'Error' : String(name), e.message === undefined ? '' : String(e.message),
        typeof stack === 'string' ? stack : undefined, hasOwn(e, 'errors')];
    },
    codeUnits(s) {
      const out = new Uint16Array(s.length);
      for (let i = 0; i < s.length; i++) out[i] = call(charCodeAt, s, i);
      return out;
    },
    fromCodeUnits(units) {
      let s = '';
      for (let i = 0; i < units.length; i += 8192) {
        s += apply(fromCharCode, null, units.subarray(i, i + 8192));
      }
      return s;
    },
    makeBigInt(negative, hex) {
      const b = BigIntCtor('0x' + (hex || '0'));
      return negative ? -b : b;
    },
    makeRegExp(source, flags) {
      return new RegExpCtor(source, flags);
    },
    makeView(name, buffer, offset, length) {
      return new views[name](buffer, offset, length);
    },
    makeError(name, message, stack) {
      const Ctor = hasOwn(errors, name) ? errors[name] : ErrorCtor;
      // AggregateError takes its errors first; the decoder defines the
      // copied `errors` afterwards. The message must stay the message.
      const e = Ctor === errors.AggregateError ? new Ctor([], message) : new Ctor(message);
      if (Ctor === ErrorCtor && name !== 'Error') {
        defineProperty(e, 'name', { value: name, writable: true, configurable: true, enumerable: false });
      }
      defineProperty(e, 'stack', { value: stack === undefined ? '' : stack, writable: true, configurable: true, enumerable: false });
      return e;
    },
    makeMap() {
      return new MapCtor();
    },
    mapSet(m, k, v) {
      call(mapSet, m, k, v);
    },
    makeSet() {
      return new SetCtor();
    },
    setAdd(s, v) {
      call(setAdd, s, v);
    },
    dataCloneError(message) {
      const e = new ErrorCtor(message);
      defineProperty(e, 'name', { value: 'DataCloneError', writable: true, configurable: true, enumerable: false });
      return e;
    },
  };
})();
