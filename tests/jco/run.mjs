// Runs a worker in the jco-transpiled component (./out/worker.js), sends it
// two messages in the codec format (docs/codec.md) and prints what came
// back as one JSON line.
import { events } from './host.mjs';

const worker = await import('./out/worker.js');

// The part of the codec this host needs: version 1, a STRING (tag 7) of a
// varint length and UTF-8 bytes.
function encodeString(text) {
  const bytes = new TextEncoder().encode(text);
  const out = [1, 7];
  let n = bytes.length;
  do {
    out.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
    n >>>= 7;
  } while (n > 0);
  return new Uint8Array([...out, ...bytes]);
}

function decodeString(data) {
  if (data[0] !== 1 || data[1] !== 7) throw new Error('not a version-1 string message: ' + Array.from(data));
  let n = 0;
  let shift = 0;
  let i = 2;
  for (;;) {
    const b = data[i++];
    n |= (b & 0x7f) << shift;
    shift += 7;
    if (b < 0x80) break;
  }
  return new TextDecoder().decode(data.subarray(i, i + n));
}

const source = `
worker.onMessage(function (m) {
  console.log('worker got', m)
  worker.postMessage('got ' + m)
})
try { require('./nope') } catch (e) { console.log(e.message) }
`;
worker.initialize();
const state = worker.turns.start('/workers/echo.js', source, {
  stackBytes: 512 * 1024,
  maxMessageBytes: 16 * 1024 * 1024,
  maxTimers: 10000,
});
// A message is its bytes and the payloads of its outside ArrayBuffers, if
// any (none here: jco gives a WIT option's none as undefined).
const after = worker.workerEvents.deliverMessages([
  { bytes: encodeString('hello'), outside: undefined },
  { bytes: encodeString('wörld') },
]);
console.log(JSON.stringify({
  listening: [state.listening, after.listening],
  console: events.filter((e) => e.type === 'console').map((e) => e.args.join(' ')),
  messages: events.filter((e) => e.type === 'message').map((e) => decodeString(e.data)),
  errors: events.filter((e) => e.type === 'error'),
}));
