"""Where the tests find miniworker: $MINIWORKER (the binary; make test sets
it) and the repository around this package (its examples and fixtures)."""

import base64
import hashlib
import hmac
import json
import os
import pathlib
import subprocess
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]


@pytest.fixture
def miniworker():
    return os.environ.get("MINIWORKER", str(REPO / "target/release/miniworker"))


@pytest.fixture
def hello():
    return REPO / "examples/hello"


@pytest.fixture
def fixture():
    return lambda name: REPO / "tests/fixtures" / name


KEY = "the Python client's key, 16+ bytes"


def token(sub="python"):
    """An HS256 token for KEY (RFC 7519), made with the standard library."""
    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": sub, "exp": int(time.time()) + 3600}).encode())
    mac = hmac.new(KEY.encode(), head + b"." + body, hashlib.sha256).digest()
    return (head + b"." + body + b"." + b64(mac)).decode()


@pytest.fixture
def server(miniworker):
    """A `miniworker serve` with an auth key, on a loopback port it picks;
    its ws:// URL."""
    proc = subprocess.Popen([miniworker, "serve", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
                             "--auth-key", KEY],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        where = json.loads(proc.stdout.readline())
        yield "ws://" + where["listening"]
    finally:
        proc.kill()
        proc.wait()
