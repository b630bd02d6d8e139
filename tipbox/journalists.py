"""Journalist accounts as an admin manages them, and the key each account holds (issue #5).

An admin adds a journalist with a *temporary* generated passphrase, TOTP secret and key
(``add_journalist``), and can issue new temporary ones (``reset``), change the role
(``set_role``), deactivate, activate and remove an account, and confirm the key a
journalist made at first login (``confirm_pending_key``). The first login itself is the
journalist's own act: ``journalist_auth.complete_first_login``, which calls
``replace_temporary_key`` here.

What each account's key is granted follows from its state (``entitled_roles``) and is
brought in line after every change (``_sync_grants``): every non-retired newsroom key and
the metadata key to an active account's verified key, the identity key as well for admins.
A temporary key holds grants only when it is an admin's, who needs them to re-grant their
own new key at first login; a journalist's temporary key holds none, since an admin grants
their new key on confirmation. Nothing is granted to a key before its directory entry is
signed (DESIGN invariant 7), which is why a journalist's new key waits for an admin: only
admins hold the identity seed that signs. docs/journalist-auth.md has the why.

Every function runs in the caller's transaction and never commits; every admin action
records an audit event in it. An admin acts on other accounts only: their own is changed
on the account page, which also means an action can never leave the instance without an
active admin.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Final

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from tipbox import audit, directory, keyring, onion, sessions, tagging
from tipbox.accounts import Credentials, create_journalist, issue_key
from tipbox.config import Config
from tipbox.crypto.directory import Entry, Status
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import KeyPair, PublicKeys, Role, keypair_from_seed
from tipbox.entitlements import entitled_roles
from tipbox.models import (
    HASH_BYTES,
    SALT_BYTES,
    DirectoryEntry,
    Grant,
    Journalist,
    ReadMarker,
    Source,
    today,
)

# What the audit log accepts as a username (tipbox.audit): letters, digits and . _ @ + -.
USERNAME: Final = re.compile(r"[\w.@+-]{1,64}")
_FINGERPRINT_DIGITS: Final = 40


class AccountError(Exception):
    """An admin action was refused; the message says why, in words an admin can act on."""


class UnknownJournalist(AccountError, LookupError):  # noqa: N818 - a refusal the caller explains
    """No such account (a removed account counts as none)."""


class UsernameTaken(AccountError):  # noqa: N818 - a refusal the caller explains
    """The username belongs to another account, perhaps a removed one."""


class InvalidUsername(AccountError, ValueError):  # noqa: N818 - a refusal the caller explains
    """Not a username (see ``USERNAME``)."""


class NotAllowed(AccountError):  # noqa: N818 - a refusal the caller explains
    """The action does not apply: the admin's own account, an account in the wrong state,
    or someone who is not an active admin with a confirmed key."""


class FingerprintMismatch(AccountError):  # noqa: N818 - a refusal the caller explains
    """The fingerprint typed is not that of the key awaiting confirmation."""


class AccountState(StrEnum):
    """Where an account stands; only ``ACTIVE`` accounts see content."""

    ACTIVE = "active"
    # Logged in never since an add or reset: on temporary credentials and key.
    FIRST_LOGIN = "first-login"
    # Took a new passphrase and key at first login; an admin has not confirmed the key yet.
    AWAITING_CONFIRMATION = "awaiting-confirmation"
    INACTIVE = "inactive"
    # No key at all (an account from before revision 0003 whose reset was under way): an
    # admin resets it.
    NO_KEY = "no-key"
    REMOVED = "removed"


@dataclass(frozen=True)
class Admin:
    """The admin acting: their account id, their key pair (from their unlocked seed) and
    the identity public key the caller checked against ``keys/``."""

    journalist_id: int
    keypair: KeyPair
    identity: PublicKeys


@dataclass(frozen=True)
class JournalistInfo:
    """One account as ``list_journalists`` shows it.

    ``fingerprint`` is the verified key's, or the pending key's while it awaits
    confirmation (``state`` says which), or None without a key.
    """

    username: str
    is_admin: bool
    state: AccountState
    fingerprint: str | None
    created_on: date
    removed_on: date | None


# --- state and entitlements ------------------------------------------------------------


def state_of(row: Journalist) -> AccountState:
    """The account's state, from its columns."""
    if row.removed_on is not None:
        return AccountState.REMOVED
    if not row.is_active:
        return AccountState.INACTIVE
    if row.pending_x25519 is not None:
        return AccountState.AWAITING_CONFIRMATION
    if row.key_id is None:
        return AccountState.NO_KEY
    if row.temporary_key:
        return AccountState.FIRST_LOGIN
    return AccountState.ACTIVE


