"""The Argon2id budget: a few codename derivations at once, never a queue.

Each ``/generate``, ``/confirm`` and ``/login`` runs one Argon2id (64 MiB). A burst of them
would exhaust memory or keep every worker thread busy, so a run needs two slots, both tried
without waiting (docs/source-app.md section 3, docs/abuse.md):

- one of this process's (a bounded semaphore), which keeps a worker's threads free for
  pages and uploads;
- one of this host's (``HostSlots``: lock files in the runtime directory, shared by every
  worker and gunicorn master of the instance), which bounds the memory and CPU that
  codename logins take on the machine.

When either is full the answer is at once "busy" (503 with ``Retry-After``): a queue
would only let an attacker line up work for later. ``any_free`` lets the app refuse a
codename post before anything else is done for it (``tipbox.source.floods``): under a
flood, most posts are refused, so a refusal must cost next to nothing.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from werkzeug.exceptions import ServiceUnavailable

# Seconds a busy source is told to wait before trying again.
RETRY_AFTER_SECONDS = 5


class Busy(ServiceUnavailable):
    """No Argon2id slot is free, or an instance-wide budget is spent: 503 with
    ``Retry-After``."""

    def __init__(self, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__(retry_after=retry_after)


class HostSlots:
    """At most ``slots`` holders at once over every process that uses ``directory``.

    Slot ``i`` is held by an exclusive ``flock`` on ``directory/slot-i``. A lock belongs to
    an open file description, so two threads of one process exclude each other as two
    processes do, and the kernel releases it when its holder dies: a killed worker never
    leaks a slot.
    """

    def __init__(self, directory: Path, slots: int) -> None:
        """Use ``slots`` lock files in ``directory`` (made 0700 if missing)."""
        if slots < 1:
            raise ValueError("a host budget needs at least one slot")
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.paths = tuple(directory / f"argon2-slot-{index}" for index in range(slots))

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one free slot for the block, or raise ``Busy`` at once if none is free."""
        for path in self.paths:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                yield
            finally:
                os.close(fd)  # releases the lock
            return
        raise Busy()

    def any_free(self) -> bool:
        """Whether a slot is free right now (a hint: it may be taken a moment later)."""
        for path in self.paths:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            else:
                return True
            finally:
                os.close(fd)
        return False


class Argon2Budget:
    """How many Argon2id runs may be in progress at once: per process, and per host."""

    def __init__(self, slots: int, host: HostSlots | None = None) -> None:
        """Allow ``slots`` runs at once in this process (at least one), and as many as
        ``host`` has free slots on the machine (None: no host-wide bound)."""
        if slots < 1:
            raise ValueError("the Argon2id budget needs at least one slot")
        self.slots = slots
        self.semaphore = threading.BoundedSemaphore(slots)
        self.host = host

    def any_free(self) -> bool:
        """Whether a run could start right now (a hint, for refusing a flood cheaply)."""
        if not self.semaphore.acquire(blocking=False):
            return False
        self.semaphore.release()
        return self.host is None or self.host.any_free()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot for the block, or raise ``Busy`` at once if none is free."""
        if not self.semaphore.acquire(blocking=False):
            raise Busy()
        try:
            if self.host is None:
                yield
            else:
                with self.host.slot():
                    yield
        finally:
            self.semaphore.release()


class PageCache:
    """Rendered "busy" pages, by key (endpoint and language), each kept ``ttl`` seconds.

    A flood is answered "busy" many times a second; rendering the page each time (the
    instance settings read, the template) would be most of the cost of a refusal. The pages
    hold nothing of a request or a session, and an admin's change to the settings shows
    within ``ttl``.
    """

    def __init__(self, ttl: float = 10.0) -> None:
        """Keep each page ``ttl`` seconds."""
        self.ttl = ttl
        self._pages: dict[tuple[str, str], tuple[float, str]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> str | None:
        """The page kept for ``key``, if it is still fresh."""
        with self._lock:
            found = self._pages.get(key)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def put(self, key: tuple[str, str], page: str) -> None:
        """Keep ``page`` for ``key``."""
        with self._lock:
            self._pages[key] = (time.monotonic() + self.ttl, page)

    def page(self, key: tuple[str, str], render: Callable[[], tuple[tuple[str, str], str]]) -> str:
        """The page for ``key``; on a miss, ``render()`` gives the page and the key it
        really has (the language it was rendered in may differ), and it is kept."""
        found = self.get(key)
        if found is not None:
            return found
        real_key, page = render()
        self.put(real_key, page)
        return page
