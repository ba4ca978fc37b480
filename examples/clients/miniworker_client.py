"""A small Python client of `miniworker worker` (the stdio protocol,
docs/events.md): start a worker, post messages, read its events.

    python3 miniworker_client.py MINIWORKER PROJECT ENTRY

runs ENTRY, waits for its first message, posts {"n": 1}, prints each event
as a JSON line, and ends the worker.
"""
import json
import subprocess
import sys


class Worker:
    """One worker in a `miniworker worker` child process."""

    def __init__(self, miniworker, project, entry, *flags):
        self.proc = subprocess.Popen(
            [miniworker, "worker", project, entry, *flags],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8",
        )

    def post(self, data):
        """worker.postMessage(data), for any JSON value."""
        self._send({"type": "message", "data": data})

    def terminate(self):
        self._send({"type": "terminate"})

    def close(self):
        """End of input: the worker finishes what it was sent, then exits."""
        self.proc.stdin.close()

    def events(self):
        """The worker's events, as dicts, until (and with) the `exit` line."""
        for line in self.proc.stdout:
            event = json.loads(line)
            yield event
            if event["type"] == "exit":
                self.proc.wait()
                return

    def next_message(self):
        """The worker's next message's data (other events are skipped)."""
        for event in self.events():
            if event["type"] == "message":
                return event["data"]
        raise EOFError("the worker ended without a message")

    def _send(self, obj):
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()


if __name__ == "__main__":
    miniworker, project, entry = sys.argv[1:4]
    worker = Worker(miniworker, project, entry)
    print(json.dumps({"first": worker.next_message()}))
    worker.post({"n": 1})
    print(json.dumps({"reply": worker.next_message()}))
    worker.close()
    for event in worker.events():
        print(json.dumps(event))
