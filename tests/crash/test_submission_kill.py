"""Many sources submitting at once through real gunicorn (two workers), and the master's
whole process group killed with SIGKILL while they do.

Each client records which of its submissions were acknowledged (the 303 to the receipt
page). After `tipbox fsck --repair` and a clean `tipbox fsck`: every acknowledged
submission reads back whole, and every submission stored is whole (its message and its
file, or nothing): DESIGN invariant 10.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import func, select

from tipbox.db import transaction
from tipbox.models import Item

from .live import Live, SourceClient, kill_group, start_source_app, wait_for

SOURCES = 8
PER_SOURCE = 12
# Kill once this many items are stored: a fair number of submissions is in by then, and
# every client is still sending.
KILL_AT_ITEMS = 24
FILE_PAD = b"x" * 20_000


@dataclass
class Outcome:
    """What the clients saw, under a lock."""

    acknowledged: set[str] = field(default_factory=set)
    refused: list[str] = field(default_factory=list)
    cut_off: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _send(client: SourceClient, source: int, outcome: Outcome, stop: threading.Event) -> None:
    for n in range(PER_SOURCE):
        if stop.is_set():
            return
        token = f"storm-{source}-{n}"
        try:
            ok = client.submit(token, {f"{token}.txt": f"{token}-file\n".encode() + FILE_PAD})
        except (OSError, http.client.HTTPException):  # the server died under this request
            with outcome.lock:
                outcome.cut_off += 1
            return
        with outcome.lock:
            (outcome.acknowledged.add if ok else outcome.refused.append)(token)


def _items(live: Live) -> Callable[[], bool]:
    def enough() -> bool:
        with transaction(live.reads) as session:
            count = session.scalar(select(func.count()).select_from(Item)) or 0
        return count >= KILL_AT_ITEMS

    return enough


def test_kill_during_concurrent_submissions_loses_nothing_acknowledged(live: Live) -> None:
    server = start_source_app(live, "source-storm", workers=2)
    clients = []
    for _ in range(SOURCES):
        client = SourceClient(server.port)
        client.become_source()
        clients.append(client)
    outcome, stop = Outcome(), threading.Event()
    threads = [
        threading.Thread(target=_send, args=(client, source, outcome, stop))
        for source, client in enumerate(clients)
    ]
    for thread in threads:
        thread.start()
    try:
        wait_for(f"{KILL_AT_ITEMS} stored items", _items(live))
        kill_group(server.process)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
    assert outcome.refused == []
    assert outcome.acknowledged
    assert outcome.cut_off > 0  # the kill landed while clients were sending

    found = live.repair_then_check_clean()
    assert found["damage"] == 0
    stored = live.read_everything()
    messages = {text for text in stored if not text.endswith(FILE_PAD.decode())}
    files = {text.split("\n", 1)[0] for text in stored if text.endswith(FILE_PAD.decode())}
    assert len(stored) == len(messages) + len(files)  # nothing twice
    # Whole or nothing: each stored message has its file, and the other way round.
    assert files == {f"{token}-file" for token in messages}
    # Nothing acknowledged is lost.
    assert outcome.acknowledged <= messages
