"""The ciphertext blob store: item bodies, written once, read as streams, deleted whole.

``BlobStore`` is the interface the domain layer uses; ``FilesystemBlobStore`` implements it
on a local directory (the embedded default and the one-VPS install). Another backend (an
S3-compatible store, say) implements the same protocol.

Blobs hold only ciphertext (docs/envelope.md 8.2), but the store still leaks as little as it
can: ids are random (they say nothing about the source or the time), file and directory
times are set to a fixed epoch so that they do not record when a source wrote, reads do not
update access times, and files are readable by their owner only. What the file system keeps
regardless (inode change times, freed blocks) is listed in the threat model.

A write is atomic: the blob appears whole under its id, or not at all. It is written to a
temporary file in the destination directory, flushed to disk, then renamed into place and
the directory flushed, so a crash never leaves a partial blob under a real id. Temporary
files a crash leaves behind are found by ``stale_temp_files`` and removed by
``cleanup_incomplete``; ``tipbox fsck`` (``tipbox.fsck``) runs them.

Age: a blob's modification time is the fixed epoch, so it says nothing about when the blob
was written. Its *inode change time* does: the ``utime`` and the rename that publish a
blob both set it to the moment of writing, and no system call sets it back. So the age of
a blob or temporary file is measured from the later of its modification and change times
(``changed_at``, ``incomplete``): a blob that no item names yet is treated as an upload in
progress until it is older than an upload can take (docs/fsck.md).
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from tipbox.config import Config

BLOB_ID_RE = re.compile(r"[0-9a-f]{32}")
FANOUT_RE = re.compile(r"[0-9a-f]{2}")
TEMP_PREFIX = ".tmp-"
# Every blob and blob directory carries this access and modification time.
FIXED_TIME = 0
# A temporary file younger than this may belong to an upload still in progress (a slow
# upload over Tor can take hours); older ones are leftovers of a crash.
DEFAULT_STALE_SECONDS = 24 * 3600

_O_NOATIME: int = getattr(os, "O_NOATIME", 0)
_O_NOFOLLOW: int = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC: int = getattr(os, "O_CLOEXEC", 0)
_O_DIRECTORY: int = getattr(os, "O_DIRECTORY", 0)


class BlobNotFoundError(FileNotFoundError):
    """No blob has this id."""


@dataclass(frozen=True)
class Incomplete:
    """A temporary file of a write that has not finished: an upload in progress, or what a
    crash left. ``name`` is relative to the store (``ab/.tmp-…``); ``changed_at`` is when
    it was last written to (seconds since the epoch)."""

    name: str
    changed_at: float


def new_blob_id() -> str:
    """Return a fresh random blob id: 32 lowercase hex digits."""
    return secrets.token_hex(16)


def check_blob_id(blob_id: str) -> str:
    """Return ``blob_id`` if it is 32 lowercase hex digits; raise ``ValueError`` otherwise.

    Every path the store builds starts here, so a crafted id cannot leave the store.
    """
    if not isinstance(blob_id, str) or BLOB_ID_RE.fullmatch(blob_id) is None:
        raise ValueError("invalid blob id")
    return blob_id


class BlobStore(Protocol):
    """Where item bodies (ciphertext) live, addressed by random 32-hex-digit ids."""

    def new_id(self) -> str:
        """Return a fresh, unused blob id."""
        ...

    def writer(self, blob_id: str) -> AbstractContextManager[BinaryIO]:
        """Write a new blob: it exists once the block exits normally, never partially."""
        ...

    def open(self, blob_id: str) -> BinaryIO:
        """Open a blob for reading; raise ``BlobNotFoundError`` if there is none."""
        ...

    def size(self, blob_id: str) -> int:
        """Return a blob's size in bytes; raise ``BlobNotFoundError`` if there is none."""
        ...

    def exists(self, blob_id: str) -> bool:
        """Return whether a blob exists."""
        ...

    def delete(self, blob_id: str) -> bool:
        """Delete a blob; return whether it existed."""
        ...

    def ids(self) -> Iterator[str]:
        """Yield the id of every stored blob (for consistency checks against the database)."""
        ...

    def changed_at(self, blob_id: str) -> float:
        """When the blob was written (seconds since the epoch; ``BlobNotFoundError``)."""
        ...

    def incomplete(self) -> list[Incomplete]:
        """Every write not finished: uploads in progress and crash leftovers alike."""
        ...

    def cleanup_incomplete(
        self, max_age_seconds: float = DEFAULT_STALE_SECONDS, *, now: float | None = None
    ) -> int:
        """Remove what interrupted writes older than ``max_age_seconds`` left; return a count."""
        ...


