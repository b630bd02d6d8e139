"""No plaintext temp file during a no-JavaScript upload through real gunicorn (DESIGN 3).

A plain HTTP client (no browser, no JavaScript) gets a codename and streams a large
multipart upload slowly. Meanwhile a watcher reads the worker processes' open files from
``/proc`` and the temp directories. Every regular file a worker opens must be the blob
store's (holding ciphertext only: checked while the upload runs), the database's, or a
log; nothing may appear in the server's ``TMPDIR`` or the system temp directory.
"""

from __future__ import annotations

import http.client
import os
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .conftest import Instance, LiveServer, children_of, start_source_server
from .http_client import Client, csrf_token, new_source

pytestmark = pytest.mark.browser

UPLOAD_BYTES = 24 * 1024 * 1024
PIECE = 256 * 1024


@dataclass
class Watch:
    """What the watcher saw: files the workers opened, and new files in temp dirs."""

    opened: set[str] = field(default_factory=set)
    temp_entries: set[str] = field(default_factory=set)
    plaintext_in_blob_temp: list[str] = field(default_factory=list)
    blob_temp_seen: int = 0


def _watch(
    master: int,
    temp_dirs: list[Path],
    blob_dir: Path,
    canary: bytes,
    stop: threading.Event,
    seen: Watch,
) -> None:
    before = {str(p) for d in temp_dirs for p in d.iterdir()}
    while not stop.is_set():
        for pid in [master, *children_of(master)]:
            fd_dir = Path(f"/proc/{pid}/fd")
            try:
                fds = list(fd_dir.iterdir())
            except OSError:
                continue
            for fd in fds:
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if not target.startswith("/") or target.startswith("/dev/"):
                    continue
                seen.opened.add(target)
                if target.startswith(str(blob_dir)) and ".tmp" in Path(target).name:
                    seen.blob_temp_seen += 1
                    try:
                        if canary in Path(target).read_bytes():
                            seen.plaintext_in_blob_temp.append(target)
                    except OSError:
                        pass
        for directory in temp_dirs:
            seen.temp_entries |= {str(p) for p in directory.iterdir()} - before
        time.sleep(0.02)


def _stream_upload(client: Client, csrf: str, canary: bytes) -> int:
    boundary = secrets.token_hex(16)
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{csrf}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="message"\r\n\r\n'
        f"{canary.decode()} message\r\n"
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
        f'filename="{canary.decode()}.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    piece = (canary + b" ") * (PIECE // (len(canary) + 1))
    pieces = UPLOAD_BYTES // len(piece)
    conn = http.client.HTTPConnection(client.host, client.port, timeout=120)
    try:
        conn.putrequest("POST", "/submit")
        conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        conn.putheader("Content-Length", str(len(head) + pieces * len(piece) + len(tail)))
        conn.putheader("Cookie", "; ".join(f"{k}={v}" for k, v in client.cookies.items()))
        conn.endheaders()
        conn.send(head)
        for _ in range(pieces):
            conn.send(piece)
            time.sleep(0.005)  # slow enough for the watcher to look at the temp file
        conn.send(tail)
        return conn.getresponse().status
    finally:
        conn.close()


def test_no_plaintext_temp_file_during_a_no_javascript_upload(live_instance: Instance) -> None:
    server: LiveServer = start_source_server(live_instance, "tempwatch")
    try:
        client = Client(server.base)
        new_source(client)
        _, _, submit_page = client.request("GET", "/submit")
        canary = f"cnry{secrets.token_hex(10)}".encode()
        temp_dirs = [live_instance.server_tmp, Path(tempfile.gettempdir())]
        seen = Watch()
        stop = threading.Event()
        watcher = threading.Thread(
            target=_watch,
            args=(server.pid, temp_dirs, live_instance.config.blob_dir, canary, stop, seen),
        )
        watcher.start()
        try:
            status = _stream_upload(client, csrf_token(submit_page), canary)
        finally:
            stop.set()
            watcher.join()
        assert status == 303
    finally:
        server.process.terminate()
        server.process.wait(timeout=60)

    assert seen.blob_temp_seen > 0, "the watcher never saw the upload's temp file"
    assert seen.plaintext_in_blob_temp == []
    assert not any(entry.startswith(str(live_instance.server_tmp)) for entry in seen.temp_entries)
    data_dir = str(live_instance.config.data_dir)
    allowed = (str(live_instance.config.blob_dir), str(live_instance.log_dir), data_dir)
    strays = {
        path
        for path in seen.opened
        if not path.startswith(allowed) and not path.endswith((".py", ".pyc", ".mo", ".so"))
    }
    assert strays == set()
    assert list(live_instance.server_tmp.iterdir()) == []
