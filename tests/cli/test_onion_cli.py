"""``tipbox onion …`` through click's test runner, on SQLite and PostgreSQL (issue #6).

Adding and revoking are unlocked by the admin's passphrase and a TOTP code fed through
standard input (as in ``test_journalist_cli``): a code is accepted once per 30-second step,
so each test unlocks at most three times.
"""

from __future__ import annotations

import base64
import stat
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pyotp
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select
from sqlalchemy.orm import Session

from tipbox import audit, directory, instance, onion, onion_sync
from tipbox.accounts import Credentials, unlock_journalist
from tipbox.cli import cli
from tipbox.cli_unlock import FAILED
from tipbox.config import Config
from tipbox.journalists import Admin, add_journalist
from tipbox.models import Journalist


def key_line(seed: int) -> str:
    return "descriptor:x25519:" + base64.b32encode(bytes([seed]) * 32).decode().rstrip("=")


class Desk:
    def __init__(self, db: Session, config: Config, admin: Credentials) -> None:
        self.db = db
        self.config = config
        self.admin = admin

    @property
    def clients(self) -> Path:
        assert self.config.onion_clients_dir is not None
        return self.config.onion_clients_dir

    def code(self) -> str:
        self.db.rollback()
        query = select(Journalist).where(Journalist.username == "admin")
        row = self.db.scalars(query.execution_options(populate_existing=True)).one()
        totp = pyotp.TOTP(self.admin.totp_secret)
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
        self.db.rollback()
        return str(totp.generate_otp(step))

    def run(self, *args: str, before: str = "", unlock: bool = True) -> Result:
        """``tipbox onion ARGS``, with ``--admin admin`` and its secrets when ``unlock``."""
        typed = f"{before}{self.admin.passphrase}\n{self.code()}\n" if unlock else before
        extra = ["--admin", "admin"] if unlock else []
        return CliRunner().invoke(
            cli, ["onion", *args, *extra], obj=self.config, input=typed or None
        )

    def events(self, action: str) -> list[dict[str, audit.Detail]]:
        self.db.rollback()
        return [e.detail for e in audit.events(self.db, action_prefix=action)]


@pytest.fixture
def desk(db: Session, config: Config, tmp_path: Path) -> Desk:
    config = replace(config, onion_clients_dir=tmp_path / "authorized_clients")
    result = instance.init_instance(db, config, name="Test", admin_username="admin")
    db.commit()
    identity = directory.identity_public(db)
    row = db.scalars(select(Journalist).where(Journalist.username == "admin")).one()
    unlocked = unlock_journalist(db, identity, row, result.admin.passphrase)
    admin = Admin(row.id, unlocked.keypair, identity)
    add_journalist(db, config, admin, "alice", is_admin=False)
    db.commit()
    return Desk(db, config, result.admin)


def test_instructions_say_how_to_make_the_key_pair() -> None:
    result = CliRunner().invoke(cli, ["onion", "instructions"], obj=Config.for_data_dir(Path()))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "openssl genpkey -algorithm x25519" in out
    assert "descriptor:x25519:" in out
    assert "about:preferences#privacy" in out
    assert "Onion Services Authentication" in out
    assert (
        "<journalist onion address without .onion>:descriptor:x25519:<contents of tipbox.prv.key>"
        in out
    )


def test_add_list_and_revoke(desk: Desk) -> None:
    added = desk.run("add-device", "alice", "laptop", "--key", key_line(1))
    assert added.exit_code == 0, added.output
    assert "systemctl reload tor" in added.output
    path = desk.clients / "alice--laptop.auth"
    assert path.read_text(encoding="ascii") == key_line(1) + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(desk.clients.stat().st_mode) == 0o700

    prompted = desk.run("add-device", "alice", "phone", before=key_line(2) + "\n")
    assert prompted.exit_code == 0, prompted.output
    assert "Public key line" in prompted.output

    listed = desk.run("list", unlock=False)
    assert listed.exit_code == 0, listed.output
    assert "alice--laptop.auth" in listed.output
    assert "alice--phone.auth" in listed.output

    revoked = desk.run("revoke", "alice", "phone")
    assert revoked.exit_code == 0, revoked.output
    assert "systemctl reload tor" in revoked.output
    assert sorted(p.name for p in desk.clients.iterdir()) == ["alice--laptop.auth"]
    assert sorted(str(e["device"]) for e in desk.events("onion.device_add")) == [
        "laptop",
        "phone",
    ]
    assert desk.events("onion.device_revoke") == [{"username": "alice", "device": "phone"}]


def test_a_bad_key_is_refused_before_the_admin_unlocks(desk: Desk) -> None:
    result = desk.run(
        "add-device",
        "alice",
        "laptop",
        "--key",
        "descriptor:x25519:AAAA",
        "--admin",
        "admin",
        unlock=False,
    )
    assert result.exit_code == 1
    assert "52 base32 characters" in result.output
    assert not desk.clients.exists() or not any(desk.clients.iterdir())