def blob_store_for(config: Config) -> FilesystemBlobStore:
    """The instance's blob store, as ``config`` describes it (folder, shared group)."""
    return FilesystemBlobStore(config.blob_dir, shared_group=config.blob_group_shared)


class FilesystemBlobStore:
    """Blobs as files under ``root``, fanned out by the first two digits of their id."""

    def __init__(self, root: Path | str, *, shared_group: bool = False) -> None:
        """Use ``root`` (created with mode 0700 on the first write).

        ``shared_group``: the two apps run as two users sharing a group (deploy/): the
        source app writes blobs, the journalist app reads and deletes them. Directories are
        then 2770 (the group is inherited) and blobs 0640; still nothing for anyone else.
        """
        self.root = Path(root)
        self._file_mode = 0o640 if shared_group else 0o600
        self._dir_mode = 0o2770 if shared_group else 0o700

    def new_id(self) -> str:
        """Return a fresh random blob id not already in use."""
        while True:
            blob_id = new_blob_id()
            if not self.exists(blob_id):
                return blob_id

    def path(self, blob_id: str) -> Path:
        """Return the file a blob lives in."""
        check_blob_id(blob_id)
        return self.root / blob_id[:2] / blob_id

    @contextmanager
    def writer(self, blob_id: str) -> Iterator[BinaryIO]:
        """Yield a binary file; on normal exit it becomes the blob ``blob_id``.

        The data goes to a temporary file (created exclusively, mode 0600) in the blob's
        directory; on success it is flushed, its times set to the fixed epoch, renamed into
        place and the directory flushed. If the block raises, the temporary file is removed
        and no blob appears. Refuses an id that already exists: a blob is never rewritten.
        """
        final = self.path(blob_id)
        directory = final.parent
        self._make_dir(directory)
        if final.exists():
            raise FileExistsError("blob already exists")
        temp = directory / f"{TEMP_PREFIX}{blob_id}-{secrets.token_hex(8)}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC
        fd = os.open(temp, flags, 0o600)
        try:
            # The umask can only take bits away; make the mode exact.
            os.fchmod(fd, self._file_mode)
            handle = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            _unlink_quietly(temp)
            raise
        try:
            with handle:
                yield handle
                handle.flush()
                os.utime(handle.fileno(), times=(FIXED_TIME, FIXED_TIME))
                os.fsync(handle.fileno())
            if final.exists():
                raise FileExistsError("blob already exists")
            os.rename(temp, final)
        except BaseException:
            _unlink_quietly(temp)
            _set_fixed_times(directory)
            raise
        _set_fixed_times(directory)
        _fsync_dir(directory)

    def open(self, blob_id: str) -> BinaryIO:
        """Open a blob for reading, without updating its access time where the OS allows."""
        path = self.path(blob_id)
        flags = os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC
        try:
            try:
                fd = os.open(path, flags | _O_NOATIME)
            except PermissionError:
                # O_NOATIME is refused for files another user owns.
                fd = os.open(path, flags)
        except FileNotFoundError:
            raise BlobNotFoundError("no such blob") from None
        return os.fdopen(fd, "rb")

    def size(self, blob_id: str) -> int:
        """Return the blob's size in bytes."""
        try:
            return os.stat(self.path(blob_id), follow_symlinks=False).st_size
        except FileNotFoundError:
            raise BlobNotFoundError("no such blob") from None

    def exists(self, blob_id: str) -> bool:
        """Return whether the blob exists."""
        return self.path(blob_id).is_file()

    def delete(self, blob_id: str) -> bool:
        """Delete the blob and flush its directory; return whether it existed.

        The file is unlinked, not overwritten: on journaling file systems and SSDs
        overwriting in place does not reach the old blocks anyway. The blob is ciphertext
        whose key goes with its wraps, which are deleted first (DESIGN 4.5).
        """
        path = self.path(blob_id)
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False
        _set_fixed_times(path.parent)
        _fsync_dir(path.parent)
        return True

    def ids(self) -> Iterator[str]:
        """Yield every stored blob id, in sorted order."""
        for directory in self._fanout_dirs():
            for name in sorted(os.listdir(directory)):
                if BLOB_ID_RE.fullmatch(name) and name.startswith(directory.name):
                    yield name

    def changed_at(self, blob_id: str) -> float:
        """When the blob was written: the later of its modification and change times (the
        former is the fixed epoch; see the module docstring)."""
        try:
            return _last_change(os.stat(self.path(blob_id), follow_symlinks=False))
        except FileNotFoundError:
            raise BlobNotFoundError("no such blob") from None

    def incomplete(self) -> list[Incomplete]:
        """Every temporary file, in sorted order, with when it was last written to."""
        found: list[Incomplete] = []
        for directory in self._fanout_dirs():
            for name in sorted(os.listdir(directory)):
                if not name.startswith(TEMP_PREFIX):
                    continue
                try:
                    changed = _last_change(os.stat(directory / name, follow_symlinks=False))
                except FileNotFoundError:
                    continue  # finished or cleaned up meanwhile
                found.append(Incomplete(f"{directory.name}/{name}", changed))
        return found

    def stale_temp_files(
        self, max_age_seconds: float = DEFAULT_STALE_SECONDS, *, now: float | None = None
    ) -> list[Path]:
        """Return temporary files not written to for ``max_age_seconds`` (crash leftovers).

        Judged by the later of modification and change time: a write that set the fixed
        time just before its rename must not look decades old.
        """
        cutoff = (time.time() if now is None else now) - max_age_seconds
        return [self.root / entry.name for entry in self.incomplete() if entry.changed_at <= cutoff]

    def cleanup_incomplete(
        self, max_age_seconds: float = DEFAULT_STALE_SECONDS, *, now: float | None = None
    ) -> int:
        """Remove stale temporary files; return how many were removed."""
        removed = 0
        for path in self.stale_temp_files(max_age_seconds, now=now):
            if _unlink_quietly(path):
                removed += 1
                _set_fixed_times(path.parent)
        return removed

    def _fanout_dirs(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return [
            self.root / name
            for name in sorted(os.listdir(self.root))
            if FANOUT_RE.fullmatch(name) and (self.root / name).is_dir()
        ]

    def _make_dir(self, directory: Path) -> None:
        if directory.is_dir():
            return
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            return  # another writer made it
        os.chmod(directory, self._dir_mode)
        _set_fixed_times(directory)
        _set_fixed_times(self.root)
        _fsync_dir(self.root)


def _last_change(st: os.stat_result) -> float:
    return max(st.st_mtime, st.st_ctime)


def _unlink_quietly(path: Path) -> bool:
    with suppress(FileNotFoundError):
        os.unlink(path)
        return True
    return False


def _set_fixed_times(path: Path) -> None:
    # A directory's times change whenever an entry is added or removed: reset them too.
    with suppress(FileNotFoundError):
        os.utime(path, times=(FIXED_TIME, FIXED_TIME), follow_symlinks=False)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
