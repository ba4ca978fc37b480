"""A pool of `miniworker worker` processes taking requests: one message in,
the worker's next message out. A worker that does not answer in time, or
that ended (killed by a limit, say), is replaced by a fresh process."""

import queue
import threading

from .stdio import Ended, Worker


class Pool:
    """`size` workers of `entry`; `request(data)` is safe from many threads."""

    def __init__(self, miniworker, project, entry, size=4, timeout=10.0, flags=()):
        self._start = lambda: Worker(miniworker, project, entry, *flags)
        self.timeout = timeout
        self.restarts = 0
        self._idle = queue.Queue()
        self._lock = threading.Lock()
        self._closed = False
        for _ in range(size):
            self._idle.put(self._start())

    def request(self, data, timeout=None):
        """Posts `data` to an idle worker and returns its next message.
        Raises `TimeoutError` (the worker is replaced) or `Ended` (it ended;
        replaced too)."""
        worker = self._idle.get()
        try:
            worker.post(data)
            reply = worker.next_message(timeout=self.timeout if timeout is None else timeout)
        except queue.Empty:
            self._replace(worker)
            raise TimeoutError("the worker did not answer in time; it was replaced") from None
        except (Ended, BrokenPipeError) as ended:
            self._replace(worker)
            raise Ended(worker.exit) from ended
        self._idle.put(worker)
        return reply

    def _replace(self, worker):
        worker.kill()
        with self._lock:
            self.restarts += 1
        self._idle.put(self._start())

    def close(self):
        """Ends every worker (after the requests in flight)."""
        while not self._idle.empty():
            worker = self._idle.get()
            worker.close()
            for _ in worker.events(timeout=10):
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
