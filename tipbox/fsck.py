"""Find and repair what a crash (or damage) leaves between the database and the blob store.

A submission writes its blobs first and its rows after (``tipbox.items``), deletions go
the other way (rows, then blobs after the commit), and a re-wrap moves wraps in batches
(``tipbox.rotation``). A process killed at any point therefore leaves, at worst:

- **leftovers**, which repair removes without losing anything: blobs no item names
  (``orphan_blobs``), temporary files of unfinished writes (``stale_temp_files``), wraps
  to retired keys beside a wrap the newsroom can still open (``retired_wraps``);
- **information**, which is not damage: a re-wrap cut short (wraps still to retiring keys:
  ``tipbox keys rewrap`` resumes it), leftovers too young to judge (an upload in progress
  writes its blob before its row commits);

and never **damage**: items the newsroom cannot read. Damage comes from outside (a disk
error, a partial restore, a hand-edited database) and is reported: items whose blob is
missing or has the wrong size, items with no wrap, items wrapped only to retired keys or
to no newsroom key, directory entries that do not verify. Only the first three are
repaired, and only when asked (``delete_unreadable``): their content key or body is gone
for good. An item wrapped only to retired keys is never deleted: a backup taken before
the retirement may still open it (docs/fsck.md).

No secret key is needed: the check reads row metadata, ciphertext sizes and the signed
directory (verified against the identity public key). ``check`` runs in the caller's
transaction and changes nothing; ``repair`` re-checks each finding in the caller's
transaction before acting on it; ``run_fsck`` does both on an engine, the way
``tipbox fsck`` runs them.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any, Final

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from tipbox import audit, conversations
from tipbox.config import Config
from tipbox.crypto.directory import Status
from tipbox.crypto.envelope import Kind
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import PublicKeys, Role
from tipbox.db import make_session_factory, scrub, transaction
from tipbox.directory import verified
from tipbox.models import DirectoryEntry, Item, Wrap
from tipbox.storage import DEFAULT_STALE_SECONDS, BlobNotFoundError, BlobStore

AUDIT_ACTION: Final = "fsck.repair"
# Newsroom keys whose wraps the newsroom opens: the current key and retiring ones.
_READABLE: Final = frozenset({Status.CURRENT, Status.RETIRING})


def default_min_age(config: Config) -> float:
    """How old a blob no item names, or a temporary file, must be to count as a leftover.

    A blob appears when its part has arrived, and its row commits when the whole request
    has: up to the slowest upload later (``Config.slowest_upload_seconds``). Never less
    than a day, the store's own idea of a stale write.
    """
    return float(max(DEFAULT_STALE_SECONDS, config.slowest_upload_seconds))


@dataclass(frozen=True)
class ItemRef:
    """An item as the report names it: what an admin already sees, never its source."""

    item_id: str  # public id, hex
    kind: str  # message, file, reply, note
    blob_id: str


@dataclass(frozen=True)
class WrongSize:
    """An item whose blob is not the size its row records."""

    item: ItemRef
    expected: int
    found: int


@dataclass(frozen=True)
class RetiredWrap:
    """A wrap to a retired newsroom key, of an item that keeps a readable wrap."""

    wrap_id: int
    item_id: str
    key: str  # the retired key's short id


@dataclass(frozen=True)
class Report:
    """What ``check`` found. Tuples list findings; plain ints count information."""

    checked_at: float
    min_age_seconds: float
    blobs: int
    items: int
    # Leftovers: repair removes them; nothing anyone could read goes with them.
    orphan_blobs: tuple[str, ...] = ()
    stale_temp_files: tuple[str, ...] = ()
    retired_wraps: tuple[RetiredWrap, ...] = ()
    # Damage: the newsroom cannot read these.
    missing_blobs: tuple[ItemRef, ...] = ()
    wrong_size: tuple[WrongSize, ...] = ()
    no_wraps: tuple[ItemRef, ...] = ()
    retired_only: tuple[ItemRef, ...] = ()
    no_newsroom_wrap: tuple[ItemRef, ...] = ()
    unverified_keys: tuple[str, ...] = ()
    # Information: not damage.
    young_blobs: int = 0
    young_temp_files: int = 0
    rewrap_pending: int = 0

    @property
    def leftovers(self) -> int:
        """How many findings repair removes without losing anything."""
        return len(self.orphan_blobs) + len(self.stale_temp_files) + len(self.retired_wraps)

    @property
    def unreadable(self) -> tuple[ItemRef, ...]:
        """Items whose body or content key is gone: ``delete_unreadable`` deletes them."""
        return self.missing_blobs + tuple(found.item for found in self.wrong_size) + self.no_wraps

    @property
    def damage(self) -> int:
        """How many findings mean something the newsroom cannot read."""
        return (
            len(self.unreadable)
            + len(self.retired_only)
            + len(self.no_newsroom_wrap)
            + len(self.unverified_keys)
        )

    @property
    def clean(self) -> bool:
        """No leftover and no damage (information does not count)."""
        return self.leftovers == 0 and self.damage == 0

    def as_dict(self) -> dict[str, Any]:
        """The report as plain JSON values, with its totals."""
        data = asdict(self)
        data.update(leftovers=self.leftovers, damage=self.damage, clean=self.clean)
        return data


@dataclass(frozen=True)
class Repaired:
    """What ``repair`` removed."""

    orphan_blobs: int = 0
    temp_files: int = 0
    retired_wraps: int = 0
    unreadable_items: int = 0

    @property
    def total(self) -> int:
        """Everything removed."""
        return self.orphan_blobs + self.temp_files + self.retired_wraps + self.unreadable_items


@dataclass(frozen=True)
class FsckResult:
    """A run: what was found, what was repaired (None: a dry run), and what is left (the
    same report as ``found`` after a dry run)."""

    found: Report
    repaired: Repaired | None
    remaining: Report


# --- check --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Keys:
    """Newsroom keys by id with their verified status, and the ones that did not verify."""

    status: dict[bytes, Status]
    unverified: tuple[str, ...]


def _newsroom_keys(session: Session, identity: PublicKeys) -> _Keys:
    status: dict[bytes, Status] = {}
    unverified: list[str] = []
    for row in session.scalars(select(DirectoryEntry).order_by(DirectoryEntry.serial)):
        try:
            entry = verified(row, identity)
        except Rejected:
            # Its status cannot be trusted: nothing is deleted because of it.
            unverified.append(_short(row.key_id))
            continue
        if entry.role == Role.NEWSROOM:
            status[entry.key_id] = entry.status
    return _Keys(status, tuple(unverified))


def _ref(item_id: bytes, kind: int, blob_id: str) -> ItemRef:
    try:
        name = Kind(kind).name.lower()
    except ValueError:
        name = str(kind)
    return ItemRef(item_id.hex(), name, blob_id)


def _orphans_by_age(
    store: BlobStore, listed: set[str], named: set[str], cutoff: float
) -> tuple[list[str], int]:
    """The listed blobs no row names that are old enough, and how many are too young."""
    orphans, young = [], 0
    for blob_id in sorted(listed - named):
        try:
            changed = store.changed_at(blob_id)
        except BlobNotFoundError:
            continue  # deleted meanwhile
        if changed <= cutoff:
            orphans.append(blob_id)
        else:
            young += 1
    return orphans, young


def check(
    session: Session,
    store: BlobStore,
    identity: PublicKeys,
    *,
    min_age_seconds: float,
    now: float | None = None,
) -> Report:
    """Compare the item rows, their wraps and the blob store; change nothing.

    ``identity`` verifies the directory entries whose status decides which wraps are
    readable. Blobs and temporary files changed less than ``min_age_seconds`` before
    ``now`` are counted as too young to judge, never as leftovers.
    """
    checked_at = time.time() if now is None else now
    cutoff = checked_at - min_age_seconds
    # The store is listed before the rows are read: a blob whose row commits in between is
    # then named; the other order could take it for an orphan (were it not young anyway).
    listed = set(store.ids())
    temps = store.incomplete()
    items = session.execute(
        select(Item.id, Item.public_id, Item.kind, Item.blob_id, Item.blob_size).order_by(Item.id)
    ).all()
    named = {row.blob_id for row in items}
    orphans, young = _orphans_by_age(store, listed, named, cutoff)
    missing: list[ItemRef] = []
    wrong: list[WrongSize] = []
    for row in items:
        ref = _ref(row.public_id, row.kind, row.blob_id)
        # Asked now, not looked up in ``listed``: a blob whose row committed after the
        # listing is there.
        try:
            size = store.size(row.blob_id)
        except BlobNotFoundError:
            missing.append(ref)
            continue
        if size != row.blob_size:
            wrong.append(WrongSize(ref, row.blob_size, size))
    keys = _newsroom_keys(session, identity)
    wraps = _wraps_report(session, keys, {row.id: row for row in items})
    return Report(
        checked_at=checked_at,
        min_age_seconds=min_age_seconds,
        blobs=len(listed),
        items=len(items),
        orphan_blobs=tuple(orphans),
        stale_temp_files=tuple(t.name for t in temps if t.changed_at <= cutoff),
        retired_wraps=wraps.retired_wraps,
        missing_blobs=tuple(missing),
        wrong_size=tuple(wrong),
        no_wraps=wraps.no_wraps,
        retired_only=wraps.retired_only,
        no_newsroom_wrap=wraps.no_newsroom_wrap,
        unverified_keys=keys.unverified,
        young_blobs=young,
        young_temp_files=sum(t.changed_at > cutoff for t in temps),
        rewrap_pending=wraps.rewrap_pending,
    )


@dataclass(frozen=True)
class _WrapFindings:
    retired_wraps: tuple[RetiredWrap, ...]
    no_wraps: tuple[ItemRef, ...]
    retired_only: tuple[ItemRef, ...]
    no_newsroom_wrap: tuple[ItemRef, ...]
    rewrap_pending: int


def _wraps_report(session: Session, keys: _Keys, items: dict[int, Any]) -> _WrapFindings:
    by_item: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
    for wrap_id, item_id, key_id in session.execute(
        select(Wrap.id, Wrap.item_id, Wrap.key_id).order_by(Wrap.id)
    ):
        by_item[item_id].append((wrap_id, key_id))
    retired_wraps: list[RetiredWrap] = []
    no_wraps, retired_only, no_newsroom = [], [], []
    pending = 0
    for item_id, row in items.items():
        wraps = by_item.get(item_id, [])
        ref = _ref(row.public_id, row.kind, row.blob_id)
        statuses = [(wrap_id, key_id, keys.status.get(key_id)) for wrap_id, key_id in wraps]
        pending += sum(status == Status.RETIRING for _, _, status in statuses)
        retired = [(w, k) for w, k, status in statuses if status == Status.RETIRED]
        if not wraps:
            no_wraps.append(ref)
        elif any(status in _READABLE for _, _, status in statuses):
            retired_wraps += [RetiredWrap(w, ref.item_id, _short(k)) for w, k in retired]
        elif retired:
            retired_only.append(ref)
        else:
            no_newsroom.append(ref)
    return _WrapFindings(
        tuple(retired_wraps), tuple(no_wraps), tuple(retired_only), tuple(no_newsroom), pending
    )


def _short(key_id: bytes) -> str:
    # A key's short id, as `tipbox keys status` prints it (PublicKeys.short_id).
    return key_id[:4].hex().upper()


# --- repair -------------------------------------------------------------------------------


def repair(
    session: Session,
    store: BlobStore,
    identity: PublicKeys,
    report: Report,
    *,
    delete_unreadable: bool = False,
    now: float | None = None,
) -> Repaired:
    """Remove ``report``'s leftovers (and, with ``delete_unreadable``, its unreadable
    items), each checked again first; record one ``fsck.repair`` audit event with counts.

    Runs in the caller's transaction; files go at once (they are leftovers whatever the
    transaction does), rows and the audit event with the commit, and the blobs of deleted
    items after it. Items wrapped only to retired keys and unverified directory entries
    are never touched.
    """
    moment = time.time() if now is None else now
    blobs = _remove_orphans(session, store, report, moment)
    temps = store.cleanup_incomplete(report.min_age_seconds, now=moment)
    wraps = _remove_retired_wraps(session, identity, report.retired_wraps)
    items = _remove_unreadable(session, store, report) if delete_unreadable else 0
    done = Repaired(blobs, temps, wraps, items)
    if done.total:
        audit.record(
            session,
            None,
            AUDIT_ACTION,
            orphan_blobs=blobs,
            temp_files=temps,
            retired_wraps=wraps,
            unreadable_items=items,
        )
    return done


def _remove_orphans(session: Session, store: BlobStore, report: Report, now: float) -> int:
    """Delete the report's orphan blobs that no row names now and that are still old."""
    candidates = list(report.orphan_blobs)
    if not candidates:
        return 0
    named = set(session.scalars(select(Item.blob_id).where(Item.blob_id.in_(candidates))))
    removed = 0
    for blob_id in candidates:
        if blob_id in named:
            continue
        try:
            if store.changed_at(blob_id) > now - report.min_age_seconds:
                continue
        except BlobNotFoundError:
            continue
        removed += store.delete(blob_id)
    return removed


