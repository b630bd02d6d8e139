"""Journalist onion devices (``tipbox.onion``), issue #6: key lines, file names and modes,
listing and revoking, and revocation when a journalist is removed or deactivated.

Real files under ``tmp_path`` and a real instance and database (SQLite, and PostgreSQL when
configured) for the parts that need one; nothing mocked.
"""

from __future__ import annotations

import base64
import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tipbox import audit, directory, instance, onion
from tipbox.accounts import unlock_journalist
from tipbox.config import Config
from tipbox.journalists import AccountError, Admin, add_journalist, deactivate, remove
from tipbox.models import Journalist


def key_line(seed: int = 1) -> str:
    raw = bytes([seed]) * 32
    return "descriptor:x25519:" + base64.b32encode(raw).decode("ascii").rstrip("=")


KEY = key_line(1)
BODY = KEY.removeprefix("descriptor:x25519:")


@pytest.fixture
def clients(tmp_path: Path) -> Config:
    return Config.for_data_dir(tmp_path, onion_clients_dir=tmp_path / "authorized_clients")


def _dir(config: Config) -> Path:
    assert config.onion_clients_dir is not None
    return config.onion_clients_dir


# --- key lines ---------------------------------------------------------------------------


def test_a_valid_key_line_is_accepted_with_or_without_one_newline() -> None:
    assert len(BODY) == 52
    assert onion.parse_key_line(KEY) == KEY
    assert onion.parse_key_line(KEY + "\n") == KEY
    assert onion.parse_key_line(KEY + "\r\n") == KEY


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "not a Tor client"),
        (BODY, "not a Tor client"),
        ("descriptor:ed25519:" + BODY, "not a Tor client"),
        ("Descriptor:x25519:" + BODY, "not a Tor client"),
        (" " + KEY, "not a Tor client"),
        ("descriptor:x25519:" + BODY[:-1], "52 base32"),
        ("descriptor:x25519:" + BODY + "A", "52 base32"),
        ("descriptor:x25519:" + BODY.lower(), "52 base32"),
        ("descriptor:x25519:" + BODY[:-1] + "1", "52 base32"),  # 0, 1, 8, 9 are not base32
        ("descriptor:x25519:" + BODY[:-4] + "====", "52 base32"),
        ("descriptor:x25519:" + BODY + "====", "52 base32"),
        ("descriptor:x25519:" + BODY + " ", "52 base32"),
        ("descriptor:x25519:" + BODY + "\n\n", "52 base32"),
        (KEY + "\n" + key_line(2), "52 base32"),
        (KEY + "\nHiddenServicePort 22 127.0.0.1:22", "52 base32"),
        (KEY + "\x00", "52 base32"),
        ("descriptor:x25519:" + BODY[:-1] + "B", "32-byte"),  # stray low bits
    ],
)
def test_anything_else_is_refused(text: str, why: str) -> None:
    with pytest.raises(onion.InvalidKey, match=why):
        onion.parse_key_line(text)


def test_a_private_key_line_is_refused_as_such() -> None:
    address = "a" * 56
    with pytest.raises(onion.InvalidKey, match="PRIVATE"):
        onion.parse_key_line(f"{address}:descriptor:x25519:{BODY}")


# --- names, files and modes ----------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["", "Alice", "a.b", "a--b", "-a", "../x", "a/b", "a b", "x" * 33, "é", "a\n", ".auth"],
)
def test_bad_names_are_refused(clients: Config, name: str) -> None:
    with pytest.raises(onion.InvalidName):
        onion.add_device(clients, name, "laptop", KEY)
    with pytest.raises(onion.InvalidName):
        onion.add_device(clients, "alice", name, KEY)


def test_add_writes_one_line_0600_in_a_0700_directory(clients: Config) -> None:
    device = onion.add_device(clients, "alice", "laptop-2", KEY + "\n")
    path = _dir(clients) / "alice--laptop-2.auth"
    assert device == onion.Device("alice", "laptop-2", path)
    assert path.read_text(encoding="ascii") == KEY + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(_dir(clients).stat().st_mode) == 0o700
    assert sorted(p.name for p in _dir(clients).iterdir()) == ["alice--laptop-2.auth"]


def test_add_refuses_a_taken_device_name_and_a_key_already_authorized(clients: Config) -> None:
    onion.add_device(clients, "alice", "laptop", KEY)
    with pytest.raises(onion.OnionError, match="already has a device"):
        onion.add_device(clients, "alice", "laptop", key_line(2))
    with pytest.raises(onion.OnionError, match=r"already authorized as alice--laptop\.auth"):
        onion.add_device(clients, "bob", "phone", KEY)
    assert (_dir(clients) / "alice--laptop.auth").read_text(encoding="ascii") == KEY + "\n"
    assert sorted(p.name for p in _dir(clients).iterdir()) == ["alice--laptop.auth"]


def test_a_loose_directory_is_refused(clients: Config) -> None:
    _dir(clients).mkdir(mode=0o755)
    os.chmod(_dir(clients), 0o755)
    with pytest.raises(onion.OnionError, match="0700"):
        onion.add_device(clients, "alice", "laptop", KEY)


