"""Room for files: a source's storage cap and the blob disk's floor of free space
(docs/abuse.md, "Disk floods").

Files are refused, before any byte of one is written, when the blob disk's free space less
the request's size would fall under ``Config.min_free_disk_bytes``, or when the source's
own messages and files plus the request would pass ``Config.source_storage_cap_bytes``.
Messages are still accepted then: they are small, and a source must always be able to say
something. Below both checks, a disk that fills anyway (several uploads at once, another
program) gives ``ENOSPC`` while a blob is written, which ``is_out_of_space`` recognises so
that the app refuses the submission instead of failing.
"""

from __future__ import annotations

import errno
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tipbox.config import Config
from tipbox.models import KIND_FILE, KIND_MESSAGE, Item, Source
from tipbox.submission_rules import Limits

DISK_FULL: Final = "disk_full"
STORAGE_CAP: Final = "storage_cap"
_OUT_OF_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


@dataclass(frozen=True)
class Room:
    """How many more bytes of files a source may send now, and which bound sets it."""

    bytes: int
    limited_by: str  # DISK_FULL or STORAGE_CAP


@dataclass(frozen=True)
class StorageUse:
    """The blob store as journalists see it: what submissions take, and the disk."""

    item_bytes: int
    items: int
    disk_free: int
    disk_total: int
    floor: int

    @property
    def below_floor(self) -> bool:
        """True when files are refused for lack of disk space."""
        return self.disk_free < self.floor


def source_usage(session: Session, source_public_id: bytes) -> int:
    """The bytes the source's own messages and files take in the blob store."""
    used = session.scalar(
        select(func.coalesce(func.sum(Item.blob_size), 0))
        .join(Source, Item.source_id == Source.id)
        .where(Source.public_id == source_public_id, Item.kind.in_((KIND_MESSAGE, KIND_FILE)))
    )
    return int(used or 0)


def disk_free(path: Path) -> int:
    """Free bytes on the file system that holds ``path`` (for an unprivileged user)."""
    return shutil.disk_usage(_existing(path)).free


def _existing(path: Path) -> Path:
    """``path``, or its nearest existing parent (the blob store makes its folder lazily)."""
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def room_for(config: Config, free: int, used: int) -> Room:
    """The room a source with ``used`` bytes has when the blob disk has ``free`` bytes."""
    disk_room = free - config.min_free_disk_bytes
    if config.source_storage_cap_bytes <= 0:
        return Room(max(0, disk_room), DISK_FULL)
    cap_room = config.source_storage_cap_bytes - used
    if disk_room <= cap_room:
        return Room(max(0, disk_room), DISK_FULL)
    return Room(max(0, cap_room), STORAGE_CAP)


def limits_within(limits: Limits, room: Room, incoming: int = 0) -> Limits:
    """``limits`` for a request of ``incoming`` bytes when a source has ``room``.

    No file at all (with the bound as the reason) when the request could not fit; else
    each file at most the room. Limits that take no file are returned as they are.
    """
    if not limits.accepts_files:
        return limits
    if room.bytes <= 0 or incoming > room.bytes:
        return replace(limits, max_files=0, no_files_reason=room.limited_by)
    if room.bytes < limits.max_file_bytes:
        return replace(limits, max_file_bytes=room.bytes)
    return limits


def storage_use(session: Session, config: Config) -> StorageUse:
    """What the blob store holds for submissions and replies, and the disk's state."""
    row = session.execute(
        select(func.coalesce(func.sum(Item.blob_size), 0), func.count(Item.id))
    ).one()
    disk = shutil.disk_usage(_existing(config.blob_dir))
    return StorageUse(int(row[0]), int(row[1]), disk.free, disk.total, config.min_free_disk_bytes)


def is_out_of_space(error: BaseException) -> bool:
    """True for the errors of a full disk or an exhausted quota."""
    return isinstance(error, OSError) and error.errno in _OUT_OF_SPACE
