"""Journalist login, logout, TOTP re-enrolment and passphrase change (issue #4, domain layer).

Decisions are written down in ``docs/journalist-auth.md``. In short:

- **One answer for every failure.** ``login`` returns None for an unknown, inactive or
  locked account, a wrong passphrase and a wrong or replayed code alike. An unknown or
  inactive username still costs one Argon2id run at the configured journalist cost, so the
  time taken does not tell which usernames exist. A locked account is refused *without*
  Argon2id (a lock must not be a way to make the server burn memory).
- **Throttle.** Each wrong passphrase or code adds one to ``failed_login_count``; from the
  fourth failure on the account is locked for ``2 ** (n - 3)`` seconds, at most 15 minutes
  (``lock_delay``). A success resets the count.
- **TOTP.** 30-second steps, the current step and one either side. The matching step is
  found explicitly and accepted only if it is greater than ``totp_last_step``; the update
  that stores it is conditional on that, so two concurrent logins cannot both spend a code.
- **Global cap.** Every function that runs Argon2id holds an ``Argon2Gate`` slot; when none
  is free it raises ``Busy`` before any work, and the web layer answers "busy" at once.
- **The account is the session's.** The account functions take the journalist's internal id,
  which the web layer must take from the logged-in session, never from a form field.
- **First login** (``complete_first_login``): an account on a temporary key from an admin
  takes a new generated passphrase *and* a fresh key (``tipbox.journalists``); a
  journalist's new key then awaits an admin's confirmation, and its session sees nothing
  until then. ``change_passphrase`` refuses such an account (``FirstLoginRequired``).

Every function runs in the caller's transaction and never commits. The caller commits
**whatever the outcome**: a failed login records the failure. Time is passed in (``now``,
timezone-aware UTC); there is no module-level state.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pyotp
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from tipbox import audit, directory, journalists, keyring, sessions
from tipbox.config import Config
from tipbox.crypto.codenames import SALT_BYTES
from tipbox.crypto.errors import Rejected
from tipbox.crypto.journalist import (
    JournalistKeyRecord,
    PassphraseKeys,
    box_totp,
    derive_passphrase_keys,
    open_totp,
    seal_seed_under_passphrase,
    unlock_with_keys,
)
from tipbox.crypto.keys import PublicKeys, Role, keypair_from_seed, new_seed
from tipbox.crypto.passphrases import generate_passphrase
from tipbox.models import Journalist

ROLE_ADMIN = "admin"
ROLE_JOURNALIST = "journalist"

TOTP_STEP_SECONDS = 30
TOTP_DIGITS = 6
# Steps either side of the current one that are accepted (clock drift, typing time).
TOTP_WINDOW = 1

# Failures allowed before the first lock, and the longest lock.
FREE_FAILURES = 3
MAX_LOCK = timedelta(minutes=15)

# The salt of the Argon2id run an unknown username costs; its output is thrown away.
_DUMMY_SALT = bytes(SALT_BYTES)


class Busy(Exception):  # noqa: N818 - a state, not an error class name
    """No Argon2id slot is free: the caller answers "busy, try again" at once."""


class FirstLoginRequired(Exception):  # noqa: N818 - a state the web layer routes on
    """The account is on a temporary key from an admin: ``complete_first_login`` replaces
    passphrase and key together; a passphrase change alone would keep the admin's key."""