def test_no_clients_dir_is_refused(tmp_path: Path) -> None:
    config = Config.for_data_dir(tmp_path)
    for call in (
        lambda: onion.add_device(config, "alice", "laptop", KEY),
        lambda: onion.list_devices(config),
        lambda: onion.revoke_devices(config, "alice"),
        lambda: onion.revoke_device(config, "alice", "laptop"),
    ):
        with pytest.raises(onion.NotConfigured, match="no journalist onion service configured"):
            call()


# --- list and revoke -----------------------------------------------------------------------


def test_list_and_revoke(clients: Config) -> None:
    onion.add_device(clients, "bob", "phone", key_line(3))
    onion.add_device(clients, "alice", "phone", key_line(2))
    onion.add_device(clients, "alice", "laptop", KEY)
    # What the installer writes from --client-auth, and what Tor ignores.
    (_dir(clients) / "laptop.auth").write_text(key_line(4) + "\n", encoding="ascii")
    (_dir(clients) / "notes.txt").write_text("x", encoding="ascii")
    listed = [(d.username, d.device) for d in onion.list_devices(clients)]
    assert listed == [(None, "laptop"), ("alice", "laptop"), ("alice", "phone"), ("bob", "phone")]

    assert onion.revoke_device(clients, "alice", "phone") is True
    assert onion.revoke_device(clients, "alice", "phone") is False
    assert onion.revoke_devices(clients, "alice") == ["laptop"]
    assert onion.revoke_devices(clients, "alice") == []
    assert onion.revoke_devices(clients, "Not.A.File.Name") == []
    listed = [(d.username, d.device) for d in onion.list_devices(clients)]
    assert listed == [(None, "laptop"), ("bob", "phone")]


# --- with the database ---------------------------------------------------------------------


@pytest.fixture
def desk(db: Session, config: Config, tmp_path: Path) -> tuple[Session, Config, Admin]:
    config = replace(config, onion_clients_dir=tmp_path / "authorized_clients")
    result = instance.init_instance(db, config, name="Test", admin_username="admin")
    db.commit()
    identity = directory.identity_public(db)
    row = db.scalars(select(Journalist).where(Journalist.username == "admin")).one()
    unlocked = unlock_journalist(db, identity, row, result.admin.passphrase)
    admin = Admin(row.id, unlocked.keypair, identity)
    for name in ("alice", "bob"):
        add_journalist(db, config, admin, name, is_admin=False)
    db.commit()
    return db, config, admin


def _events(db: Session, action: str) -> list[dict[str, audit.Detail]]:
    return [e.detail for e in audit.events(db, action_prefix=action) if e.action == action]


def test_authorize_needs_an_active_journalist_and_is_audited(
    desk: tuple[Session, Config, Admin],
) -> None:
    db, config, admin = desk
    onion.authorize(db, config, admin.journalist_id, "alice", "laptop", KEY)
    db.commit()
    with pytest.raises(onion.OnionError, match="no active journalist named 'carol'"):
        onion.authorize(db, config, admin.journalist_id, "carol", "laptop", key_line(2))
    db.rollback()
    deactivate(db, admin, "bob")
    db.commit()
    with pytest.raises(onion.OnionError, match="no active journalist named 'bob'"):
        onion.authorize(db, config, admin.journalist_id, "bob", "laptop", key_line(2))
    db.rollback()
    assert [d.path.name for d in onion.list_devices(config)] == ["alice--laptop.auth"]
    assert _events(db, "onion.device_add") == [{"username": "alice", "device": "laptop"}]


def test_remove_revokes_the_journalists_devices(desk: tuple[Session, Config, Admin]) -> None:
    db, config, admin = desk
    onion.add_device(config, "alice", "laptop", KEY)
    onion.add_device(config, "alice", "phone", key_line(2))
    onion.add_device(config, "bob", "laptop", key_line(3))
    remove(db, admin, "alice", config=config)
    db.commit()
    assert [(d.username, d.device) for d in onion.list_devices(config)] == [("bob", "laptop")]
    revoked = sorted(str(e["device"]) for e in _events(db, "onion.device_revoke"))
    assert revoked == ["laptop", "phone"]


def test_deactivate_revokes_the_journalists_devices(desk: tuple[Session, Config, Admin]) -> None:
    db, config, admin = desk
    onion.add_device(config, "alice", "laptop", KEY)
    onion.add_device(config, "bob", "laptop", key_line(3))
    assert deactivate(db, admin, "alice", config=config) is True
    db.commit()
    assert [(d.username, d.device) for d in onion.list_devices(config)] == [("bob", "laptop")]
    assert _events(db, "onion.device_revoke") == [{"username": "alice", "device": "laptop"}]


def test_without_a_config_the_devices_stay(desk: tuple[Session, Config, Admin]) -> None:
    """What the web admin views do until they pass the config."""
    db, config, admin = desk
    onion.add_device(config, "alice", "laptop", KEY)
    remove(db, admin, "alice")
    db.commit()
    assert [d.username for d in onion.list_devices(config)] == ["alice"]


def test_a_failed_revocation_refuses_the_removal(desk: tuple[Session, Config, Admin]) -> None:
    db, config, admin = desk
    onion.add_device(config, "alice", "laptop", KEY)
    os.chmod(_dir(config), 0o750)
    with pytest.raises(AccountError, match="could not revoke alice's onion devices"):
        remove(db, admin, "alice", config=config)
    db.rollback()
    row = db.scalars(
        select(Journalist)
        .where(Journalist.username == "alice")
        .execution_options(populate_existing=True)
    ).one()
    assert row.removed_on is None