def _remove_retired_wraps(
    session: Session, identity: PublicKeys, found: Iterable[RetiredWrap]
) -> int:
    """Delete wraps to retired keys whose item still has a wrap to a readable key."""
    wrap_ids = [wrap.wrap_id for wrap in found]
    if not wrap_ids:
        return 0
    keys = _newsroom_keys(session, identity)
    rows = session.execute(
        select(Wrap.id, Wrap.item_id, Wrap.key_id).where(Wrap.id.in_(wrap_ids))
    ).all()
    readable = [key for key, status in keys.status.items() if status in _READABLE]
    kept = set(
        session.scalars(
            select(Wrap.item_id).where(
                Wrap.item_id.in_([row.item_id for row in rows]), Wrap.key_id.in_(readable)
            )
        )
    )
    doomed = [
        row.id
        for row in rows
        if keys.status.get(row.key_id) == Status.RETIRED and row.item_id in kept
    ]
    if doomed:
        session.execute(
            delete(Wrap).where(Wrap.id.in_(doomed)).execution_options(synchronize_session=False)
        )
    return len(doomed)


def _still_unreadable(session: Session, store: BlobStore, ref: ItemRef) -> bool:
    row = session.execute(
        select(Item.id, Item.blob_id, Item.blob_size).where(
            Item.public_id == bytes.fromhex(ref.item_id)
        )
    ).one_or_none()
    if row is None:
        return False
    wraps = session.scalar(select(func.count()).where(Wrap.item_id == row.id))
    if not wraps:
        return True
    try:
        expected: int = row.blob_size
        return store.size(row.blob_id) != expected
    except BlobNotFoundError:
        return True


