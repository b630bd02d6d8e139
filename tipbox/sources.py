"""Sources: create one with a fresh codename, confirm it, log in with it (DESIGN 4.4).

The codename is shown once and stored nowhere: the server keeps only the hash of its lookup
value and the source's X25519 public key (docs/envelope.md 6). Every function parses what
the source typed before any Argon2id run, so a mistyped or hostile input costs nothing; the
app bounds how many Argon2id runs happen at once (docs/source-app.md 3).

Public side: the source app imports this module; it touches no newsroom secret. Functions
run in the caller's transaction and do not commit.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tipbox import directory
from tipbox.config import Argon2Cost
from tipbox.crypto.codenames import (
    SourceKeys,
    derive_source_keys,
    generate_codename,
    parse_codename,
)
from tipbox.crypto.errors import Rejected
from tipbox.crypto.wordlist import words
from tipbox.models import Item, Source, new_public_id, today

__all__ = [
    "DESIGNATION_ATTEMPTS",
    "LoggedIn",
    "NewSource",
    "confirm_codename",
    "create_source",
    "discard_unconfirmed",
    "login",
]

# Two words give 60 million designations: a clash is rare, ten in a row means a bug.
DESIGNATION_ATTEMPTS = 10


@dataclass(frozen=True)
class NewSource:
    """A source just created: its codename (to show once), public id and key seed."""

    codename: str = field(repr=False)
    public_id: bytes
    seed: bytes = field(repr=False)


@dataclass(frozen=True)
class LoggedIn:
    """A source that proved its codename: its public id and key seed (for its session)."""

    public_id: bytes
    seed: bytes = field(repr=False)


def _cost(session: Session) -> tuple[bytes, Argon2Cost]:
    """The instance's codename salt and Argon2id cost."""
    row = directory.settings(session)
    return row.codename_salt, Argon2Cost(row.codename_opslimit, row.codename_memlimit)


def _derive(session: Session, normalised: str) -> SourceKeys:
    salt, cost = _cost(session)
    return derive_source_keys(normalised, salt, cost)


def create_source(session: Session) -> NewSource:
    """Make a codename and the source it opens (one Argon2id run); flush, do not commit.

    The source gets a designation journalists call it by: two random words of the list,
    unrelated to the codename, unique (drawn again on a clash).
    """
    codename = generate_codename()
    keys = _derive(session, parse_codename(codename))
    public_id = new_public_id()
    day = today()
    for _ in range(DESIGNATION_ATTEMPTS):
        designation = _designation()
        if session.scalar(select(Source.id).where(Source.designation == designation)):
            continue
        source = Source(
            public_id=public_id,
            lookup_hash=keys.lookup_hash,
            x25519=keys.x25519_public,
            designation=designation,
            created_on=day,
            last_active_on=day,
        )
        try:
            # A savepoint, so that a designation taken meanwhile costs one more draw.
            with session.begin_nested():
                session.add(source)
                session.flush()
        except IntegrityError:
            continue
        return NewSource(codename=codename, public_id=public_id, seed=keys.seed)
    raise RuntimeError("could not find a free source designation")


def _designation() -> str:
    wordlist = words()
    return f"{secrets.choice(wordlist)} {secrets.choice(wordlist)}"


def confirm_codename(session: Session, public_id: bytes, typed: str) -> bool:
    """Whether ``typed`` is the codename of source ``public_id`` (the source typed it back).

    Input that is not 7 list words is refused without running Argon2id.
    """
    try:
        normalised = parse_codename(typed)
    except Rejected:
        return False
    source = session.scalars(select(Source).where(Source.public_id == public_id)).one_or_none()
    if source is None:
        return False
    keys = _derive(session, normalised)
    same_lookup = hmac.compare_digest(keys.lookup_hash, source.lookup_hash)
    return same_lookup and hmac.compare_digest(keys.x25519_public, source.x25519)


def login(session: Session, typed: str) -> LoggedIn | None:
    """Log a source in with its codename; None for every failure alike.

    Unparseable input (no Argon2id), an unknown codename and a stored public key that the
    codename does not derive all give None. On success the source is marked active today.
    """
    try:
        normalised = parse_codename(typed)
    except Rejected:
        return None
    keys = _derive(session, normalised)
    source = session.scalars(
        select(Source).where(Source.lookup_hash == keys.lookup_hash)
    ).one_or_none()
    # The derived key must be the stored one (envelope.md 6): a row whose key was
    # replaced would otherwise let its replies be sealed to someone else's key.
    if source is None or not hmac.compare_digest(keys.x25519_public, source.x25519):
        return None
    source.last_active_on = today()
    session.flush()
    return LoggedIn(public_id=source.public_id, seed=keys.seed)


def discard_unconfirmed(session: Session, public_id: bytes) -> None:
    """Delete source ``public_id`` if it has no items (it never confirmed its codename)."""
    source_id = session.scalar(select(Source.id).where(Source.public_id == public_id))
    if source_id is None:
        return
    if session.scalar(select(func.count()).where(Item.source_id == source_id)):
        return
    session.execute(delete(Source).where(Source.id == source_id))
