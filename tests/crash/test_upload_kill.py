"""A source app killed with SIGKILL in the middle of an upload's body, under real gunicorn.

A slow client sends a submission with two files and stops half-way through the second:
the first file's blob is complete in the store (no row names it yet) and the second is a
temporary file. The kill lands exactly then, on the worker (the master starts another) or
on the master's whole process group. Then `tipbox fsck --repair` removes both leftovers,
`tipbox fsck` finds the instance clean, and every acknowledged submission reads back,
while the interrupted one left nothing.
"""

from __future__ import annotations

import http.client
import os
import signal

import pytest

from .live import (
    BOUNDARY,
    Live,
    Server,
    SourceClient,
    kill_group,
    part_head,
    start_source_app,
    wait_for,
)

FIRST_FILE = b"first file, complete before the kill. " * 5000  # about 190 KB
SECOND_FILE_BYTES = 1 << 20
SENT_OF_SECOND = 96 * 1024


def _start_slow_upload(client: SourceClient, csrf: str) -> http.client.HTTPConnection:
    """Send everything up to part of the second file, and no more: the body stays open."""
    head = part_head("csrf_token") + csrf.encode() + b"\r\n"
    head += part_head("message") + b"interrupted message\r\n"
    head += part_head("files", "first.txt") + FIRST_FILE + b"\r\n"
    head += part_head("files", "second.txt")
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    conn = http.client.HTTPConnection("127.0.0.1", client.port, timeout=30)
    conn.putrequest("POST", "/submit")
    for name, value in client.headers(
        {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    ).items():
        conn.putheader(name, value)
    conn.putheader("Content-Length", str(len(head) + SECOND_FILE_BYTES + len(tail)))
    conn.endheaders()
    conn.send(head)
    conn.send(b"s" * SENT_OF_SECOND)
    return conn


def _answered(conn: http.client.HTTPConnection) -> int | None:
    """The status the server gave the interrupted upload, or None (connection dropped)."""
    try:
        conn.send(b"s" * 1024)
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


@pytest.mark.parametrize("victim", ["worker", "master-group"])
def test_kill_during_an_upload_loses_nothing_acknowledged(live: Live, victim: str) -> None:
    server: Server = start_source_app(live, f"source-{victim}")
    client = SourceClient(server.port)
    client.become_source()
    acknowledged = []
    for n in range(2):
        assert client.submit(f"before-{n}", {f"b{n}.txt": f"before-file-{n}".encode()})
        acknowledged += [f"before-{n}", f"before-file-{n}"]
    stored_before = set(live.store.ids())

    conn = _start_slow_upload(client, client.form_token())
    # The kill lands when the first file's blob is whole and the second is being written.
    wait_for(
        "the first file's blob and the second file's temporary file",
        lambda: (
            len(set(live.store.ids()) - stored_before) == 1 and len(live.store.incomplete()) == 1
        ),
    )
    if victim == "worker":
        (worker,) = server.workers()
        os.kill(worker, signal.SIGKILL)
    else:
        kill_group(server.process)
    assert _answered(conn) is None  # never acknowledged

    if victim == "worker":
        # The master starts a new worker, which takes submissions again.
        wait_for("a new worker", lambda: server.healthy() and len(server.workers()) == 1)
        assert client.submit("after", {"after.txt": b"after-file"})
        acknowledged += ["after", "after-file"]
        server.stop()

    found = live.repair_then_check_clean()
    assert len(found["orphan_blobs"]) == 1  # the first file: written, never committed
    assert len(found["stale_temp_files"]) == 1  # the second: cut short
    assert found["damage"] == 0
    assert sorted(live.read_everything()) == sorted(acknowledged)
