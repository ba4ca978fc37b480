"""A worker in a `miniworker worker` child process, speaking the stdio
protocol: one JSON line per event each way."""

import asyncio
import json
import queue
import subprocess
import threading


class Ended(Exception):
    """The worker ended (its `exit` line is `.exit`) before the awaited event."""

    def __init__(self, exit_line):
        super().__init__("the worker ended: %r" % (exit_line,))
        self.exit = exit_line


class Messages:
    """What every blocking stream derives from its `next_event(timeout)`."""

    def next_message(self, timeout=None):
        """The next message's data (other events are skipped); raises `Ended`
        if the stream ends first, `queue.Empty` (a worker) or `TimeoutError`
        (a session) on timeout."""
        while True:
            event = self.next_event(timeout)
            if event is None or event["type"] == "exit":
                raise Ended(self.exit)
            if event["type"] == "message":
                return event["data"]

    def events(self, timeout=None):
        """The events until (and with) the `exit` line."""
        while True:
            event = self.next_event(timeout)
            if event is None:
                return
            yield event
            if event["type"] == "exit":
                self._ended(timeout)
                return


class AsyncMessages:
    """What every asyncio stream derives from its `next_event()`."""

    async def next_message(self):
        while True:
            event = await self.next_event()
            if event is None or event["type"] == "exit":
                raise Ended(self.exit)
            if event["type"] == "message":
                return event["data"]

    async def events(self):
        """The events until (and with) the `exit` line (`async for`)."""
        while (event := await self.next_event()) is not None:
            yield event


class Worker(Messages):
    """One worker in a `miniworker worker` process (blocking API). A reader
    thread queues its events, so every wait can have a timeout."""

    def __init__(self, miniworker, project, entry, *flags):
        self.proc = subprocess.Popen(
            [miniworker, "worker", str(project), entry, *flags],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8",
        )
        self._events = queue.Queue()
        self.exit = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self._events.put(json.loads(line))
        self._events.put(None)

    def post(self, data):
        """worker.postMessage(data), for any JSON value."""
        self._send({"type": "message", "data": data})

    def terminate(self):
        """The worker stops at once; `exit` follows."""
        self._send({"type": "terminate"})

    def close(self):
        """End of input: the worker finishes what it was sent, then exits."""
        if not self.proc.stdin.closed:
            self.proc.stdin.close()

    def kill(self):
        """Ends the process at once (a pool replacing a stuck worker)."""
        self.proc.kill()
        self.proc.wait()

    def next_event(self, timeout=None):
        """The next event (a dict), or `None` once the stream ended; raises
        `queue.Empty` after `timeout` seconds."""
        event = self._events.get(timeout=timeout)
        if event is None:
            self._events.put(None)
        elif event["type"] == "exit":
            self.exit = event
        return event

    def _ended(self, timeout):
        self.proc.wait()

    def _send(self, obj):
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()


class AsyncWorker(AsyncMessages):
    """The same worker for asyncio: `await AsyncWorker.start(...)`."""

    @classmethod
    async def start(cls, miniworker, project, entry, *flags):
        self = cls()
        self.proc = await asyncio.create_subprocess_exec(
            miniworker, "worker", str(project), entry, *flags,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        self.exit = None
        return self

    async def post(self, data):
        await self._send({"type": "message", "data": data})

    async def terminate(self):
        await self._send({"type": "terminate"})

    async def close(self):
        self.proc.stdin.close()

    async def next_event(self):
        line = await self.proc.stdout.readline()
        if not line:
            return None
        event = json.loads(line)
        if event["type"] == "exit":
            self.exit = event
            await self.proc.wait()
        return event

    async def _send(self, obj):
        self.proc.stdin.write((json.dumps(obj) + "\n").encode())
        await self.proc.stdin.drain()
