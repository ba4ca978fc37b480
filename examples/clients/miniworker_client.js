'use strict';
// A small Node.js client of miniworker's event stream (docs/events.md), two
// ways with one API (post, terminate, close, nextEvent, nextMessage):
//
// - Worker: a `miniworker worker` child process (the stdio protocol);
// - Session: a session of `miniworker serve` over WebSocket
//   (docs/server.md); the project folder is sent as a tar archive when the
//   server asks for it. Uses the global WebSocket (Node 22), else the `ws`
//   package, and the `tar` package.
//
//   node miniworker_client.js MINIWORKER PROJECT ENTRY
//   node miniworker_client.js --server ws://HOST:PORT [--token T] PROJECT ENTRY
//
// runs ENTRY, waits for its first message, posts {n: 1}, prints each event
// as a JSON line, and ends the worker.
const { spawn } = require('child_process');
const readline = require('readline');

class Worker {
  constructor(miniworker, project, entry, ...flags) {
    this.proc = spawn(miniworker, ['worker', project, entry, ...flags], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.queue = [];
    this.waiting = [];
    readline.createInterface({ input: this.proc.stdout }).on('line', (line) => {
      const event = JSON.parse(line);
      const next = this.waiting.shift();
      if (next) next(event);
      else this.queue.push(event);
    });
  }

  // worker.postMessage(data), for any JSON value.
  post(data) { this.send({ type: 'message', data }); }

  terminate() { this.send({ type: 'terminate' }); }

  // End of input: the worker finishes what it was sent, then exits.
  close() { this.proc.stdin.end(); }

  // The next event (a promise).
  nextEvent() {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  // The next message's data (other events are skipped).
  async nextMessage() {
    for (;;) {
      const event = await this.nextEvent();
      if (event.type === 'message') return event.data;
      if (event.type === 'exit' || event.type === 'closed') throw new Error('the worker ended without a message');
    }
  }

  send(obj) { this.proc.stdin.write(JSON.stringify(obj) + '\n'); }
}

// The tar archive of a project folder, and its name for `open`.
function projectArchive(folder) {
  const fs = require('fs');
  const os = require('os');
  const path = require('path');
  const tar = require('tar');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'miniworker-'));
  const file = path.join(dir, 'project.tar');
  try {
    tar.create({ cwd: folder, file, sync: true, portable: true }, ['.']);
    const bytes = fs.readFileSync(file);
    const hash = require('crypto').createHash('sha256').update(bytes).digest('hex');
    return { bytes, name: 'sha256:' + hash };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// One session of `miniworker serve`: a worker of `entry` (the client is its
// main thread) or, with {run: true}, the project's app.js. Use
// `await Session.open(url, project, {entry | run, token})`.
class Session {
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
    if (event.type === 'need-project') {
      session.ws.send(archive.bytes);
      event = await session.nextEvent();
    }
    if (event.type !== 'opened') throw new Error('the server did not open the session: ' + JSON.stringify(event));
    session.opened = event;
    return session;
  }

  constructor(ws) {
    this.ws = ws;
    this.queue = [];
    this.waiting = [];
    this.closeCode = null;
    const deliver = (event) => {
      const next = this.waiting.shift();
      if (next) next(event);
      else this.queue.push(event);
    };
    ws.onmessage = (m) => deliver(JSON.parse(m.data));
    ws.onclose = (c) => {
      this.closeCode = c.code;
      deliver({ type: 'closed', code: c.code });
    };
  }

  post(data) { this.send({ type: 'message', data }); }

  terminate() { this.send({ type: 'terminate' }); }

  // A WebSocket has no end of input: closing terminates.
  close() { this.terminate(); }

  nextEvent() { return Worker.prototype.nextEvent.call(this); }

  nextMessage() { return Worker.prototype.nextMessage.call(this); }

  send(obj) { this.ws.send(JSON.stringify(obj)); }
}

module.exports = { Worker, Session, projectArchive };

if (require.main === module) {
  (async () => {
    let args = process.argv.slice(2);
    let worker;
    if (args[0] === '--server') {
      const url = args[1];
      args = args.slice(2);
      let token;
      if (args[0] === '--token') {
        token = args[1];
        args = args.slice(2);
      }
      worker = await Session.open(url, args[0], { entry: args[1], token });
    } else {
      const [miniworker, project, entry] = args;
      worker = new Worker(miniworker, project, entry);
    }
    console.log(JSON.stringify({ first: await worker.nextMessage() }));
    worker.post({ n: 1 });
    console.log(JSON.stringify({ reply: await worker.nextMessage() }));
    worker.close();
    for (;;) {
      const event = await worker.nextEvent();
      console.log(JSON.stringify(event));
      if (event.type === 'exit') break;
    }
    if (worker.ws) worker.ws.close();
  })().catch((e) => { console.error(e); process.exit(1); });
}
