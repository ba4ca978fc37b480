"""A session of `miniworker serve` over WebSocket (docs/server.md): the
project folder goes up as a tar archive when the server asks for it, then
the same event stream as the stdio protocol. Needs `websockets`."""

import hashlib
import io
import json
import tarfile

from .stdio import AsyncMessages, Messages


def project_archive(folder):
    """The tar archive of a project folder, and its name for `open`."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(str(folder), arcname=".")
    data = buf.getvalue()
    return data, "sha256:" + hashlib.sha256(data).hexdigest()


def _open_line(name, entry, run):
    opening = {"type": "open", "project": name}
    opening.update({"run": True} if run else {"entry": entry})
    return json.dumps(opening)


class Session(Messages):
    """One session (blocking API): a worker of `entry` (this client is its
    main thread) or, with run=True, the project's app.js."""

    def __init__(self, url, project, entry=None, run=False, token=None):
        from websockets.sync.client import connect

        headers = {"Authorization": "Bearer " + token} if token else None
        # (connect() is a context manager; the session holds it open.)
        self.ws = connect(url.rstrip("/") + "/v1/session", subprotocols=["miniworker.v1"],
                          additional_headers=headers, max_size=None).__enter__()
        self.exit = None
        self.close_code = None
        archive, name = project_archive(project)
        self.ws.send(_open_line(name, entry, run))
        event = self.next_event()
        if event is not None and event["type"] == "need-project":
            self.ws.send(archive)
            event = self.next_event()
        if event is None or event["type"] != "opened":
            raise RuntimeError("the server did not open the session: %r" % (event,))
        self.opened = event

    def post(self, data):
        self.ws.send(json.dumps({"type": "message", "data": data}))

    def terminate(self):
        self.ws.send(json.dumps({"type": "terminate"}))

    def close(self):
        """A WebSocket has no end of input: closing terminates."""
        self.terminate()

    def next_event(self, timeout=None):
        from websockets.exceptions import ConnectionClosed

        try:
            event = json.loads(self.ws.recv(timeout))
        except ConnectionClosed as closed:
            self.close_code = closed.rcvd.code if closed.rcvd else None
            return None
        if event["type"] == "exit":
            self.exit = event
        return event

    def _ended(self, timeout):
        self.next_event(timeout)  # the close


class AsyncSession(AsyncMessages):
    """The same session for asyncio: `await AsyncSession.open(...)`."""

    @classmethod
    async def open(cls, url, project, entry=None, run=False, token=None):
        from websockets.asyncio.client import connect

        self = cls()
        headers = {"Authorization": "Bearer " + token} if token else None
        self.ws = await connect(url.rstrip("/") + "/v1/session", subprotocols=["miniworker.v1"],
                                additional_headers=headers, max_size=None)
        self.exit = None
        archive, name = project_archive(project)
        await self.ws.send(_open_line(name, entry, run))
        event = await self.next_event()
        if event is not None and event["type"] == "need-project":
            await self.ws.send(archive)
            event = await self.next_event()
        if event is None or event["type"] != "opened":
            raise RuntimeError("the server did not open the session: %r" % (event,))
        self.opened = event
        return self

    async def post(self, data):
        await self.ws.send(json.dumps({"type": "message", "data": data}))

    async def terminate(self):
        await self.ws.send(json.dumps({"type": "terminate"}))

    async def close(self):
        await self.terminate()

    async def next_event(self):
        from websockets.exceptions import ConnectionClosed

        try:
            event = json.loads(await self.ws.recv())
        except ConnectionClosed:
            return None
        if event["type"] == "exit":
            self.exit = event
        return event
