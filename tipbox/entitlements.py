"""Who is granted which key: the one rule journalist accounts, rotations and the metadata
key all follow (DESIGN 4.1, 4.5).

An account's key holds grants of the roles ``entitled_roles`` names for its state; the
recovery key holds grants of every key. ``grantees`` lists, verified, every key that
should hold a grant of a new key of some role.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tipbox import directory
from tipbox.crypto.directory import Entry
from tipbox.crypto.keys import PublicKeys, Role
from tipbox.models import DirectoryEntry, Journalist


def entitled_roles(row: Journalist) -> frozenset[Role]:
    """The roles of the keys whose grants the account's current key should hold.

    Nothing for an inactive, removed or key-less account, nor for a journalist's temporary
    key (an admin grants their new key at confirmation); newsroom and metadata keys for a
    verified key; the identity key as well for an admin, whose temporary key also holds all
    three so that the first login can sign and re-grant the new key.
    """
    if row.removed_on is not None or not row.is_active or row.key_id is None:
        return frozenset()
    if row.is_admin:
        return frozenset({Role.IDENTITY, Role.NEWSROOM, Role.METADATA})
    if row.temporary_key:
        return frozenset()
    return frozenset({Role.NEWSROOM, Role.METADATA})


def grantees(session: Session, identity: PublicKeys, role: Role) -> list[Entry]:
    """The verified entries of every account key entitled to keys of ``role``, and of the
    recovery key: who a new key of that role is granted to."""
    rows = session.scalars(
        select(Journalist)
        .where(Journalist.key_id.is_not(None))
        .order_by(Journalist.id)
        .execution_options(populate_existing=True)
    )
    key_ids = [row.key_id for row in rows if row.key_id is not None and role in entitled_roles(row)]
    recovery = select(DirectoryEntry.key_id).where(DirectoryEntry.role == int(Role.RECOVERY))
    key_ids += list(session.scalars(recovery))
    return [directory.entry(session, identity, key_id) for key_id in key_ids]
