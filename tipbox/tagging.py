"""Tags on sources: the metadata key's lifecycle, and adding, listing and finding tags.

The instance has one metadata key (docs/envelope.md 12): its entry is signed into the
directory and its seed is granted, like a newsroom seed, to every account key entitled
to it and to the recovery key (``tipbox.entitlements``). ``tipbox init`` makes it; an
instance upgraded from before tags gets it the first time an admin opens a page that
needs it (an admin holds the identity seed, which signing a directory entry takes).
Until then tags are unavailable, and the pages say so.

Tags are opened per request from the grant (DESIGN 4.6: seeds are not cached).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session

from tipbox import directory, entitlements, keyring
from tipbox.crypto.directory import Status
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import KeyPair, PublicKeys, Role, keypair_from_seed, new_seed
from tipbox.crypto.tags import (
    MetadataKeys,
    metadata_keys,
    normalise_tag,
    open_tag,
    seal_tag,
    tag_index,
)
from tipbox.models import DirectoryEntry, Source, SourceTag

MAX_TAGS_PER_SOURCE = 20


class TagLimitReached(Exception):  # noqa: N818 - a state the view explains
    """The source already has ``MAX_TAGS_PER_SOURCE`` tags."""


def metadata_key_id(session: Session) -> bytes | None:
    """The key id of the instance's metadata key, or None if it has none yet."""
    return session.scalar(
        select(DirectoryEntry.key_id).where(DirectoryEntry.role == int(Role.METADATA))
    )


def create_metadata_key(session: Session, identity: KeyPair) -> MetadataKeys:
    """Make the metadata key, sign it into the directory and grant it to everyone entitled.

    ``ValueError`` if the instance already has one.
    """
    if metadata_key_id(session) is not None:
        raise ValueError("this instance already has a metadata key")
    seed = new_seed()
    keys = metadata_keys(seed)
    keyring.sign_into_directory(session, identity, keys.keypair.public, Status.ACTIVE)
    for grantee in entitlements.grantees(session, identity.public, Role.METADATA):
        keyring.grant(session, keys.keypair, seed, grantee)
    return keys


def grant_metadata_key(
    session: Session, identity: PublicKeys, holder: KeyPair, grantee_key_id: bytes
) -> None:
    """Grant the metadata key, opened by ``holder``, to another journalist or recovery key."""
    key_id = metadata_key_id(session)
    if key_id is None:
        return
    seed = keyring.granted_seed(session, identity, holder, Role.METADATA, key_id)
    grantee = directory.entry(session, identity, grantee_key_id)
    keyring.grant(session, metadata_keys(seed).keypair, seed, grantee)


def open_metadata_keys(
    session: Session, identity: PublicKeys, reader: KeyPair, *, is_admin: bool
) -> MetadataKeys | None:
    """The metadata keys for ``reader``: None while the instance has no metadata key and
    the reader is not an admin; an admin's first call makes it. ``Rejected`` if the key
    exists but was not granted to the reader."""
    key_id = metadata_key_id(session)
    if key_id is None:
        if not is_admin:
            return None
        identity_key_id = directory.settings(session).identity_key_id
        seed = keyring.granted_seed(session, identity, reader, Role.IDENTITY, identity_key_id)
        return create_metadata_key(session, keypair_from_seed(Role.IDENTITY, seed))
    return metadata_keys(keyring.granted_seed(session, identity, reader, Role.METADATA, key_id))


def index_of(keys: MetadataKeys, text: str) -> bytes | None:
    """The blind index of ``text`` as a tag, or None if it cannot be a tag."""
    try:
        return tag_index(keys, normalise_tag(text))
    except ValueError:
        return None


def _source_row_id(session: Session, source_public_id: bytes) -> int:
    found = session.scalar(select(Source.id).where(Source.public_id == source_public_id))
    if found is None:
        raise LookupError("no such source")
    return found


def add_tag(session: Session, keys: MetadataKeys, source_public_id: bytes, text: str) -> str:
    """Tag a source; returns the tag as shown. Adding a tag it has already is a no-op.

    ``ValueError`` for text that cannot be a tag, ``LookupError`` for an unknown source,
    ``TagLimitReached`` past ``MAX_TAGS_PER_SOURCE``.
    """
    shown = normalise_tag(text)
    source_id = _source_row_id(session, source_public_id)
    index = tag_index(keys, shown)
    existing = select(SourceTag.id).where(
        SourceTag.source_id == source_id, SourceTag.blind_index == index
    )
    if session.scalar(existing) is not None:
        return shown
    count = session.scalar(select(func.count()).where(SourceTag.source_id == source_id)) or 0
    if count >= MAX_TAGS_PER_SOURCE:
        raise TagLimitReached()
    session.add(
        SourceTag(
            source_id=source_id,
            key_id=keys.key_id,
            blind_index=index,
            sealed_tag=seal_tag(keys, source_public_id, shown),
        )
    )
    session.flush()
    return shown


def remove_tag(session: Session, keys: MetadataKeys, source_public_id: bytes, text: str) -> bool:
    """Remove a tag from a source; returns whether it had it."""
    index = index_of(keys, text)
    if index is None:
        return False
    source_id = _source_row_id(session, source_public_id)
    result = session.execute(
        delete(SourceTag).where(SourceTag.source_id == source_id, SourceTag.blind_index == index)
    )
    return bool(getattr(result, "rowcount", 0))


def _opened(keys: MetadataKeys, public_id: bytes, row: SourceTag) -> str | None:
    if row.key_id != keys.key_id:
        return None
    try:
        return open_tag(keys, public_id, row.sealed_tag)
    except Rejected:
        return None


def tags_of(
    session: Session, keys: MetadataKeys, source_ids: Iterable[int]
) -> dict[int, list[str]]:
    """The tags of each source (by row id), sorted; a tag that fails to open is left out."""
    wanted = list(source_ids)
    found: dict[int, list[str]] = {source_id: [] for source_id in wanted}
    if not wanted:
        return found
    rows = session.execute(
        select(SourceTag, Source.public_id)
        .join(Source, Source.id == SourceTag.source_id)
        .where(SourceTag.source_id.in_(wanted))
    ).all()
    for row, public_id in rows:
        shown = _opened(keys, public_id, row)
        if shown is not None:
            found[row.source_id].append(shown)
    for shown_tags in found.values():
        shown_tags.sort(key=str.casefold)
    return found


def all_tags(session: Session, keys: MetadataKeys) -> list[str]:
    """Every distinct tag in use, sorted: one sealed copy of each index is opened."""
    first = select(func.min(SourceTag.id)).group_by(SourceTag.blind_index).scalar_subquery()
    rows = session.execute(
        select(SourceTag, Source.public_id)
        .join(Source, Source.id == SourceTag.source_id)
        .where(SourceTag.id.in_(first))
    ).all()
    shown = (_opened(keys, public_id, row) for row, public_id in rows)
    return sorted((tag for tag in shown if tag is not None), key=str.casefold)


def has_tag(index: bytes) -> ColumnElement[bool]:
    """A WHERE clause on ``Source``: the source has the tag of blind index ``index``."""
    return (
        select(SourceTag.id)
        .where(SourceTag.source_id == Source.id, SourceTag.blind_index == index)
        .exists()
    )
