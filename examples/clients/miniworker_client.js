'use strict';
// A small Node.js client of `miniworker worker` (the stdio protocol,
// docs/events.md): start a worker, post messages, read its events.
//
//   node miniworker_client.js MINIWORKER PROJECT ENTRY
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
      if (event.type === 'exit') throw new Error('the worker ended without a message');
    }
  }

  send(obj) { this.proc.stdin.write(JSON.stringify(obj) + '\n'); }
}

module.exports = { Worker };

if (require.main === module) {
  (async () => {
    const [miniworker, project, entry] = process.argv.slice(2);
    const worker = new Worker(miniworker, project, entry);
    console.log(JSON.stringify({ first: await worker.nextMessage() }));
    worker.post({ n: 1 });
    console.log(JSON.stringify({ reply: await worker.nextMessage() }));
    worker.close();
    for (;;) {
      const event = await worker.nextEvent();
      console.log(JSON.stringify(event));
      if (event.type === 'exit') break;
    }
  })().catch((e) => { console.error(e); process.exit(1); });
}
