"""The source app under real gunicorn, with hostile clients at the socket level.

While a client that stalls after its headers, one that trickles a file part byte by byte
and one that disconnects half-way through a file hold their connections, a normal client
still reads pages and submits; a request with huge headers gets a 4xx, never a 500 or a
hang. Once every hostile connection is gone, the blob store holds exactly the stored items'
blobs: no temporary or partial file, and nothing in the server's temp directory. Every
socket operation has a timeout; the only wait is for the server to clean up, bounded.
"""

from __future__ import annotations

import http.client
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# Test packages import as top-level names at run time; mypy names them tests.browser.
from browser.http_client import Client, csrf_token, new_source  # type: ignore[import-not-found]
from sqlalchemy import select
from sqlalchemy.orm import Session

from tipbox.config import Config
from tipbox.instance import InitResult
from tipbox.models import Item
from tipbox.storage import TEMP_PREFIX

REPO = Path(__file__).resolve().parents[2]
SOCKET_TIMEOUT = 10.0
START_SECONDS = 60.0
CLEANUP_SECONDS = 30.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def server(config: Config, instance: InitResult, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """The source app of the test's instance under gunicorn: (port, its TMPDIR)."""
    server_tmp = tmp_path / "server-tmp"
    server_tmp.mkdir()
    config.blob_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIPBOX_")}
    env.update(
        TIPBOX_DATA_DIR=str(config.data_dir),
        TIPBOX_DATABASE_URL=config.database_url,
        TIPBOX_KEYS_DIR=str(config.keys_dir),
        TIPBOX_BLOB_DIR=str(config.blob_dir),
        # The flood budgets are not what this test is about (0 turns one off).
        TIPBOX_SUBMISSIONS_PER_HOUR="0",
        TIPBOX_NEW_SOURCES_PER_MINUTE="0",
        TIPBOX_MIN_FREE_DISK_MIB="0",
        TMPDIR=str(server_tmp),
        PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    )
    log = (tmp_path / "server.log").open("wb")
    bind = f"127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "tipbox.serve", "source", "--bind", bind, "--workers", "1"],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )
    log.close()
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail((tmp_path / "server.log").read_text()[-3000:])
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("the source app did not start")
            time.sleep(0.1)
        yield port, server_tmp
    finally:
        process.send_signal(signal.SIGINT)  # gunicorn's quick shutdown
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT)
    sock.settimeout(SOCKET_TIMEOUT)
    return sock


def _upload_head(client: Client, token: str, boundary: str, length: int) -> bytes:
    """Request line and headers of a file upload, then the first parts of its body."""
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    head = (
        f"POST /submit HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="f.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + body


def _status_of(sock: socket.socket) -> int:
    """The status code of the answer on ``sock`` (0 if the server closed without one)."""
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        return 0
    line = data.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) > 1 and line[1].isdigit() else 0


def _leftovers(blob_dir: Path, server_tmp: Path) -> list[str]:
    temps = [str(p) for p in blob_dir.rglob(f"{TEMP_PREFIX}*") if p.is_file()]
    return temps + [str(p) for p in server_tmp.rglob("*")]


def test_hostile_connections_leave_nothing_and_do_not_block_others(
    server: tuple[int, Path], config: Config, db: Session
) -> None:
    port, server_tmp = server
    base = f"http://127.0.0.1:{port}"
    attacker = Client(base)
    new_source(attacker)
    _, _, page = attacker.request("GET", "/submit")
    token = csrf_token(page)
    boundary = "tipboxslow" + secrets.token_hex(8)
    hostile: list[socket.socket] = []
    try:
        # 1. Headers and the start of a file part, then nothing more.
        stalled = _connect(port)
        stalled.sendall(_upload_head(attacker, token, boundary, 10_000_000) + b"A" * 70_000)
        hostile.append(stalled)
        # 2. Headers only, half of them: the request line and one header.
        half = _connect(port)
        half.sendall(b"POST /submit HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        hostile.append(half)
        # 3. A trickle: the file part a byte at a time (a short one, then it stops).
        trickle = _connect(port)
        trickle.sendall(_upload_head(attacker, token, boundary, 5_000_000))
        for byte in secrets.token_bytes(300):
            trickle.sendall(bytes([byte]))
        hostile.append(trickle)
        # 4. Half a file, then the connection is cut.
        cut = _connect(port)
        cut.sendall(_upload_head(attacker, token, boundary, 4_000_000) + b"B" * 1_500_000)
        cut.close()

        # Meanwhile a normal source is served: pages and a whole submission.
        normal = Client(base)
        new_source(normal)
        _, _, form = normal.request("GET", "/submit")
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
            f"{csrf_token(form)}\r\n"
            f'--{boundary}\r\nContent-Disposition: form-data; name="message"\r\n\r\n'
            f"hello from a patient source\r\n--{boundary}--\r\n"
        ).encode()
        status, location, _ = normal.request(
            "POST",
            "/submit",
            body,
            {"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert status == 303, status
        assert location.endswith("/submit?sent=1")

        # Huge headers: one enormous value, and very many headers.
        for headers in (
            b"X-Big: " + b"a" * 200_000 + b"\r\n",
            b"".join(b"X-H%d: v\r\n" % i for i in range(500)),
            b"Cookie: " + b"c=" * 50_000 + b"\r\n",
        ):
            with _connect(port) as big:
                try:
                    big.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + b"\r\n")
                except OSError:
                    continue  # the server closed as it refused: no 500, no hang
                status = _status_of(big)
                assert status == 0 or 400 <= status < 500, status
    finally:
        for sock in hostile:
            sock.close()

    # The hostile connections are gone: the server cleans up what they started.
    deadline = time.monotonic() + CLEANUP_SECONDS
    while _leftovers(config.blob_dir, server_tmp) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _leftovers(config.blob_dir, server_tmp) == []
    db.rollback()
    stored = set(db.scalars(select(Item.blob_id)))
    db.rollback()
    on_disk = {p.name for p in config.blob_dir.rglob("*") if p.is_file()}
    assert on_disk == stored
    assert len(stored) == 1  # the normal source's message, and nothing of the others
