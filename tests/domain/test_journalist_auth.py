"""Journalist login, logout, TOTP re-enrolment and passphrase change (issue #4, domain)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tipbox import audit, directory, instance, keyring, sessions
from tipbox.accounts import create_journalist, unlock_journalist
from tipbox.config import Argon2Cost, Config
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import Role, keypair_from_seed
from tipbox.crypto.passphrases import generate_passphrase
from tipbox.journalist_auth import (
    Argon2Gate,
    Busy,
    LoginOk,
    begin_totp_enrolment,
    change_passphrase,
    commit_totp_enrolment,
    lock_delay,
    login,
    logout,
    logout_others,
)
from tipbox.models import Journalist, SessionRow

# Mid-step, so that T0 and T0 + a few seconds share a TOTP step.
T0 = datetime(2030, 1, 1, 12, 0, 10, tzinfo=UTC)
STEP = timedelta(seconds=30)


@pytest.fixture
def gate() -> Argon2Gate:
    """A gate with room to spare: the tests that fill one make their own."""
    return Argon2Gate(2)


@pytest.fixture
def admin(db: Session, config: Config) -> instance.InitResult:
    """An initialised instance; its first admin is ``admin``."""
    result = instance.init_instance(db, config, name="Test", admin_username="admin")
    db.commit()
    return result


def _row(db: Session, username: str = "admin") -> Journalist:
    query = select(Journalist).where(Journalist.username == username)
    return db.scalars(query.execution_options(populate_existing=True)).one()


def _code(secret: str, at: datetime, offset: int = 0) -> str:
    return str(pyotp.TOTP(secret).at(at, counter_offset=offset))


def _wrong_code(secret: str, at: datetime) -> str:
    valid = {_code(secret, at, offset) for offset in (-1, 0, 1)}
    return next(c for c in (f"{n:06d}" for n in range(1000)) if c not in valid)


def _login(
    db: Session,
    config: Config,
    gate: Argon2Gate,
    admin: instance.InitResult,
    at: datetime,
    *,
    passphrase: str | None = None,
    code: str | None = None,
) -> LoginOk | None:
    creds = admin.admin
    result = login(
        db,
        config,
        creds.username,
        creds.passphrase if passphrase is None else passphrase,
        _code(creds.totp_secret, at) if code is None else code,
        at,
        gate=gate,
    )
    db.commit()
    return result


def _session_count(db: Session) -> int:
    return int(db.scalar(select(func.count()).select_from(SessionRow)) or 0)


# --- login ---------------------------------------------------------------------------------


def test_login_starts_a_session_holding_the_key_seed(
    db: Session, config: Config, gate: Argon2Gate, admin: instance.InitResult
) -> None:
    ok = _login(db, config, gate, admin, T0)
    assert ok is not None
    row = _row(db)
    assert (ok.journalist_id, ok.role, ok.must_change_passphrase) == (row.id, "admin", False)
    assert keypair_from_seed(Role.JOURNALIST, ok.key_seed).key_id == row.key_id
    assert ok.key_seed.hex() not in repr(ok)
    assert ok.cookie not in repr(ok)
    assert row.totp_last_step == pyotp.TOTP(admin.admin.totp_secret).timecode(T0)
    assert row.failed_login_count == 0
    data = sessions.load(db, sessions.JOURNALIST, ok.cookie, T0 + timedelta(minutes=1))
    assert data is not None
    assert (data.user, data.role, data.key_seed) == (row.id, "admin", ok.key_seed)
    assert data.absolute_expires_at == T0 + timedelta(hours=12)
    assert data.idle_expires_at == T0 + timedelta(minutes=31)
    idle_gone = T0 + timedelta(minutes=31, seconds=1)
    assert sessions.load(db, sessions.JOURNALIST, ok.cookie, idle_gone) is None


def test_wrong_passphrase_is_refused_and_counted(
    db: Session, config: Config, gate: Argon2Gate, admin: instance.InitResult
) -> None:
    assert _login(db, config, gate, admin, T0, passphrase=generate_passphrase()) is None
    assert _login(db, config, gate, admin, T0, passphrase="not a passphrase") is None
    row = _row(db)
    assert (row.failed_login_count, row.totp_last_step) == (2, None)
    assert _session_count(db) == 0


def test_wrong_code_is_refused_and_counted(
    db: Session, config: Config, gate: Argon2Gate, admin: instance.InitResult
) -> None:
    secret = admin.admin.totp_secret
    for code in (_wrong_code(secret, T0), "abcdef", "", "1234567"):
        assert _login(db, config, gate, admin, T0, code=code) is None
    row = _row(db)
    assert (row.failed_login_count, row.totp_last_step) == (4, None)
    assert _session_count(db) == 0


def test_code_is_accepted_once_and_never_an_earlier_step(
    db: Session, config: Config, gate: Argon2Gate, admin: instance.InitResult
) -> None:
    secret = admin.admin.totp_secret
    assert _login(db, config, gate, admin, T0) is not None
    # The same code again, even a few seconds later in the same step.
    assert _login(db, config, gate, admin, T0 + timedelta(seconds=5)) is None
    # The next step's code is fine; then the previous step's, still inside the window, is not.
    later = T0 + STEP
    assert _login(db, config, gate, admin, later) is not None
    assert _login(db, config, gate, admin, later, code=_code(secret, later, -1)) is None
    assert _row(db).totp_last_step == pyotp.TOTP(secret).timecode(later)


def test_codes_one_step_either_side_are_accepted_two_are_not(
    db: Session, config: Config, gate: Argon2Gate, admin: instance.InitResult
) -> None:
    secret = admin.admin.totp_secret
    assert _login(db, config, gate, admin, T0, code=_code(secret, T0, -2)) is None
    assert _login(db, config, gate, admin, T0, code=_code(secret, T0, -1)) is not None
    assert _login(db, config, gate, admin, T0, code=_code(secret, T0, 2)) is None
    spaced = _code(secret, T0, 1)
    assert _login(db, config, gate, admin, T0, code=f"{spaced[:3]} {spaced[3:]}") is not None
    assert _row(db).totp_last_step == pyotp.TOTP(secret).timecode(T0) + 1


def test_unknown_and_inactive_accounts_get_the_same_none(
    db: Session, config: Config, gate: Argon2Gate, admin: instance.InitResult
) -> None:
    creds = admin.admin
    code = _code(creds.totp_secret, T0)
    assert login(db, config, "nobody", creds.passphrase, code, T0, gate=gate) is None
    row = _row(db)
    row.is_active = False
    db.commit()
    assert _login(db, config, gate, admin, T0) is None
    assert (_row(db).failed_login_count, _session_count(db)) == (0, 0)


def test_unknown_username_costs_argon2id_at_the_configured_cost(
    db: Session, config: Config, gate: Argon2Gate, admin: instance.InitResult
) -> None:
    # An impossible configured cost makes Argon2id refuse to run: seeing that refusal proves
    # the unknown username reached Argon2id, at the configured (not a cheaper) cost.
    impossible = replace(config, journalist_kdf=Argon2Cost(opslimit=1, memlimit=1))
    passphrase = generate_passphrase()
    with pytest.raises(Rejected, match=r"^argon2\.cost:"):
        login(db, impossible, "nobody", passphrase, "123456", T0, gate=gate)
    # A malformed passphrase is refused before Argon2id, for unknown and real accounts alike.
    assert login(db, impossible, "nobody", "too short", "123456", T0, gate=gate) is None


def test_naive_now_is_refused(
    db: Session, config: Config, gate: Argon2Gate, admin: instance.InitResult
) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        _login(db, config, gate, admin, T0.replace(tzinfo=None))


# --- throttle ------------------------------------------------------------------------------


def test_lock_delay_schedule() -> None:
    seconds = [lock_delay(n).total_seconds() for n in range(15)]
    assert seconds == [0, 0, 0, 0, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]
    assert lock_delay(10_000) == timedelta(minutes=15)


def test_fourth_failure_locks_even_the_right_credentials_out(
    db: Session, config: Config, gate: Argon2Gate, admin: instance.InitResult
) -> None:
    wrong = generate_passphrase()
    for _ in range(3):
        assert _login(db, config, gate, admin, T0, passphrase=wrong) is None
    assert _row(db).locked_until is None
    assert _login(db, config, gate, admin, T0, passphrase=wrong) is None
    assert (_row(db).failed_login_count, _row(db).locked_until) == (4, T0 + timedelta(seconds=2))
    # Locked: the right passphrase and code are refused, and the refusal is not counted.
    assert _login(db, config, gate, admin, T0 + timedelta(seconds=1)) is None
    assert _row(db).failed_login_count == 4
    # Once the lock has passed, a fifth failure locks for 4 seconds.
    after = T0 + timedelta(seconds=2)
    assert _login(db, config, gate, admin, after, passphrase=wrong) is None
    assert _row(db).locked_until == after + timedelta(seconds=4)
    # After that lock, the right credentials (the code unspent so far) get in and reset it.
    assert _login(db, config, gate, admin, after + timedelta(seconds=4)) is not None
    row = _row(db)
    assert (row.failed_login_count, row.locked_until) == (0, None)


def test_locked_account_is_refused_without_argon2id(
    db: Session, config: Config, gate: Argon2Gate, admin: instance.InitResult
) -> None:
    # A stored cost Argon2id refuses to run with: any Argon2id run would raise.
    row = _row(db)
    row.kdf_memlimit = 1
    row.locked_until = T0 + timedelta(minutes=1)
    db.commit()
    assert _login(db, config, gate, admin, T0) is None
    assert _row(db).failed_login_count == 0
    row = _row(db)
    row.locked_until = None
    db.commit()
    with pytest.raises(Rejected, match=r"^argon2\.cost:"):
        _login(db, config, gate, admin, T0)


def test_full_gate_raises_busy_before_any_work(
    db: Session, config: Config, admin: instance.InitResult
) -> None:
    with pytest.raises(ValueError, match="at least one slot"):
        Argon2Gate(0)
    gate = Argon2Gate(1)
    with gate.slot():
        with pytest.raises(Busy):
            _login(db, config, gate, admin, T0, passphrase=generate_passphrase())
        with pytest.raises(Busy):
            change_passphrase(
                db, config, _row(db).id, admin.admin.passphrase, T0, gate=gate, keep_cookie=None
            )
    row = _row(db)
    assert (row.failed_login_count, row.totp_last_step, _session_count(db)) == (0, None, 0)
    assert _login(db, config, gate, admin, T0) is not None


# --- logout --------------------------------------------------------------------------------


def test_logout_and_logout_others(
    db: Session, config: Config, gate: Argon2Gate, admin: instance.InitResult
) -> None:
    first, second, third = (_login(db, config, gate, admin, T0 + i * STEP) for i in range(3))
    assert first is not None
    assert second is not None
    assert third is not None
    assert logout(db, first.cookie) is True
    assert logout(db, first.cookie) is False
    assert logout_others(db, third.journalist_id, third.cookie) == 1
    db.commit()
    at = T0 + 3 * STEP
    assert sessions.load(db, sessions.JOURNALIST, first.cookie, at) is None
    assert sessions.load(db, sessions.JOURNALIST, second.cookie, at) is None
    assert sessions.load(db, sessions.JOURNALIST, third.cookie, at) is not None


# --- TOTP re-enrolment ---------------------------------------------------------------------


def test_enrolment_with_a_wrong_code_or_passphrase_changes_nothing(
    db: Session, config: Config, gate: Argon2Gate, admin: instance.InitResult
) -> None:
    row = _row(db)
    before = (row.totp_box, row.totp_last_step, row.verifier)
    new = begin_totp_enrolment()
    for passphrase, code in [
        (admin.admin.passphrase, _wrong_code(new, T0)),
        (admin.admin.passphrase, _code(admin.admin.totp_secret, T0 + 3 * STEP)),
    ]:
        assert not commit_totp_enrolment(db, config, row.id, passphrase, new, code, T0, gate=gate)
    db.commit()
    row = _row(db)
    assert (row.totp_box, row.totp_last_step, row.verifier) == before
    assert row.failed_login_count == 0
    wrong = generate_passphrase()
    assert not commit_totp_enrolment(db, config, row.id, wrong, new, _code(new, T0), T0, gate=gate)
    db.commit()
    row = _row(db)
    assert (row.totp_box, row.failed_login_count) == (before[0], 1)
    with pytest.raises(ValueError, match="base32"):
        commit_totp_enrolment(db, config, row.id, wrong, "not base32!", "123456", T0, gate=gate)


def test_enrolment_with_the_right_code_switches_secrets(
    db: Session, config: Config, gate: Argon2Gate, admin: instance.InitResult
) -> None:
    row = _row(db)
    new = begin_totp_enrolment()
    assert len(new) == 32
    ok = commit_totp_enrolment(
        db, config, row.id, admin.admin.passphrase, new, _code(new, T0), T0, gate=gate
    )
    assert ok
    db.commit()
    assert _row(db).totp_last_step == pyotp.TOTP(new).timecode(T0)
    # The enrolment code is spent; the old secret no longer works; the new one does.
    assert _login(db, config, gate, admin, T0, code=_code(new, T0)) is None
    later = T0 + STEP
    assert _login(db, config, gate, admin, later) is None
    assert _login(db, config, gate, admin, later, code=_code(new, later)) is not None
    unlocked = unlock_journalist(
        db, directory.identity_public(db), _row(db), admin.admin.passphrase
    )
    assert unlocked.totp_secret == new


# --- passphrase change ---------------------------------------------------------------------


def test_change_passphrase_reboxes_the_same_seed(
    db: Session, config: Config, gate: Argon2Gate, admin: instance.InitResult
) -> None:
    kept = _login(db, config, gate, admin, T0)
    other = _login(db, config, gate, admin, T0 + STEP)
    assert kept is not None
    assert other is not None
    row = _row(db)
    old_salt, key_id = row.kdf_salt, row.key_id
    row.must_change_passphrase = True
    db.commit()
    old = admin.admin.passphrase
    new = change_passphrase(db, config, row.id, old, T0, gate=gate, keep_cookie=kept.cookie)
    db.commit()
    assert new is not None
    assert new != old
    assert len(new.split()) >= 7
    row = _row(db)
    assert (row.key_id, row.must_change_passphrase) == (key_id, False)
    assert row.kdf_salt != old_salt
    at = T0 + 2 * STEP
    assert sessions.load(db, sessions.JOURNALIST, other.cookie, at) is None
    assert sessions.load(db, sessions.JOURNALIST, kept.cookie, at) is not None
    assert _login(db, config, gate, admin, at) is None
    ok = _login(db, config, gate, admin, at, passphrase=new)
    assert ok is not None
    assert ok.key_seed == kept.key_seed
    # The grants made to the (unchanged) key still open with the new passphrase.
    identity = directory.identity_public(db)
    unlocked = unlock_journalist(db, identity, _row(db), new)
    assert unlocked.totp_secret == admin.admin.totp_secret
    seed = keyring.granted_seed(
        db, identity, unlocked.keypair, Role.NEWSROOM, admin.newsroom.key_id
    )
    assert keypair_from_seed(Role.NEWSROOM, seed).public == admin.newsroom


def test_change_passphrase_with_a_wrong_one_changes_nothing(
    db: Session, config: Config, gate: Argon2Gate, admin: instance.InitResult
) -> None:
    row = _row(db)
    before = (row.kdf_salt, row.verifier, row.seed_box, row.totp_box)
    wrong = generate_passphrase()
    assert change_passphrase(db, config, row.id, wrong, T0, gate=gate, keep_cookie=None) is None
    db.commit()
    row = _row(db)
    assert (row.kdf_salt, row.verifier, row.seed_box, row.totp_box) == before
    assert row.failed_login_count == 1
    assert _login(db, config, gate, admin, T0) is not None


# --- whose account -------------------------------------------------------------------------


def test_account_actions_act_on_the_id_they_are_given(
    db: Session, config: Config, gate: Argon2Gate, admin: instance.InitResult
) -> None:
    # The functions trust the journalist id: the web layer must take it from the session.
    # Another journalist's id with one's own passphrase opens nothing and changes nothing.
    identity_public = directory.identity_public(db)
    admin_keys = unlock_journalist(db, identity_public, _row(db), admin.admin.passphrase).keypair
    identity_seed = keyring.granted_seed(
        db, identity_public, admin_keys, Role.IDENTITY, identity_public.key_id
    )
    identity = keypair_from_seed(Role.IDENTITY, identity_seed)
    bob = create_journalist(
        db, identity, "bob", is_admin=False, cost=config.journalist_kdf, must_change_passphrase=True
    )
    db.commit()
    bob_id, mine = bob.row.id, admin.admin.passphrase
    admin_box = _row(db).totp_box
    before = (_row(db, "bob").verifier, _row(db, "bob").totp_box)
    new = begin_totp_enrolment()
    code = _code(new, T0)
    assert not commit_totp_enrolment(db, config, bob_id, mine, new, code, T0, gate=gate)
    assert change_passphrase(db, config, bob_id, mine, T0, gate=gate, keep_cookie=None) is None
    db.commit()
    assert (_row(db, "bob").verifier, _row(db, "bob").totp_box) == before
    assert _row(db, "bob").failed_login_count == 2
    # With Bob's own passphrase the same calls act on Bob's account.
    creds = bob.credentials
    ok = login(db, config, "bob", creds.passphrase, _code(creds.totp_secret, T0), T0, gate=gate)
    assert ok is not None
    assert (ok.role, ok.must_change_passphrase) == ("journalist", True)
    assert commit_totp_enrolment(db, config, bob_id, creds.passphrase, new, code, T0, gate=gate)
    db.commit()
    assert _row(db, "bob").totp_box != before[1]
    assert (_row(db).totp_box, _row(db).failed_login_count) == (admin_box, 0)


def test_every_login_attempt_is_audited_without_an_unknown_name(
    db: Session, config: Config, gate: Argon2Gate, admin: instance.InitResult
) -> None:
    assert _login(db, config, gate, admin, T0) is not None
    assert _login(db, config, gate, admin, T0, passphrase=generate_passphrase()) is None
    assert login(db, config, "no such user", "anything", "123456", T0, gate=gate) is None
    db.commit()
    found = [(event.action, event.actor, event.detail) for event in audit.events(db)]
    assert found == [
        ("login.failure", None, {"via": "web"}),
        ("login.failure", "admin", {"via": "web"}),
        ("login.success", "admin", {"via": "web"}),
    ]