def may_log_in(row: Journalist) -> bool:
    """Whether the account can log in at all: active, not removed, with a verified key or a
    key awaiting confirmation (whose session then sees nothing until it is confirmed)."""
    return (
        row.removed_on is None
        and row.is_active
        and (row.key_id is not None or row.pending_x25519 is not None)
    )


def pending_public(row: Journalist) -> PublicKeys | None:
    """The public keys of the key awaiting confirmation, or None.

    Unverified (it has no directory entry yet): use it to open the account's own seed box
    and to show its fingerprint, never to seal anything to.
    """
    if row.pending_x25519 is None or row.pending_ed25519 is None:
        return None
    return PublicKeys(Role.JOURNALIST, row.pending_x25519, row.pending_ed25519)


def pending_fingerprint(session: Session, journalist_id: int, key_seed: bytes) -> str | None:
    """The fingerprint to show a journalist whose key awaits confirmation, or None if the
    account has no key awaiting it.

    For the page the journalist sees until an admin confirms: this fingerprint, to be read
    out to the admin, and no content. It is made from ``key_seed`` (the session's), not read
    from the database, so that a database writer who swapped the pending key sees the
    admin's typed fingerprint refused; a session seed that is not the pending key raises
    ``Rejected``.
    """
    row = session.get(Journalist, journalist_id, populate_existing=True)
    pending = None if row is None or row.removed_on is not None else pending_public(row)
    if pending is None:
        return None
    held = keypair_from_seed(Role.JOURNALIST, key_seed).public
    if held != pending:
        raise Rejected("journalist.pending: the session's key is not the key awaiting confirmation")
    return held.fingerprint


def list_journalists(
    session: Session, identity: PublicKeys, *, include_removed: bool = True
) -> list[JournalistInfo]:
    """Every account by username, with its state and key fingerprint.

    A verified key's entry is checked against ``identity``; one that does not verify raises
    ``Rejected`` (a tampered directory is a fault to notice, not a line to skip).
    """
    query = select(Journalist).order_by(Journalist.username)
    if not include_removed:
        query = query.where(Journalist.removed_on.is_(None))
    found = []
    for row in session.scalars(query):
        fingerprint = None
        if row.key_id is not None:
            fingerprint = directory.entry(session, identity, row.key_id).public.fingerprint
        elif (pending := pending_public(row)) is not None:
            fingerprint = pending.fingerprint
        found.append(
            JournalistInfo(
                row.username,
                row.is_admin,
                state_of(row),
                fingerprint,
                row.created_on,
                row.removed_on,
            )
        )
    return found


# --- grants ----------------------------------------------------------------------------


def _live_newsroom_keys(session: Session, identity: PublicKeys) -> list[Entry]:
    """The verified current and retiring newsroom keys (a retired key is granted to none)."""
    return [
        entry
        for entry in directory.entries(session, identity, Role.NEWSROOM)
        if entry.status != Status.RETIRED
    ]


def _delete_grants(session: Session, grantee_key_id: bytes, keep: frozenset[Role]) -> None:
    """Delete the grants to ``grantee_key_id`` of every key whose role is not in ``keep``."""
    doomed = select(DirectoryEntry.key_id).where(
        DirectoryEntry.role.not_in([int(role) for role in keep])
    )
    session.execute(
        delete(Grant)
        .where(Grant.grantee_key_id == grantee_key_id, Grant.key_id.in_(doomed))
        .execution_options(synchronize_session=False)
    )


