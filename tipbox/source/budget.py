"""The Argon2id budget: a few codename derivations at once per process, never a queue.

Each ``/generate``, ``/confirm`` and ``/login`` runs one Argon2id (64 MiB). A burst of them
would exhaust memory or keep every worker thread busy, so the app holds a bounded
semaphore (docs/source-app.md section 3) and answers "busy" at once when it is full: a
queue would only let an attacker line up work for later.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from werkzeug.exceptions import ServiceUnavailable

# Seconds a busy source is told to wait before trying again.
RETRY_AFTER_SECONDS = 5


class Busy(ServiceUnavailable):
    """No Argon2id slot is free: 503 with ``Retry-After``."""

    def __init__(self) -> None:
        super().__init__(retry_after=RETRY_AFTER_SECONDS)


class Argon2Budget:
    """How many Argon2id runs may be in progress at once in this process."""

    def __init__(self, slots: int) -> None:
        """Allow ``slots`` runs at once (at least one)."""
        if slots < 1:
            raise ValueError("the Argon2id budget needs at least one slot")
        self.slots = slots
        self.semaphore = threading.BoundedSemaphore(slots)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot for the block, or raise ``Busy`` at once if none is free."""
        if not self.semaphore.acquire(blocking=False):
            raise Busy()
        try:
            yield
        finally:
            self.semaphore.release()
