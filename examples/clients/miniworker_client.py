"""A small Python client of miniworker's event stream (docs/events.md), two
ways with one API (post, terminate, close, events, next_message):

- `Worker`: a `miniworker worker` child process (the stdio protocol);
- `Session`: a session of `miniworker serve` over WebSocket
  (docs/server.md): the project folder is sent as a tar archive when the
  server asks for it. Needs the `websockets` package (PyPI).

    python3 miniworker_client.py MINIWORKER PROJECT ENTRY
    python3 miniworker_client.py --server ws://HOST:PORT [--token T] PROJECT ENTRY

runs ENTRY, waits for its first message, posts {"n": 1}, prints each event
as a JSON line, and ends the worker.
"""
import hashlib
import io
import json
import subprocess
import sys
import tarfile


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


def project_archive(folder):
    """The tar archive of a project folder, and its name for `open`."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(folder, arcname=".")
    data = buf.getvalue()
    return data, "sha256:" + hashlib.sha256(data).hexdigest()


class Session:
    """One session of `miniworker serve`: a worker of ENTRY (the client is its
    main thread) or, with run=True, the project's app.js."""

    def __init__(self, url, project, entry=None, run=False, token=None):
        from websockets.sync.client import connect  # pip install websockets

        headers = {"Authorization": "Bearer " + token} if token else None
        # (connect() is a context manager; the session holds it open.)
        self.ws = connect(url.rstrip("/") + "/v1/session", subprotocols=["miniworker.v1"],
                          additional_headers=headers, max_size=None).__enter__()
        archive, name = project_archive(project)
        opening = {"type": "open", "project": name}
        opening.update({"run": True} if run else {"entry": entry})
        self._send(opening)
        event = self._recv()
        if event is not None and event["type"] == "need-project":
            self.ws.send(archive)
            event = self._recv()
        if event is None or event["type"] != "opened":
            raise RuntimeError("the server did not open the session: %r" % (event,))
        self.opened = event
        self.close_code = None

    def post(self, data):
        """worker.postMessage(data), for any JSON value."""
        self._send({"type": "message", "data": data})

    def terminate(self):
        self._send({"type": "terminate"})

    def close(self):
        """Ends the session (a WebSocket has no end of input: it terminates)."""
        self.terminate()

    def events(self):
        """The session's events, as dicts, until (and with) the `exit` line."""
        while True:
            event = self._recv()
            if event is None:
                return
            yield event
            if event["type"] == "exit":
                self._recv()  # the close
                return

    def next_message(self):
        """The worker's next message's data (other events are skipped)."""
        for event in self.events():
            if event["type"] == "message":
                return event["data"]
        raise EOFError("the session ended without a message")

    def _send(self, obj):
        self.ws.send(json.dumps(obj))

    def _recv(self):
        from websockets.exceptions import ConnectionClosed

        try:
            return json.loads(self.ws.recv())
        except ConnectionClosed as closed:
            self.close_code = closed.rcvd.code if closed.rcvd else None
            return None


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[0] == "--server":
        url, args = args[1], args[2:]
        token = None
        if args[0] == "--token":
            token, args = args[1], args[2:]
        project, entry = args[:2]
        worker = Session(url, project, entry, token=token)
    else:
        miniworker, project, entry = args[:3]
        worker = Worker(miniworker, project, entry)
    print(json.dumps({"first": worker.next_message()}))
    worker.post({"n": 1})
    print(json.dumps({"reply": worker.next_message()}))
    worker.close()
    for event in worker.events():
        print(json.dumps(event))