def _sync_grants(session: Session, identity: PublicKeys, holder: KeyPair, row: Journalist) -> None:
    """Make the grants to the account's key what ``entitled_roles`` says: delete the others,
    add the missing ones, each seed opened from ``holder``'s own grant."""
    key_id = row.key_id
    if key_id is None:
        return
    wanted = entitled_roles(row)
    _delete_grants(session, key_id, wanted)
    if not wanted:
        return
    grantee = directory.entry(session, identity, key_id)
    held = set(session.scalars(select(Grant.key_id).where(Grant.grantee_key_id == key_id)))
    if Role.NEWSROOM in wanted:
        for newsroom in _live_newsroom_keys(session, identity):
            if newsroom.key_id not in held:
                seed = keyring.granted_seed(
                    session, identity, holder, Role.NEWSROOM, newsroom.key_id
                )
                keyring.grant(session, keypair_from_seed(Role.NEWSROOM, seed), seed, grantee)
    metadata_id = tagging.metadata_key_id(session)
    if Role.METADATA in wanted and metadata_id is not None and metadata_id not in held:
        tagging.grant_metadata_key(session, identity, holder, key_id)
    if Role.IDENTITY in wanted and identity.key_id not in held:
        seed = keyring.granted_seed(session, identity, holder, Role.IDENTITY, identity.key_id)
        keyring.grant(session, keypair_from_seed(Role.IDENTITY, seed), seed, grantee)


def _destroy_key(session: Session, key_id: bytes | None) -> None:
    """Delete a journalist key's grants, then its directory entry. No row may name it."""
    if key_id is None:
        return
    session.execute(delete(Grant).where(Grant.grantee_key_id == key_id))
    session.execute(delete(DirectoryEntry).where(DirectoryEntry.key_id == key_id))
    session.flush()


def _drop_key(session: Session, row: Journalist) -> None:
    """Destroy the account's verified or temporary key, leaving it without one."""
    key_id = row.key_id
    row.key_id = None
    session.flush()
    _destroy_key(session, key_id)


def _identity_keypair(session: Session, identity: PublicKeys, holder: KeyPair) -> KeyPair:
    """The identity key pair, opened from ``holder``'s grant (admins only hold one)."""
    seed = keyring.granted_seed(session, identity, holder, Role.IDENTITY, identity.key_id)
    return keypair_from_seed(Role.IDENTITY, seed)


# --- the acting admin and the account acted on -----------------------------------------


def _acting(session: Session, admin: Admin) -> tuple[Journalist, KeyPair]:
    """The admin's row and the identity key pair, after checking that ``admin`` is an
    active admin whose confirmed key is the one given.

    Takes the directory lock first: every action here signs or grants, or changes what an
    account is entitled to, and must not interleave with a rotation (which would miss a key
    granted meanwhile) or with another such action.
    """
    keyring.lock_directory(session)
    row = session.get(Journalist, admin.journalist_id, populate_existing=True)
    if (
        row is None
        or state_of(row) != AccountState.ACTIVE
        or not row.is_admin
        or row.key_id != admin.keypair.key_id
    ):
        raise NotAllowed("only an active admin with a confirmed key can do this")
    return row, _identity_keypair(session, admin.identity, admin.keypair)


def _target(session: Session, username: str, acting: Journalist | None = None) -> Journalist:
    """The account named ``username``, locked for the transaction; ``UnknownJournalist``
    for none or a removed one, ``NotAllowed`` for the acting admin's own."""
    query = select(Journalist).where(Journalist.username == username).with_for_update()
    row = session.scalars(query.execution_options(populate_existing=True)).one_or_none()
    if row is None or row.removed_on is not None:
        raise UnknownJournalist(f"no journalist named {username!r}")
    if acting is not None and row.id == acting.id:
        raise NotAllowed("an admin cannot do this to their own account; ask another admin")
    return row


def _end_sessions(session: Session, row: Journalist) -> None:
    sessions.destroy_all_for_user(session, sessions.JOURNALIST, row.id)


def _revoke_devices(session: Session, config: Config | None, actor_id: int, username: str) -> None:
    """Revoke the account's journalist onion devices (``tipbox.onion``) when ``config``
    names a clients directory; a failure refuses the whole action (the caller rolls back)."""
    if config is None or config.onion_clients_dir is None:
        return
    try:
        onion.revoke(session, config, actor_id, username)
    except (onion.OnionError, OSError) as exc:
        raise AccountError(
            f"could not revoke {username}'s onion devices ({exc}); nothing else was changed"
        ) from None


# --- adding and resetting --------------------------------------------------------------


def check_username(username: str) -> str:
    """``username`` without surrounding spaces; ``InvalidUsername`` unless it is 1 to 64
    letters, digits or ``. _ @ + -`` (what the audit log accepts)."""
    name = username.strip()
    if not USERNAME.fullmatch(name):
        raise InvalidUsername("a username is 1 to 64 letters, digits or . _ @ + -")
    return name