def _remove_unreadable(session: Session, store: BlobStore, report: Report) -> int:
    """Delete the items whose blob or content key is gone, as a journalist's delete does."""
    removed = 0
    for ref in report.unreadable:
        if _still_unreadable(session, store, ref):
            removed += conversations.delete_item(session, store, bytes.fromhex(ref.item_id))
    return removed


# --- a whole run --------------------------------------------------------------------------


def run_fsck(
    engine: Engine,
    store: BlobStore,
    identity_of: Callable[[Session], PublicKeys],
    *,
    min_age_seconds: float,
    repair_leftovers: bool = False,
    delete_unreadable: bool = False,
    now: float | None = None,
) -> FsckResult:
    """Check (read-only), and with ``repair_leftovers`` repair in one transaction, scrub
    what the repair deleted from the database's free pages, and check again.

    ``identity_of`` gives the identity public key to verify the directory with (the CLI
    reads it from ``keys/`` and checks the database agrees).
    """
    # One snapshot for the whole check (SQLite's read transactions are one already): an
    # item deleted meanwhile must not look like an item without wraps.
    snapshot = (
        engine.execution_options(isolation_level="REPEATABLE READ")
        if engine.dialect.name == "postgresql"
        else engine
    )
    reads = make_session_factory(snapshot, read_only=True)
    with transaction(reads) as session:
        found = check(
            session, store, identity_of(session), min_age_seconds=min_age_seconds, now=now
        )
    if not repair_leftovers:
        return FsckResult(found, None, found)
    with transaction(make_session_factory(engine)) as session:
        done = repair(
            session,
            store,
            identity_of(session),
            found,
            delete_unreadable=delete_unreadable,
            now=now,
        )
    if done.retired_wraps or done.unreadable_items:
        scrub(engine)
    with transaction(reads) as session:
        remaining = check(
            session, store, identity_of(session), min_age_seconds=min_age_seconds, now=now
        )
    return FsckResult(found, done, remaining)
