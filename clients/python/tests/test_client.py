"""The Python client against the real binary: blocking and asyncio workers,
sessions of the server, and the pool's timeouts and restarts."""

import asyncio
import threading

import pytest

from conftest import token
from miniworker import AsyncSession, AsyncWorker, Ended, Pool, Session, Worker

HELLO = "workers/request/index.js"


def test_a_worker_answers_and_ends_at_end_of_input(miniworker, hello):
    worker = Worker(miniworker, hello, HELLO)
    worker.post({"msg": "hi"})
    assert worker.next_message(timeout=20) == {"msg": "hello main", "echo": "hi"}
    worker.close()
    events = list(worker.events(timeout=20))
    assert events[-1] == {"type": "exit", "code": 0, "reason": "end-of-input"}


def test_a_killed_worker_is_an_ended_error(miniworker, fixture):
    worker = Worker(miniworker, fixture("stdio"), "workers/main.js")
    assert worker.next_message(timeout=20) == "ready"
    worker.post("die")
    with pytest.raises(Ended) as ended:
        worker.next_message(timeout=20)
    assert ended.value.exit == {"type": "exit", "code": 0, "reason": "killed"}


def test_the_asyncio_worker(miniworker, hello):
    async def main():
        worker = await AsyncWorker.start(miniworker, hello, HELLO)
        await worker.post({"msg": "async"})
        reply = await worker.next_message()
        await worker.close()
        async for _ in worker.events():
            pass
        return reply, worker.exit

    reply, exit_line = asyncio.run(main())
    assert reply == {"msg": "hello main", "echo": "async"}
    assert exit_line["reason"] == "end-of-input"


def test_a_session_of_the_server(server, hello):
    with pytest.raises(Exception):
        Session(server, hello, entry=HELLO)  # no token: 401
    session = Session(server, hello, entry=HELLO, token=token())
    assert session.opened["type"] == "opened"
    session.post({"msg": "over the network"})
    assert session.next_message(timeout=20) == {"msg": "hello main", "echo": "over the network"}
    session.close()
    assert list(session.events(timeout=20))[-1]["reason"] == "terminated"
    assert session.close_code == 1000


def test_the_asyncio_session_runs_app_js(server, hello):
    async def main():
        session = await AsyncSession.open(server, hello, run=True, token=token())
        return [event async for event in session.events()]

    lines = asyncio.run(main())
    assert [l["type"] for l in lines] == ["ready", "console", "console", "exit"]
    assert lines[-1]["reason"] == "quiescent"


def test_a_pool_serves_many_threads(miniworker, hello):
    with Pool(miniworker, hello, HELLO, size=3, timeout=20) as pool:
        replies = {}

        def ask(i):
            replies[i] = pool.request({"msg": str(i)})

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert replies == {i: {"msg": "hello main", "echo": str(i)} for i in range(12)}
        assert pool.restarts == 0


def test_a_pool_replaces_a_worker_that_times_out_or_dies(miniworker, tmp_path):
    (tmp_path / "workers").mkdir()
    (tmp_path / "app.json").write_text('{"workers": "workers"}')
    (tmp_path / "workers/moody.js").write_text(
        "worker.onMessage((m) => {\n"
        "  if (m === 'die') return worker.testOnProcessKilled()\n"
        "  if (m === 'hang') return\n"
        "  worker.postMessage({ got: m })\n"
        "})\n")
    with Pool(miniworker, tmp_path, "workers/moody.js", size=1, timeout=20) as pool:
        assert pool.request(1) == {"got": 1}
        with pytest.raises(Ended) as ended:
            pool.request("die")
        assert ended.value.exit["reason"] == "killed"
        assert pool.restarts == 1
        assert pool.request(2) == {"got": 2}  # a fresh worker
        with pytest.raises(TimeoutError):
            pool.request("hang", timeout=0.5)
        assert pool.restarts == 2
        assert pool.request(3) == {"got": 3}
