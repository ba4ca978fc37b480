"""Python client of miniworker's event stream (docs/events.md): a worker
process over the stdio protocol (`Worker`, `AsyncWorker`), a session of
`miniworker serve` over WebSocket (`Session`, `AsyncSession`), and a pool of
worker processes (`Pool`). All share one message API: `post(data)`,
`next_message(timeout)`, `events()`, `terminate()`, `close()`."""

from .stdio import AsyncWorker, Ended, Worker
from .session import AsyncSession, Session, project_archive
from .pool import Pool

__all__ = ["AsyncSession", "AsyncWorker", "Ended", "Pool", "Session", "Worker", "project_archive"]
