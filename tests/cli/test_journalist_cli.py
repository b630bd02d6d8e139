"""``tipbox journalist …`` through click's test runner, on SQLite and PostgreSQL.

Each command is unlocked by the admin's passphrase and a TOTP code fed through standard
input. A code is accepted once per 30-second step and account, so each test unlocks at
most three times and ``fresh_code`` picks a step not yet spent (as the web tests do).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import pyotp
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select
from sqlalchemy.orm import Session

from tipbox import audit, directory, instance
from tipbox.accounts import Credentials, unlock_journalist
from tipbox.cli import cli
from tipbox.cli_unlock import FAILED
from tipbox.config import Config
from tipbox.journalist_auth import Argon2Gate, complete_first_login, login
from tipbox.journalists import AccountState, Admin, add_journalist, state_of
from tipbox.models import Journalist

PASSPHRASE_LINE = re.compile(r"^  passphrase:  (.+)$", re.MULTILINE)
SECRET_LINE = re.compile(r"^  TOTP secret: ([A-Z2-7]+)$", re.MULTILINE)


@dataclass
class Instance:
    """An initialised instance and its first admin's credentials."""

    db: Session
    config: Config
    admin: Credentials

    def row(self, username: str) -> Journalist | None:
        self.db.rollback()
        query = select(Journalist).where(Journalist.username == username)
        return self.db.scalars(query.execution_options(populate_existing=True)).one_or_none()

    def fresh_code(self, username: str, secret: str) -> str:
        """A code of ``secret`` for a step the account has not spent (within the window)."""
        row = self.row(username)
        assert row is not None
        totp = pyotp.TOTP(secret)
        last = row.totp_last_step
        # The oldest unspent step still accepted, with a margin: a step about to leave the
        # window is skipped, since the code may be checked seconds later (a process start,
        # Argon2id on a loaded machine); when no step is left, wait for the next one.
        while True:
            current = totp.timecode(datetime.now(UTC))
            oldest = current - 1 if time.time() % 30 < 15 else current
            step = oldest if last is None else max(oldest, last + 1)
            if step <= current + 1:
                break
            time.sleep(1)
        return str(totp.generate_otp(step))

    def run(self, *args: str, before: str = "", passphrase: str | None = None) -> Result:
        """``tipbox journalist ARGS --admin admin``, unlocked with the admin's secrets."""
        typed = self.admin.passphrase if passphrase is None else passphrase
        code = self.fresh_code("admin", self.admin.totp_secret)
        self.db.rollback()  # leave SQLite's write lock free for the command
        return CliRunner().invoke(
            cli,
            ["journalist", *args, "--admin", "admin"],
            obj=self.config,
            input=f"{before}{typed}\n{code}\n",
        )

    def admin_keys(self) -> Admin:
        """The admin, unlocked in the domain (no code spent), to set accounts up."""
        identity = directory.identity_public(self.db)
        row = self.row("admin")
        assert row is not None
        unlocked = unlock_journalist(self.db, identity, row, self.admin.passphrase)
        return Admin(row.id, unlocked.keypair, identity)

    def add(self, username: str) -> Credentials:
        creds = add_journalist(self.db, self.config, self.admin_keys(), username, is_admin=False)
        self.db.commit()
        return creds

    def state(self, username: str) -> AccountState | None:
        row = self.row(username)
        return None if row is None else state_of(row)


@pytest.fixture
def desk(db: Session, config: Config) -> Instance:
    result = instance.init_instance(db, config, name="Test", admin_username="admin")
    db.commit()
    return Instance(db, config, result.admin)


def _printed(result: Result) -> Credentials:
    passphrase = PASSPHRASE_LINE.search(result.output)
    secret = SECRET_LINE.search(result.output)
    assert passphrase is not None
    assert secret is not None
    username = re.search(r"^  username:    (\S+)$", result.output, re.MULTILINE)
    assert username is not None
    return Credentials(username.group(1), passphrase.group(1), secret.group(1))


def _logs_in(desk: Instance, creds: Credentials) -> bool:
    code = desk.fresh_code(creds.username, creds.totp_secret)
    now = datetime.now(UTC)
    ok = login(
        desk.db, desk.config, creds.username, creds.passphrase, code, now, gate=Argon2Gate(1)
    )
    desk.db.commit()
    return ok is not None