def add_journalist(
    session: Session, config: Config, admin: Admin, username: str, *, is_admin: bool
) -> Credentials:
    """Add an account with a temporary generated passphrase, TOTP secret and key.

    The key is signed into the directory and granted what ``entitled_roles`` says (nothing
    for a journalist, everything for an admin). Returns the credentials to hand over,
    shown once; the first login replaces passphrase and key.
    """
    acting, identity_keys = _acting(session, admin)
    name = check_username(username)
    if session.scalar(select(Journalist.id).where(Journalist.username == name)) is not None:
        raise UsernameTaken(f"the username {name!r} is taken (perhaps by a removed account)")
    made = create_journalist(
        session,
        identity_keys,
        name,
        is_admin=is_admin,
        cost=config.journalist_kdf,
        must_change_passphrase=True,
    )
    made.row.temporary_key = True
    session.flush()
    _sync_grants(session, admin.identity, admin.keypair, made.row)
    audit.record(session, acting.id, "journalist.add", username=name, admin=is_admin)
    return made.credentials


def reset(session: Session, config: Config, admin: Admin, username: str) -> Credentials:
    """Give an account new temporary credentials and key, as if just added.

    The old key (verified, temporary or awaiting confirmation) is destroyed with its grants
    and entry, and every session of the account ends. The failure count and lock are
    cleared. Returns the credentials to hand over, shown once.
    """
    acting, identity_keys = _acting(session, admin)
    row = _target(session, username, acting)
    _drop_key(session, row)
    row.pending_x25519 = row.pending_ed25519 = None
    session.flush()
    credentials = issue_key(session, identity_keys, row, config.journalist_kdf).credentials
    row.temporary_key = row.must_change_passphrase = True
    session.flush()
    _sync_grants(session, admin.identity, admin.keypair, row)
    _end_sessions(session, row)
    audit.record(session, acting.id, "journalist.reset", username=row.username)
    return credentials


# --- first login and confirmation ------------------------------------------------------


def replace_temporary_key(
    session: Session, row: Journalist, temporary: KeyPair, new: KeyPair
) -> bool:
    """At first login: swap the account's temporary key for the journalist's ``new`` one.

    The caller (``journalist_auth.complete_first_login``) holds the directory lock
    (``keyring.lock_directory``), has checked the temporary passphrase and boxed the new
    seed under the new passphrase. An admin's temporary key
    holds the identity seed, so an admin's new key is signed and granted at once (returns
    True). A journalist's new key is left *pending*, with no entry and no grants, until an
    admin confirms its fingerprint (returns False). Either way the temporary key's grants
    and entry are deleted: the temporary passphrase and key open nothing afterwards.
    """
    if not row.temporary_key or row.key_id is None or row.key_id != temporary.key_id:
        raise NotAllowed("this account is not on a temporary key")
    identity = directory.identity_public(session)
    old = row.key_id
    row.temporary_key = False
    if row.is_admin:
        signer = _identity_keypair(session, identity, temporary)
        keyring.sign_into_directory(session, signer, new.public, Status.ACTIVE, row.public_id)
        row.key_id = new.key_id
        session.flush()
        # The temporary key's grants still exist here: they are what re-grants the new key.
        _sync_grants(session, identity, temporary, row)
        _destroy_key(session, old)
        short_id = new.public.short_id
        audit.record(
            session, row.id, "journalist.key_confirmed", username=row.username, key=short_id
        )
        return True
    row.key_id = None
    row.pending_x25519 = new.public.x25519
    row.pending_ed25519 = new.public.ed25519
    session.flush()
    _destroy_key(session, old)
    return False


def _same_fingerprint(typed: str, fingerprint: str) -> bool:
    """Whether ``typed`` is ``fingerprint``, ignoring spaces and case."""
    digits = "".join(typed.split()).upper()
    return len(digits) == _FINGERPRINT_DIGITS and digits == "".join(fingerprint.split())


