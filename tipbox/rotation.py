"""The newsroom key's lifecycle: rotate, re-wrap, sweep, retire (DESIGN 4.5, docs/keys.md).

- ``rotate``: a new newsroom key, signed into the directory as *current* and granted to
  every account entitled to newsroom keys and to the recovery key; the old current key
  turns *retiring* and still accepts commits for ``Config.key_grace_seconds``
  (``submissions.newsroom_key_for_commit`` applies the same rule).
- ``rewrap_batch``: moves up to ``limit`` wraps from retiring keys to the current key. Each
  item's new wrap is added and its old one deleted in the caller's transaction, so a run
  killed mid-batch leaves every item wrapped to one key or the other, never both, never
  neither, and running it again continues where the last commit left it.
- ``finish_rewrap``: for each retiring key whose grace period is over, a final sweep of
  what is left under the key's exclusive commit lock, after which no commit to it can land;
  and the audit events of the run.
- ``retire``: under the same lock, refuses while the grace period lasts or anything is
  still wrapped to the key; otherwise signs it *retired* and deletes its grants.

Private side: seeds are opened from the acting admin's grants in each transaction, never
cached (DESIGN 4.6). Every function runs in the caller's transaction and never commits;
time is passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from sqlalchemy import ColumnElement, delete, func, insert, select
from sqlalchemy.orm import Session

from tipbox import audit, directory, entitlements, keyring
from tipbox.crypto import envelope
from tipbox.crypto.directory import Entry, Status
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import KeyPair, PublicKeys, Role, keypair_from_seed, new_seed
from tipbox.models import (
    WRAP_ALGORITHM,
    DirectoryEntry,
    Grant,
    NewsroomKey,
    Wrap,
    today,
)
from tipbox.submissions import commits_accepted_until, lock_newsroom_key

# Wraps per re-wrap transaction: about 0.1 s of sealed-box work, the longest a batch holds
# SQLite's write lock (and so delays a source's submission).
DEFAULT_BATCH: Final = 500


class NotReady(Exception):  # noqa: N818 - a state the operator is told about
    """A key cannot be swept or retired yet; the message says why and what to do."""


# --- reading the keys afresh -------------------------------------------------------------


def _fresh_entries(
    session: Session, identity: PublicKeys, *criteria: ColumnElement[bool]
) -> list[Entry]:
    """Verified newsroom entries matching ``criteria``, read from the database now (not
    from objects an earlier transaction of this session left in its identity map)."""
    rows = session.scalars(
        select(DirectoryEntry)
        .where(DirectoryEntry.role == int(Role.NEWSROOM), *criteria)
        .order_by(DirectoryEntry.serial)
        .execution_options(populate_existing=True)
    )
    return [directory.verified(row, identity) for row in rows]


def current_key(session: Session, identity: PublicKeys) -> Entry:
    """The verified current newsroom key, read afresh."""
    found = _fresh_entries(session, identity, DirectoryEntry.status == int(Status.CURRENT))
    if len(found) != 1:
        raise Rejected("directory.current: there must be exactly one current newsroom key")
    return found[0]


def retiring_keys(session: Session, identity: PublicKeys) -> list[Entry]:
    """The verified retiring newsroom keys, oldest first, read afresh."""
    return _fresh_entries(session, identity, DirectoryEntry.status == int(Status.RETIRING))


def _lifecycle(session: Session, key_id: bytes) -> NewsroomKey:
    key = session.get(NewsroomKey, key_id, populate_existing=True)
    if key is None:  # an instance made before newsroom_keys existed: start tracking it now
        key = NewsroomKey(key_id=key_id)
        session.add(key)
    return key


def _retiring(session: Session, identity: PublicKeys, key_id: bytes) -> tuple[Entry, NewsroomKey]:
    """The retiring key ``key_id`` and its lifecycle row, or ``NotReady``."""
    row = session.get(DirectoryEntry, key_id, populate_existing=True)
    if row is None:
        raise NotReady("no such key")
    entry = directory.verified(row, identity)
    if entry.role != Role.NEWSROOM or entry.status != Status.RETIRING:
        raise NotReady(f"key {entry.public.short_id} is not a retiring newsroom key")
    return entry, _lifecycle(session, key_id)


def _check_grace_over(entry: Entry, key: NewsroomKey, grace_seconds: int, now: datetime) -> None:
    until = commits_accepted_until(key, grace_seconds)
    if until is None or now <= until:
        when = "unknown" if until is None else until.isoformat(timespec="seconds")
        raise NotReady(
            f"key {entry.public.short_id} still accepts commits until {when} (its grace "
            "period): re-wrap now if you like, sweep and retire after that"
        )


# --- rotate -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rotated:
    """A rotation: the new current key, the one now retiring, how many keys were granted
    the new one, and until when the retiring key accepts commits."""

    current: PublicKeys
    previous: PublicKeys
    grantees: int
    commits_until: datetime


def rotate(
    session: Session,
    identity: PublicKeys,
    holder: KeyPair,
    actor_id: int,
    now: datetime,
    grace_seconds: int,
) -> Rotated:
    """Make a new newsroom key current; the current one turns retiring as of ``now``.

    ``holder`` is the acting admin's key pair: the identity seed is opened from its grant
    to sign both entries. The new seed is granted to every entitled account key and to the
    recovery key, and leaves this function only inside those grants.
    """
    identity_keys = keyring.granted_keypair(
        session, identity, holder, Role.IDENTITY, identity.key_id
    )
    # One directory writer at a time; read the current key only once that is settled.
    keyring.lock_directory(session)
    old = current_key(session, identity)
    seed = new_seed()
    new = keypair_from_seed(Role.NEWSROOM, seed)
    keyring.sign_into_directory(session, identity_keys, old.public, Status.RETIRING)
    keyring.sign_into_directory(session, identity_keys, new.public, Status.CURRENT)
    old_key = _lifecycle(session, old.key_id)
    old_key.retiring_since = now
    session.add(NewsroomKey(key_id=new.key_id, created_on=today()))
    session.flush()
    grantees = entitlements.grantees(session, identity, Role.NEWSROOM)
    for grantee in grantees:
        keyring.grant(session, new, seed, grantee)
    audit.record(
        session, actor_id, "key.rotate", key=new.public.short_id, previous=old.public.short_id
    )
    until = commits_accepted_until(old_key, grace_seconds)
    assert until is not None  # set just above
    return Rotated(new.public, old.public, len(grantees), until)


# --- re-wrap ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """What one re-wrap batch did.

    ``seen``: wraps looked at; ``moved``: per retiring key id, wraps now to the current
    key instead; ``unopened``: wraps that did not open with their key's seed, left as they
    are (their items were unreadable already); ``last_id``: the highest wrap id looked at,
    where the next batch starts.
    """

    seen: int
    last_id: int
    moved: Mapping[bytes, int] = field(default_factory=dict)
    unopened: int = 0

    @property
    def moved_total(self) -> int:
        """Wraps moved, over every key."""
        return sum(self.moved.values())


def wraps_to_move(session: Session, identity: PublicKeys) -> int:
    """How many wraps are to retiring keys (for a progress bar)."""
    key_ids = [entry.key_id for entry in retiring_keys(session, identity)]
    if not key_ids:
        return 0
    count = session.scalar(select(func.count()).where(Wrap.key_id.in_(key_ids)))
    return int(count or 0)


def rewrap_batch(
    session: Session,
    identity: PublicKeys,
    holder: KeyPair,
    *,
    after: int = 0,
    limit: int = DEFAULT_BATCH,
    only: bytes | None = None,
) -> Batch:
    """Move up to ``limit`` wraps (ids above ``after``) from retiring keys (or the retiring
    key ``only``) to the current key, in the caller's transaction.

    Each content key is opened with the retiring key's seed (from ``holder``'s grant) and
    sealed to the current key's verified public key; the new wrap is added and the old one
    deleted together. An item that already has a wrap to the current key keeps that one.
    ``Rejected`` if ``holder`` holds no grant of a retiring key it meets.
    """
    retiring = [entry.key_id for entry in retiring_keys(session, identity)]
    if only is not None:
        retiring = [key_id for key_id in retiring if key_id == only]
    if not retiring:
        return Batch(0, after)
    # FOR UPDATE on PostgreSQL: an item deleted meanwhile waits for this batch, or is gone.
    rows = session.execute(
        select(Wrap.id, Wrap.item_id, Wrap.key_id, Wrap.wrap)
        .where(Wrap.key_id.in_(retiring), Wrap.id > after)
        .order_by(Wrap.id)
        .limit(limit)
        .with_for_update()
    ).all()
    if not rows:
        return Batch(0, after)
    current = current_key(session, identity)
    pairs = {
        key_id: keyring.granted_keypair(session, identity, holder, Role.NEWSROOM, key_id)
        for key_id in {row.key_id for row in rows}
    }
    wrapped = set(
        session.scalars(
            select(Wrap.item_id).where(
                Wrap.item_id.in_([row.item_id for row in rows]), Wrap.key_id == current.key_id
            )
        )
    )
    new_wraps: list[dict[str, object]] = []
    done: list[int] = []
    moved: dict[bytes, int] = {}
    for row in rows:
        pair = pairs[row.key_id]
        try:
            content_key = envelope.unwrap_key(row.wrap, pair.x25519_private, pair.x25519_public)
        except Rejected:
            continue  # counted below; left in place, so retire will refuse and say so
        if row.item_id not in wrapped:
            wrap = envelope.wrap_key(content_key, current.x25519)
            new_wraps.append(
                {
                    "item_id": row.item_id,
                    "key_id": current.key_id,
                    "algorithm": WRAP_ALGORITHM,
                    "wrap": wrap,
                }
            )
            wrapped.add(row.item_id)
        done.append(row.id)
        moved[row.key_id] = moved.get(row.key_id, 0) + 1
    if new_wraps:
        session.execute(insert(Wrap), new_wraps)
    if done:
        session.execute(
            delete(Wrap).where(Wrap.id.in_(done)).execution_options(synchronize_session=False)
        )
    return Batch(len(rows), rows[-1].id, moved, len(rows) - len(done))


def _rewrap_all(
    session: Session, identity: PublicKeys, holder: KeyPair, key_id: bytes, limit: int
) -> Batch:
    """Every wrap to the retiring key ``key_id``, moved in batches of this transaction."""
    after, moved, unopened, seen = 0, 0, 0, 0
    while True:
        batch = rewrap_batch(session, identity, holder, after=after, limit=limit, only=key_id)
        seen, after = seen + batch.seen, batch.last_id
        moved, unopened = moved + batch.moved_total, unopened + batch.unopened
        if batch.seen < limit:
            return Batch(seen, after, {key_id: moved} if moved else {}, unopened)


@dataclass(frozen=True)
class Swept:
    """A retiring key at the end of a re-wrap run: the wraps the run moved from it (its
    batches and the final sweep), whether the sweep ran (its grace period is over), and
    how many wraps are left (only those that do not open, once swept)."""

    key: PublicKeys
    moved: int
    swept: bool
    left: int
    commits_until: datetime | None


def finish_rewrap(
    session: Session,
    identity: PublicKeys,
    holder: KeyPair,
    actor_id: int,
    moved: Mapping[bytes, int],
    now: datetime,
    grace_seconds: int,
    *,
    limit: int = DEFAULT_BATCH,
) -> list[Swept]:
    """End a re-wrap run: sweep each retiring key whose grace period is over, and record
    one ``key.rewrap`` audit event per key with the wraps the run moved (``moved``, from
    its batches, plus the sweep's).

    The sweep holds the key's exclusive commit lock (``submissions.lock_newsroom_key``):
    a commit that passed its check before the grace period ended has committed before the
    lock is granted, and is swept; any later one is refused, the grace period being over.
    """
    results = []
    for entry in retiring_keys(session, identity):
        until = commits_accepted_until(_lifecycle(session, entry.key_id), grace_seconds)
        count = moved.get(entry.key_id, 0)
        swept = until is not None and now > until
        if swept:
            lock_newsroom_key(session, entry.key_id, exclusive=True)
            count += _rewrap_all(session, identity, holder, entry.key_id, limit).moved_total
        left = session.scalar(select(func.count()).where(Wrap.key_id == entry.key_id)) or 0
        if count:
            audit.record(session, actor_id, "key.rewrap", key=entry.public.short_id, wraps=count)
        results.append(Swept(entry.public, count, swept, int(left), until))
    return results


# --- retire -------------------------------------------------------------------------------


def retire(
    session: Session,
    identity: PublicKeys,
    holder: KeyPair,
    actor_id: int,
    key_id: bytes,
    now: datetime,
    grace_seconds: int,
) -> PublicKeys:
    """Retire the retiring key ``key_id``: sign it *retired* and delete its grants.

    Refused (``NotReady``) while its grace period lasts or while any wrap to it is left;
    checked under the key's exclusive commit lock, so no commit can land in between.
    ``holder`` is the acting admin's key pair (the identity seed signs the entry).
    """
    identity_keys = keyring.granted_keypair(
        session, identity, holder, Role.IDENTITY, identity.key_id
    )
    keyring.lock_directory(session)
    lock_newsroom_key(session, key_id, exclusive=True)
    entry, key = _retiring(session, identity, key_id)
    _check_grace_over(entry, key, grace_seconds, now)
    left = session.scalar(select(func.count()).where(Wrap.key_id == key_id)) or 0
    if left:
        raise NotReady(
            f"{left} items are still wrapped to key {entry.public.short_id}: run "
            "`tipbox keys rewrap` first (docs/keys.md says what to do with a wrap that "
            "does not open)"
        )
    keyring.sign_into_directory(session, identity_keys, entry.public, Status.RETIRED)
    key.retired_on = today()
    session.execute(
        delete(Grant).where(Grant.key_id == key_id).execution_options(synchronize_session=False)
    )
    session.flush()
    audit.record(session, actor_id, "key.retire", key=entry.public.short_id)
    return entry.public


def find_retiring(session: Session, identity: PublicKeys, short_id: str) -> Entry:
    """The retiring key whose short id (8 hex digits, any case) is ``short_id``."""
    wanted = short_id.strip().upper()
    for entry in retiring_keys(session, identity):
        if entry.public.short_id == wanted:
            return entry
    raise NotReady(f"no retiring newsroom key has the short id {short_id!r}")