def test_add_prints_temporary_credentials_once_and_list_shows_them(desk: Instance) -> None:
    added = desk.run("add", "aigerim")
    assert added.exit_code == 0, added.output
    creds = _printed(added)
    assert len(creds.passphrase.split()) == 7
    assert added.output.count(creds.passphrase) == 1
    assert f"otpauth://totp/tipbox:aigerim?secret={creds.totp_secret}" in added.output
    assert "confirm-key aigerim" in added.output
    assert desk.state("aigerim") == AccountState.FIRST_LOGIN
    assert _logs_in(desk, creds)

    listed = desk.run("list")
    assert listed.exit_code == 0, listed.output
    lines = {line.split()[0]: line.split()[1:3] for line in listed.output.splitlines()[-2:]}
    assert lines == {"admin": ["admin", "active"], "aigerim": ["journalist", "first-login"]}
    assert creds.passphrase not in listed.output
    events = [(e.actor, e.action) for e in reversed(audit.events(desk.db))]
    assert ("admin", "journalist.add") in events
    assert events.count(("admin", "login.success")) == 2


def test_add_an_admin_then_reset_them(desk: Instance) -> None:
    added = desk.run("add", "bek", "--admin-role")
    assert added.exit_code == 0, added.output
    assert "Added bek (admin)." in added.output
    assert "confirm-key" not in added.output
    first = _printed(added)
    row = desk.row("bek")
    assert row is not None
    assert row.is_admin
    reset = desk.run("reset", "bek")
    assert reset.exit_code == 0, reset.output
    again = _printed(reset)
    assert again.passphrase != first.passphrase
    assert not _logs_in(desk, first)
    assert _logs_in(desk, again)


def test_role_deactivate_and_activate(desk: Instance) -> None:
    desk.add("aigerim")
    role = desk.run("role", "aigerim", "admin")
    assert role.exit_code == 0, role.output
    assert "aigerim is now admin." in role.output
    row = desk.row("aigerim")
    assert row is not None
    assert row.is_admin
    off = desk.run("deactivate", "aigerim")
    assert off.exit_code == 0, off.output
    assert desk.state("aigerim") == AccountState.INACTIVE
    on = desk.run("activate", "aigerim")
    assert on.exit_code == 0, on.output
    assert "Activated aigerim." in on.output
    assert desk.state("aigerim") == AccountState.FIRST_LOGIN


def test_remove_asks_first_and_advises_a_rotation(desk: Instance) -> None:
    desk.add("aigerim")
    # Declined: nothing happens, and nothing is unlocked.
    declined = CliRunner().invoke(
        cli, ["journalist", "remove", "aigerim", "--admin", "admin"], obj=desk.config, input="n\n"
    )
    assert declined.exit_code == 1
    assert desk.state("aigerim") == AccountState.FIRST_LOGIN
    removed = desk.run("remove", "aigerim", before="y\n")
    assert removed.exit_code == 0, removed.output
    assert "tipbox keys rotate" in removed.output
    assert desk.state("aigerim") == AccountState.REMOVED
    again = desk.run("remove", "aigerim", "--yes")
    assert again.exit_code == 1
    assert "no journalist named 'aigerim'" in again.output
    assert again.exception is None or isinstance(again.exception, SystemExit)


def test_confirm_key_refuses_a_fingerprint_that_does_not_match(desk: Instance) -> None:
    creds = desk.add("aigerim")
    row = desk.row("aigerim")
    assert row is not None
    done = complete_first_login(
        desk.db, desk.config, row.id, creds.passphrase, datetime.now(UTC), gate=Argon2Gate(1)
    )
    desk.db.commit()
    assert done is not None
    last = done.fingerprint[-1]
    wrong = done.fingerprint[:-1] + ("0" if last != "0" else "1")
    refused = desk.run("confirm-key", "aigerim", "--fingerprint", wrong)
    assert refused.exit_code == 1
    assert "not the fingerprint" in refused.output
    assert desk.state("aigerim") == AccountState.AWAITING_CONFIRMATION
    confirmed = desk.run("confirm-key", "aigerim", "--fingerprint", done.fingerprint)
    assert confirmed.exit_code == 0, confirmed.output
    assert done.fingerprint in confirmed.output
    assert desk.state("aigerim") == AccountState.ACTIVE


def test_only_an_admin_with_the_right_secrets_unlocks(desk: Instance) -> None:
    wrong = desk.run("add", "eve", passphrase=desk.admin.passphrase + " extra")
    assert wrong.exit_code == 1
    assert FAILED in wrong.output
    assert desk.row("eve") is None
    creds = desk.add("aigerim")
    code = desk.fresh_code("aigerim", creds.totp_secret)
    desk.db.rollback()
    journalist = CliRunner().invoke(
        cli,
        ["journalist", "add", "eve", "--admin", "aigerim"],
        obj=desk.config,
        input=f"{creds.passphrase}\n{code}\n",
    )
    assert journalist.exit_code == 1
    assert FAILED in journalist.output
    assert desk.row("eve") is None
    unknown = desk.run("deactivate", "nobody")
    assert unknown.exit_code == 1
    assert "no journalist named 'nobody'" in unknown.output
    assert "Traceback" not in unknown.output