class Argon2Gate:
    """How many journalist Argon2id runs (256 MiB each) may be in progress at once.

    One gate per process, made by the app factory (from ``Config.argon2_concurrency``) and
    passed in: a bounded semaphore taken without blocking, never a queue, since a queue only
    lets an attacker line up work for later.
    """

    def __init__(self, slots: int) -> None:
        """Allow ``slots`` runs at once (at least one)."""
        if slots < 1:
            raise ValueError("the Argon2id gate needs at least one slot")
        self.slots = slots
        self._semaphore = threading.BoundedSemaphore(slots)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot for the block, or raise ``Busy`` at once if none is free."""
        if not self._semaphore.acquire(blocking=False):
            raise Busy()
        try:
            yield
        finally:
            self._semaphore.release()


@dataclass(frozen=True)
class LoginOk:
    """A successful login: who, with what role, their key seed and the new session cookie.

    ``must_change_passphrase`` tells the web layer to send the journalist to the passphrase
    page first (a temporary passphrase set by an admin); ``first_login`` that this page must
    call ``complete_first_login`` (the key is an admin's temporary one).
    ``awaiting_confirmation``: the key made at first login awaits an admin's confirmation;
    the session holds its seed but nothing is granted to it yet, so the web layer shows
    only the fingerprint (``journalists.pending_fingerprint``, from the session's seed)
    and no content.
    """

    journalist_id: int
    role: str
    key_seed: bytes = field(repr=False)
    cookie: str = field(repr=False)
    must_change_passphrase: bool
    first_login: bool = False
    awaiting_confirmation: bool = False


# --- throttle ------------------------------------------------------------------------------


def lock_delay(failures: int) -> timedelta:
    """How long an account is locked after its ``failures``-th consecutive failure.

    None (zero) for the first three, then 2, 4, 8, … seconds (``2 ** (n - 3)``), capped at
    15 minutes (reached at the 13th failure).
    """
    if failures <= FREE_FAILURES:
        return timedelta(0)
    exponent = min(failures - FREE_FAILURES, 20)  # 2**20 s is far past the cap
    return min(timedelta(seconds=2**exponent), MAX_LOCK)


def is_locked(row: Journalist, now: datetime) -> bool:
    """Whether ``row`` is locked at ``now``."""
    return row.locked_until is not None and row.locked_until > now


def _record_failure(session: Session, row: Journalist, now: datetime) -> None:
    """Count one failure (atomically, in the database) and lock the account if it is due."""
    row.failed_login_count = Journalist.failed_login_count + 1
    session.flush()
    session.refresh(row, ["failed_login_count"])
    delay = lock_delay(row.failed_login_count)
    row.locked_until = now + delay if delay else None
    session.flush()


def _record_success(session: Session, row: Journalist) -> None:
    row.failed_login_count = 0
    row.locked_until = None
    session.flush()


# --- TOTP ----------------------------------------------------------------------------------


def _normalise_code(code: str) -> str | None:
    """The code without spaces, or None unless it is six ASCII digits."""
    digits = "".join(code.split())
    if len(digits) != TOTP_DIGITS or not (digits.isascii() and digits.isdigit()):
        return None
    return digits


def matching_step(secret: str, code: str, now: datetime, after: int | None) -> int | None:
    """The lowest time step within one step of ``now`` whose code is ``code`` and which is
    greater than ``after`` (the last accepted step), or None."""
    digits = _normalise_code(code)
    if digits is None:
        return None
    totp = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP_SECONDS)
    current = totp.timecode(now)
    for step in range(current - TOTP_WINDOW, current + TOTP_WINDOW + 1):
        if after is not None and step <= after:
            continue
        if hmac.compare_digest(totp.generate_otp(step), digits):
            return step
    return None


def _spend_step(session: Session, row: Journalist, step: int) -> bool:
    """Store ``step`` as the last accepted one, only if it is still greater than the stored
    one (a conditional update: of two concurrent logins with one code, one wins)."""
    result = session.execute(
        update(Journalist)
        .where(
            Journalist.id == row.id,
            or_(Journalist.totp_last_step.is_(None), Journalist.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    session.expire(row, ["totp_last_step"])
    return int(getattr(result, "rowcount", 0) or 0) == 1


def begin_totp_enrolment() -> str:
    """A fresh base32 TOTP secret (160 bits). Nothing is stored.

    The caller shows it with its ``otpauth://`` URI and keeps it until the commit in the
    journalist's own session data (inside the session box), not in a hidden form field.
    """
    return pyotp.random_base32()


# --- login and logout ----------------------------------------------------------------------


def login(
    session: Session,
    config: Config,
    username: str,
    passphrase: str,
    code: str,
    now: datetime,
    *,
    gate: Argon2Gate,
) -> LoginOk | None:
    """Check username, passphrase and TOTP code; on success start a journalist session.

    Returns None for every failure alike. Raises ``Busy`` (before any work) when ``gate`` is
    full. A ``Rejected`` that is not about the passphrase (a tampered key record, Argon2id
    out of memory) is a server fault and propagates. The caller commits in every case.
    """
    with gate.slot():
        found = authenticate(session, config, username, passphrase, code, now)
        if found is None:
            return None
        return _start_session(session, config, found.row, found.seed, now)


@dataclass(frozen=True)
class Authenticated:
    """An account whose passphrase and TOTP code were right, and its opened key seed."""

    row: Journalist
    seed: bytes = field(repr=False)


def authenticate(
    session: Session,
    config: Config,
    username: str,
    passphrase: str,
    code: str,
    now: datetime,
    *,
    via: str = "web",
) -> Authenticated | None:
    """Check username, passphrase and TOTP code, with the same throttling, replay rule and
    failure counting as ``login``, but start no session (the CLI's unlock). None for every
    failure alike; the caller commits in every case.

    Each attempt goes into the audit log (``via``: ``web`` or ``cli``); a failure under a
    name that is no account records no name, since it may be a mistyped passphrase.
    """
    _check_now(now)
    row = _find(session, username)
    if row is None:
        _dummy_argon2(config, passphrase)
        audit.record(session, None, "login.failure", via=via)
        return None
    if is_locked(row, now):
        audit.record(session, row.id, "login.failure", via=via)
        return None
    opened = _unlock(session, row, passphrase)
    if opened is None or not _check_code(session, row, opened.totp_secret, code, now):
        _record_failure(session, row, now)
        audit.record(session, row.id, "login.failure", via=via)
        return None
    _record_success(session, row)
    audit.record(session, row.id, "login.success", via=via)
    return Authenticated(row, opened.seed)


def _find(session: Session, username: str) -> Journalist | None:
    """The account named ``username`` if it may log in (active, not removed, with a key or
    a key awaiting confirmation: ``journalists.may_log_in``), or None."""
    query = select(Journalist).where(Journalist.username == username)
    row = session.scalars(query.execution_options(populate_existing=True)).one_or_none()
    if row is None or not journalists.may_log_in(row):
        return None
    return row


def _dummy_argon2(config: Config, passphrase: str) -> None:
    """Spend what a real check would: one Argon2id run at the configured journalist cost.

    A malformed passphrase is refused before Argon2id here as it is for a real account; any
    other ``Rejected`` (Argon2id could not run) propagates as it would for a real account.
    """
    try:
        derive_passphrase_keys(passphrase, _DUMMY_SALT, config.journalist_kdf)
    except Rejected as error:
        if not str(error).startswith("passphrase."):
            raise


@dataclass(frozen=True, eq=False)
class _Opened:
    """An account's secrets, opened with its passphrase (one Argon2id run)."""

    seed: bytes = field(repr=False)
    totp_secret: str = field(repr=False)
    keys: PassphraseKeys = field(repr=False)


def _bound_public(session: Session, row: Journalist) -> PublicKeys:
    """The public keys the account's seed box is bound to: those of its verified directory
    entry, or of its key awaiting confirmation (no entry yet; used only to open the box,
    whose authentication covers the binding, never to seal anything to)."""
    if row.key_id is not None:
        return directory.entry(session, directory.identity_public(session), row.key_id).public
    pending = journalists.pending_public(row)
    if pending is None:
        raise Rejected("journalist.key: this account has no key")
    return pending


def _unlock(session: Session, row: Journalist, passphrase: str) -> _Opened | None:
    """Open the account's seed and TOTP secret, or None for a wrong passphrase.

    The seed box is bound to the public keys of the account's verified directory entry, or
    of its key awaiting confirmation.
    """
    if row.seed_box is None or row.totp_box is None:
        raise Rejected("journalist.key: this account has no key")
    public = _bound_public(session, row)
    record = JournalistKeyRecord(
        row.kdf_salt, row.kdf_opslimit, row.kdf_memlimit, row.verifier, row.seed_box
    )
    try:
        seed, keys = unlock_with_keys(record, row.public_id, public, passphrase)
    except Rejected as error:
        if str(error).startswith("passphrase."):
            return None
        raise
    raw = open_totp(keys.totp_key, row.public_id, row.totp_box)
    return _Opened(seed, base64.b32encode(raw).decode("ascii"), keys)


def _check_code(session: Session, row: Journalist, secret: str, code: str, now: datetime) -> bool:
    step = matching_step(secret, code, now, row.totp_last_step)
    return step is not None and _spend_step(session, row, step)


def _start_session(
    session: Session, config: Config, row: Journalist, seed: bytes, now: datetime
) -> LoginOk:
    role = ROLE_ADMIN if row.is_admin else ROLE_JOURNALIST
    cookie = sessions.create(
        session,
        sessions.JOURNALIST,
        row.id,
        role,
        seed,
        {},
        config.journalist_session_idle_seconds,
        config.journalist_session_absolute_seconds,
        now,
    )
    return LoginOk(
        row.id,
        role,
        seed,
        cookie,
        row.must_change_passphrase,
        first_login=row.temporary_key,
        awaiting_confirmation=row.pending_x25519 is not None,
    )


def logout(session: Session, cookie: str) -> bool:
    """End the session named by ``cookie`` (the web layer checks CSRF on the POST first)."""
    return sessions.destroy(session, cookie)


def logout_others(session: Session, journalist_id: int, keep_cookie: str) -> int:
    """End every session of ``journalist_id`` except ``keep_cookie``'s; return how many."""
    return sessions.destroy_all_for_user(
        session, sessions.JOURNALIST, journalist_id, except_cookie=keep_cookie
    )


# --- account page ---------------------------------------------------------------------------


def commit_totp_enrolment(
    session: Session,
    config: Config,
    journalist_id: int,
    passphrase: str,
    new_secret: str,
    code: str,
    now: datetime,
    *,
    gate: Argon2Gate,
) -> bool:
    """Replace the account's TOTP secret with ``new_secret`` if ``code`` is valid for it.

    ``journalist_id`` **must come from the logged-in session** (``SessionData.user``), never
    from a form field: this function trusts it, and only the passphrase stands between a
    forged id and another journalist's account. Needs the current passphrase (Argon2id); a
    wrong one counts as a failed login, a locked account is refused without Argon2id. The new
    secret is boxed under the passphrase's TOTP key and ``totp_last_step`` set to the
    accepted step. Returns False, changing nothing else, on any failure.
    """
    _check_now(now)
    raw = _decode_secret(new_secret)
    with gate.slot():
        found = _account_unlock(session, journalist_id, passphrase, now)
        if found is None:
            return False
        row, opened = found
        step = matching_step(new_secret, code, now, None)
        if step is None:
            return False
        row.totp_box = box_totp(opened.keys.totp_key, row.public_id, raw)
        row.totp_last_step = step
        session.flush()
        return True


def change_passphrase(
    session: Session,
    config: Config,
    journalist_id: int,
    current_passphrase: str,
    now: datetime,
    *,
    gate: Argon2Gate,
    keep_cookie: str | None,
) -> str | None:
    """Give the account a new generated passphrase; return it (shown once) or None.

    ``journalist_id`` **must come from the logged-in session**, never from a form field. The
    current passphrase is checked (a wrong one counts as a failed login; a locked account is
    refused without Argon2id). The **same** key seed and TOTP secret are boxed again under
    the new passphrase with a fresh salt at the configured cost, so the key id and every
    grant stay valid. ``must_change_passphrase`` is cleared, and every other session of the
    account ends (all of them if ``keep_cookie`` is None).

    Raises ``FirstLoginRequired`` (changing nothing) for an account on a temporary key
    from an admin, once the passphrase is checked: that account takes a new key too, with
    ``complete_first_login``.
    """
    _check_now(now)
    with gate.slot():
        found = _account_unlock(session, journalist_id, current_passphrase, now)
        if found is None:
            return None
        row, opened = found
        if row.temporary_key:
            raise FirstLoginRequired()
        new = generate_passphrase()
        _rebox(row, opened.seed, opened.totp_secret, new, config)
        row.must_change_passphrase = False
        session.flush()
        sessions.destroy_all_for_user(
            session, sessions.JOURNALIST, row.id, except_cookie=keep_cookie
        )
        return new


@dataclass(frozen=True)
class FirstLoginDone:
    """A completed first login: the new passphrase (shown once), the new session (its seed
    is the new key's), the new key's fingerprint, and whether it is already confirmed (an
    admin's) or awaits an admin's confirmation (a journalist's: show the fingerprint, to be
    read out to an admin, and no content)."""

    passphrase: str = field(repr=False)
    login: LoginOk
    fingerprint: str
    confirmed: bool


def complete_first_login(
    session: Session,
    config: Config,
    journalist_id: int,
    temporary_passphrase: str,
    now: datetime,
    *,
    gate: Argon2Gate,
) -> FirstLoginDone | None:
    """Replace an admin's temporary passphrase **and key** with the journalist's own.

    ``journalist_id`` **must come from the logged-in session**. The temporary passphrase is
    checked (a wrong one counts as a failed login; a locked account is refused without
    Argon2id; either way None). A fresh key seed is boxed, with the same TOTP secret, under
    a new generated passphrase, and ``journalists.replace_temporary_key`` destroys the
    temporary key's grants and entry: an admin's new key is signed and granted at once, a
    journalist's awaits an admin's confirmation. Every session of the account ends (each
    holds the temporary seed) and a new one starts with the new seed. ``ValueError`` for an
    account that is not on a temporary key.
    """
    _check_now(now)
    with gate.slot():
        # Directory writers run one at a time (a rotation must not miss the new key), and
        # of two first logins at once the second then finds the temporary key gone.
        keyring.lock_directory(session)
        found = _account_unlock(session, journalist_id, temporary_passphrase, now)
        if found is None:
            return None
        row, opened = found
        if not row.temporary_key or row.key_id is None:
            raise ValueError("this account is not on a temporary key")
        passphrase = generate_passphrase()
        seed = new_seed()
        new = keypair_from_seed(Role.JOURNALIST, seed)
        _rebox(row, seed, opened.totp_secret, passphrase, config)
        row.must_change_passphrase = False
        audit.record(session, row.id, "journalist.first_login", username=row.username)
        temporary = keypair_from_seed(Role.JOURNALIST, opened.seed)
        confirmed = journalists.replace_temporary_key(session, row, temporary, new)
        sessions.destroy_all_for_user(session, sessions.JOURNALIST, row.id)
        started = _start_session(session, config, row, seed, now)
        return FirstLoginDone(passphrase, started, new.public.fingerprint, confirmed)


def _account_unlock(
    session: Session, journalist_id: int, passphrase: str, now: datetime
) -> tuple[Journalist, _Opened] | None:
    """The account and its opened secrets, or None (gone, inactive, locked, wrong passphrase;
    the last one recorded as a failure)."""
    row = session.get(Journalist, journalist_id, populate_existing=True)
    if row is None or not journalists.may_log_in(row) or is_locked(row, now):
        return None
    opened = _unlock(session, row, passphrase)
    if opened is None:
        _record_failure(session, row, now)
        return None
    return row, opened


def _rebox(row: Journalist, seed: bytes, totp_secret: str, passphrase: str, config: Config) -> None:
    """Box ``seed`` and the TOTP secret under ``passphrase`` (fresh salt, one Argon2id)."""
    record, keys = seal_seed_under_passphrase(
        row.public_id, passphrase, seed, config.journalist_kdf
    )
    row.kdf_salt = record.salt
    row.kdf_opslimit = record.opslimit
    row.kdf_memlimit = record.memlimit
    row.verifier = record.verifier
    row.seed_box = record.seed_box
    row.totp_box = box_totp(keys.totp_key, row.public_id, _decode_secret(totp_secret))


def _decode_secret(secret: str) -> bytes:
    """The raw bytes of a base32 TOTP secret; ``ValueError`` if it is not one."""
    try:
        raw = base64.b32decode(secret, casefold=True)
    except (binascii.Error, ValueError):
        raise ValueError("not a base32 TOTP secret") from None
    if not raw:
        raise ValueError("empty TOTP secret")
    return raw


def _check_now(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