def test_unknown_journalist_and_wrong_passphrase_are_refused(desk: Desk) -> None:
    unknown = desk.run("add-device", "carol", "laptop", "--key", key_line(1))
    assert unknown.exit_code == 1
    assert "no active journalist named 'carol'" in unknown.output
    wrong = CliRunner().invoke(
        cli,
        ["onion", "add-device", "alice", "laptop", "--key", key_line(1), "--admin", "admin"],
        obj=desk.config,
        input=f"not the passphrase\n{desk.code()}\n",
    )
    assert wrong.exit_code == 1
    assert FAILED in wrong.output
    assert not any(desk.clients.iterdir())
    assert desk.events("onion.") == []


def test_revoke_all_and_nothing_to_revoke(desk: Desk) -> None:
    onion.add_device(desk.config, "alice", "laptop", key_line(1))
    onion.add_device(desk.config, "alice", "phone", key_line(2))
    revoked = desk.run("revoke", "alice")
    assert revoked.exit_code == 0, revoked.output
    assert "laptop, phone" in revoked.output
    none = desk.run("revoke", "alice")
    assert none.exit_code == 1
    assert "alice has no device to revoke" in none.output


def test_journalist_remove_revokes_devices(desk: Desk) -> None:
    onion.add_device(desk.config, "alice", "laptop", key_line(1))
    code = desk.code()
    result = CliRunner().invoke(
        cli,
        ["journalist", "remove", "alice", "--yes", "--admin", "admin"],
        obj=desk.config,
        input=f"{desk.admin.passphrase}\n{code}\n",
    )
    assert result.exit_code == 0, result.output
    assert "systemctl reload tor" in result.output
    assert list(desk.clients.iterdir()) == []
    assert desk.events("onion.device_revoke") == [{"username": "alice", "device": "laptop"}]


def test_journalist_deactivate_revokes_devices(desk: Desk) -> None:
    onion.add_device(desk.config, "alice", "laptop", key_line(1))
    code = desk.code()
    result = CliRunner().invoke(
        cli,
        ["journalist", "deactivate", "alice", "--admin", "admin"],
        obj=desk.config,
        input=f"{desk.admin.passphrase}\n{code}\n",
    )
    assert result.exit_code == 0, result.output
    assert list(desk.clients.iterdir()) == []


def test_no_clients_dir_is_refused(desk: Desk) -> None:
    config = replace(desk.config, onion_clients_dir=None)
    for args in (
        ["list"],
        ["add-device", "alice", "laptop", "--key", key_line(1), "--admin", "admin"],
        ["revoke", "alice", "--admin", "admin"],
    ):
        result = CliRunner().invoke(cli, ["onion", *args], obj=config)
        assert result.exit_code == 1
        assert "this instance has no journalist onion service configured" in result.output


def test_env_var_sets_the_clients_dir(tmp_path: Path) -> None:
    env = {"TIPBOX_DATA_DIR": str(tmp_path), "TIPBOX_ONION_CLIENTS_DIR": str(tmp_path / "ac")}
    assert Config.from_env(env).onion_clients_dir == (tmp_path / "ac").resolve()
    assert Config.from_env({"TIPBOX_DATA_DIR": str(tmp_path)}).onion_clients_dir is None


def test_sync_prints_what_changed_and_what_it_refused(tmp_path: Path) -> None:
    """What tipbox-onion-sync.service runs: no database, no environment needed."""
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o750)
    (tmp_path / "tor").mkdir(mode=0o700)
    target = tmp_path / "tor" / "authorized_clients"
    (spool / "alice--laptop.auth").write_text(key_line(1) + "\n", encoding="ascii")
    (spool / "bad.auth").write_text("descriptor:x25519:AAAA\n", encoding="ascii")
    args = ["onion", "sync", "--from", str(spool), "--to", str(target)]
    config = Config.for_data_dir(tmp_path / "unused")
    result = CliRunner().invoke(cli, args, obj=config)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "added alice--laptop.auth",
        "1 device(s) authorized; changed",
    ]
    assert result.stderr.startswith("refused bad.auth: not a client key line")
    assert (target / "alice--laptop.auth").read_text(encoding="ascii") == key_line(1) + "\n"
    again = CliRunner().invoke(cli, args, obj=config)
    assert again.stdout.splitlines() == ["1 device(s) authorized; unchanged"]

    (spool / "alice--laptop.auth").unlink()
    locked = CliRunner().invoke(cli, args, obj=config)
    assert locked.exit_code == 0, locked.output
    assert "removed alice--laptop.auth" in locked.stdout
    assert "journalist onion stays closed" in locked.stdout
    assert [p.name for p in target.iterdir()] == [onion_sync.PLACEHOLDER]

    target.chmod(0o755)
    refused = CliRunner().invoke(cli, args, obj=config)
    assert refused.exit_code == 1
    assert "sync refused, nothing changed" in refused.output
    assert not (tmp_path / "unused").exists()  # the command touched no instance