def confirm_pending_key(session: Session, admin: Admin, username: str, fingerprint: str) -> str:
    """Confirm the key an account made at first login, given its fingerprint as the
    journalist reads it out from their screen; return the confirmed fingerprint.

    The key is signed into the directory and granted every non-retired newsroom key, the
    metadata key and, for an admin, the identity key (an inactive account's grants wait for
    ``activate``). ``FingerprintMismatch`` changes nothing; ``NotAllowed`` if no key awaits.
    """
    acting, identity_keys = _acting(session, admin)
    row = _target(session, username, acting)
    pending = pending_public(row)
    if pending is None:
        raise NotAllowed(f"{row.username} has no key awaiting confirmation")
    if not _same_fingerprint(fingerprint, pending.fingerprint):
        raise FingerprintMismatch(
            "that is not the fingerprint of the key awaiting confirmation; nothing was changed"
        )
    keyring.sign_into_directory(session, identity_keys, pending, Status.ACTIVE, row.public_id)
    row.pending_x25519 = row.pending_ed25519 = None
    row.key_id = pending.key_id
    session.flush()
    _sync_grants(session, admin.identity, admin.keypair, row)
    audit.record(
        session,
        acting.id,
        "journalist.key_confirmed",
        username=row.username,
        key=pending.short_id,
    )
    return pending.fingerprint


# --- role, activity, removal -----------------------------------------------------------


def set_role(session: Session, admin: Admin, username: str, *, is_admin: bool) -> bool:
    """Make the account an admin or a journalist; return whether that changed anything.

    The identity key is granted to an admin's key and its grant deleted from a
    journalist's (a temporary key gains or loses all its grants, see ``entitled_roles``).
    The account's sessions end: each carries its role.
    """
    acting, _ = _acting(session, admin)
    row = _target(session, username, acting)
    if row.is_admin == is_admin:
        return False
    row.is_admin = is_admin
    session.flush()
    _sync_grants(session, admin.identity, admin.keypair, row)
    _end_sessions(session, row)
    audit.record(session, acting.id, "journalist.role", username=row.username, admin=is_admin)
    return True


def deactivate(
    session: Session, admin: Admin, username: str, *, config: Config | None = None
) -> bool:
    """Deactivate an account; return whether it was active.

    Its sessions end, login is refused, and its key's grants are deleted (DESIGN 4.1 grants
    newsroom keys to *active* journalists); its key and entry stay, so ``activate`` only
    re-grants. With a ``config`` naming a clients directory, its onion devices are revoked
    (even if it was inactive already); ``activate`` does not bring them back.
    """
    acting, _ = _acting(session, admin)
    row = _target(session, username, acting)
    _revoke_devices(session, config, acting.id, row.username)
    if not row.is_active:
        return False
    row.is_active = False
    session.flush()
    _sync_grants(session, admin.identity, admin.keypair, row)
    _end_sessions(session, row)
    audit.record(session, acting.id, "journalist.deactivate", username=row.username)
    return True


def activate(session: Session, admin: Admin, username: str) -> bool:
    """Activate an account again and re-grant its key; return whether it was inactive."""
    acting, _ = _acting(session, admin)
    row = _target(session, username, acting)
    if row.is_active:
        return False
    row.is_active = True
    session.flush()
    _sync_grants(session, admin.identity, admin.keypair, row)
    audit.record(session, acting.id, "journalist.activate", username=row.username)
    return True


def remove(session: Session, admin: Admin, username: str, *, config: Config | None = None) -> None:
    """Remove an account: its grants, key, sessions and directory entry are deleted.

    The row stays as a tombstone holding no secret (boxes deleted, passphrase verifier and
    salt zeroed, inactive, not an admin), so that audit events keep their actor and replies
    and notes their author; those items then show as unverified, since the entry that
    vouched for the signature is gone. The username stays taken. Read markers go and the
    account's sources are unassigned. The caller then offers a newsroom key rotation: what
    the journalist could read before, a copy of their keys may still read. With a
    ``config`` naming a clients directory, the account's onion devices are revoked.
    """
    acting, _ = _acting(session, admin)
    row = _target(session, username, acting)
    _drop_key(session, row)
    _end_sessions(session, row)
    row.pending_x25519 = row.pending_ed25519 = None
    row.seed_box = row.totp_box = None
    # NOT NULL columns: zeros, so that nothing derived from the passphrase remains.
    row.kdf_salt = bytes(SALT_BYTES)
    row.verifier = bytes(HASH_BYTES)
    row.totp_last_step = None
    row.is_active = row.is_admin = row.temporary_key = row.must_change_passphrase = False
    row.failed_login_count = 0
    row.locked_until = None
    row.removed_on = today()
    session.execute(delete(ReadMarker).where(ReadMarker.journalist_id == row.id))
    session.execute(
        update(Source)
        .where(Source.assignee_id == row.id)
        .values(assignee_id=None)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    audit.record(session, acting.id, "journalist.remove", username=row.username)
    _revoke_devices(session, config, acting.id, row.username)
