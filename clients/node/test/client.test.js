'use strict';
// The Node.js client against the real binary: a worker, a session of the
// server, and the pool's timeouts and restarts. $MINIWORKER names the binary
// (make test sets it).
const test = require('node:test');
const assert = require('node:assert');
const { spawn } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const readline = require('readline');
const { Ended, Timeout, Worker, Session, Pool } = require('..');

const repo = path.resolve(__dirname, '../../..');
const miniworker = process.env.MINIWORKER || path.join(repo, 'target/release/miniworker');
const hello = path.join(repo, 'examples/hello');
const HELLO = 'workers/request/index.js';

test('a worker answers and ends at end of input', async () => {
  const worker = new Worker(miniworker, hello, HELLO);
  worker.post({ msg: 'hi' });
  assert.deepStrictEqual(await worker.nextMessage({ timeout: 20000 }), { msg: 'hello main', echo: 'hi' });
  worker.close();
  while ((await worker.nextEvent()) !== null);
  assert.deepStrictEqual(worker.exit, { type: 'exit', code: 0, reason: 'end-of-input' });
});

// An HS256 token for KEY (RFC 7519), made with node:crypto.
const KEY = "the Node client's key, 16+ bytes";
function token(sub) {
  const b64 = (data) => Buffer.from(data).toString('base64url');
  const unsigned = b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' })) + '.' +
    b64(JSON.stringify({ sub, exp: Math.floor(Date.now() / 1000) + 3600 }));
  return unsigned + '.' + crypto.createHmac('sha256', KEY).update(unsigned).digest('base64url');
}

test('a session of the server, with the token in the subprotocol list', async () => {
  const server = spawn(miniworker, ['serve', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--auth-key', KEY],
    { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const first = await new Promise((resolve) => readline.createInterface({ input: server.stdout }).once('line', resolve));
    const url = 'ws://' + JSON.parse(first).listening;
    await assert.rejects(Session.open(url, hello, { entry: HELLO })); // no token: 401
    const session = await Session.open(url, hello, { entry: HELLO, token: token('node') });
    assert.strictEqual(session.opened.type, 'opened');
    session.post({ msg: 'over the network' });
    assert.deepStrictEqual(await session.nextMessage({ timeout: 20000 }), { msg: 'hello main', echo: 'over the network' });
    session.close();
    while ((await session.nextEvent()) !== null);
    assert.strictEqual(session.exit.reason, 'terminated');
    assert.strictEqual(session.closeCode, 1000);
  } finally {
    server.kill('SIGKILL');
  }
});

test('a pool answers concurrent requests', async () => {
  const pool = new Pool(miniworker, hello, HELLO, { size: 3, timeout: 20000 });
  const replies = await Promise.all([...Array(12).keys()].map((i) => pool.request({ msg: String(i) })));
  replies.forEach((reply, i) => assert.deepStrictEqual(reply, { msg: 'hello main', echo: String(i) }));
  assert.strictEqual(pool.restarts, 0);
  await pool.close();
});

test('a pool replaces a worker that dies or times out', async () => {
  const project = fs.mkdtempSync(path.join(os.tmpdir(), 'moody-'));
  fs.mkdirSync(path.join(project, 'workers'));
  fs.writeFileSync(path.join(project, 'app.json'), '{"workers": "workers"}');
  fs.writeFileSync(path.join(project, 'workers/moody.js'),
    "worker.onMessage((m) => {\n  if (m === 'die') return worker.testOnProcessKilled()\n" +
    "  if (m === 'hang') return\n  worker.postMessage({ got: m })\n})\n");
  const pool = new Pool(miniworker, project, 'workers/moody.js', { size: 1, timeout: 20000 });
  try {
    assert.deepStrictEqual(await pool.request(1), { got: 1 });
    await assert.rejects(pool.request('die'), (e) => e instanceof Ended && e.exit.reason === 'killed');
    assert.strictEqual(pool.restarts, 1);
    assert.deepStrictEqual(await pool.request(2), { got: 2 });
    await assert.rejects(pool.request('hang', { timeout: 500 }), Timeout);
    assert.strictEqual(pool.restarts, 2);
    assert.deepStrictEqual(await pool.request(3), { got: 3 });
  } finally {
    await pool.close();
    fs.rmSync(project, { recursive: true, force: true });
  }
});
