'use strict';
// Node.js client of miniworker's event stream (docs/events.md): a worker
// process over the stdio protocol (Worker), a session of `miniworker serve`
// over WebSocket (Session), and a pool of worker processes (Pool), with one
// promise API: post(data), nextEvent({ timeout }), nextMessage({ timeout }),
// terminate(), close().
const { spawn } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const readline = require('readline');

// The stream ended (its `exit` line is `.exit`) before the awaited event.
class Ended extends Error {
  constructor(exit) {
    super('the worker ended: ' + JSON.stringify(exit));
    this.exit = exit;
  }
}

// No event within the timeout.
class Timeout extends Error {}

// Events in arrival order, each awaited at most once; shared by Worker and Session.
class Events {
  constructor() {
    this.queue = [];
    this.waiting = [];
    this.exit = null;
  }

  deliver(event) {
    if (event && event.type === 'exit') this.exit = event;
    const next = this.waiting.shift();
    if (next) next(event);
    else this.queue.push(event);
  }

  // The next event, or null once the stream ended; rejects with Timeout.
  nextEvent({ timeout } = {}) {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    return new Promise((resolve, reject) => {
      let timer = null;
      const take = (event) => {
        if (timer) clearTimeout(timer);
        resolve(event);
      };
      this.waiting.push(take);
      if (timeout !== undefined) {
        timer = setTimeout(() => {
          this.waiting = this.waiting.filter((w) => w !== take);
          reject(new Timeout('no event within ' + timeout + ' ms'));
        }, timeout);
      }
    });
  }

  // The next message's data (other events skipped); rejects with Ended or Timeout.
  async nextMessage(options) {
    for (;;) {
      const event = await this.nextEvent(options);
      if (event === null || event.type === 'exit') throw new Ended(this.exit);
      if (event.type === 'message') return event.data;
    }
  }
}

class Worker extends Events {
  constructor(miniworker, project, entry, ...flags) {
    super();
    this.proc = spawn(miniworker, ['worker', project, entry, ...flags], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.proc.stdin.on('error', () => {}); // a killed worker's closed pipe
    const lines = readline.createInterface({ input: this.proc.stdout });
    lines.on('line', (line) => this.deliver(JSON.parse(line)));
    lines.on('close', () => this.deliver(null));
  }

  post(data) { this.send({ type: 'message', data }); }

  terminate() { this.send({ type: 'terminate' }); }

  // End of input: the worker finishes what it was sent, then exits.
  close() { this.proc.stdin.end(); }

  // Ends the process at once (a pool replacing a stuck worker).
  kill() { this.proc.kill('SIGKILL'); }

  send(obj) { this.proc.stdin.write(JSON.stringify(obj) + '\n'); }
}

// The tar archive of a project folder, and its name for `open`.
function projectArchive(folder) {
  const tar = require('tar');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'miniworker-'));
  const file = path.join(dir, 'project.tar');
  try {
    tar.create({ cwd: folder, file, sync: true, portable: true }, ['.']);
    const bytes = fs.readFileSync(file);
    return { bytes, name: 'sha256:' + crypto.createHash('sha256').update(bytes).digest('hex') };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

class Session extends Events {
  // A worker session of `entry` (this client is its main thread) or, with
  // { run: true }, the project's app.js. The token goes in the subprotocol
  // list, as browsers must send it.
  static async open(url, project, { entry, run, token } = {}) {
    const WebSocket = globalThis.WebSocket || require('ws');
    const protocols = ['miniworker.v1'];
    if (token) protocols.push('token.' + token);
    const session = new Session(new WebSocket(url.replace(/\/$/, '') + '/v1/session', protocols));
    await new Promise((resolve, reject) => {
      session.ws.onopen = resolve;
      session.ws.onerror = () => reject(new Error('cannot connect to ' + url));
    });
    const archive = projectArchive(project);
    session.send(run ? { type: 'open', project: archive.name, run: true } : { type: 'open', project: archive.name, entry });
    let event = await session.nextEvent();
    if (event && event.type === 'need-project') {
      session.ws.send(archive.bytes);
      event = await session.nextEvent();
    }
    if (!event || event.type !== 'opened') throw new Error('the server did not open the session: ' + JSON.stringify(event));
    session.opened = event;
    return session;
  }

  constructor(ws) {
    super();
    this.ws = ws;
    this.closeCode = null;
    ws.onmessage = (m) => this.deliver(JSON.parse(m.data));
    ws.onclose = (c) => {
      this.closeCode = c.code;
      this.deliver(null);
    };
  }

  post(data) { this.send({ type: 'message', data }); }

  terminate() { this.send({ type: 'terminate' }); }

  // A WebSocket has no end of input: closing terminates.
  close() { this.terminate(); }

  send(obj) { this.ws.send(JSON.stringify(obj)); }
}

// Worker processes taking requests: one message in, that worker's next
// message out. A worker that times out or ends is replaced by a fresh one.
class Pool {
  constructor(miniworker, project, entry, { size = 4, timeout = 10000, flags = [] } = {}) {
    this.start = () => new Worker(miniworker, project, entry, ...flags);
    this.timeout = timeout;
    this.restarts = 0;
    this.idle = [];
    this.waiting = [];
    for (let i = 0; i < size; i++) this.idle.push(this.start());
  }

  take() {
    if (this.idle.length) return Promise.resolve(this.idle.shift());
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  give(worker) {
    const next = this.waiting.shift();
    if (next) next(worker);
    else this.idle.push(worker);
  }

  async request(data, { timeout } = {}) {
    const worker = await this.take();
    try {
      worker.post(data);
      const reply = await worker.nextMessage({ timeout: timeout === undefined ? this.timeout : timeout });
      this.give(worker);
      return reply;
    } catch (e) {
      worker.kill();
      this.restarts += 1;
      this.give(this.start());
      throw e;
    }
  }

  // Ends every idle worker.
  async close() {
    const workers = this.idle.splice(0);
    for (const worker of workers) worker.close();
    for (const worker of workers) {
      while ((await worker.nextEvent()) !== null);
    }
  }
}

module.exports = { Ended, Timeout, Worker, Session, Pool, projectArchive };
