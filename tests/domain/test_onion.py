"""Journalist onion devices (``tipbox.onion``), issue #6: key lines, file names and modes,
listing and revoking, and revocation when a journalist is removed or deactivated.

Real files under ``tmp_path`` and a real instance and database (SQLite, and PostgreSQL when
configured) for the parts that need one; nothing mocked.
"""

from __future__ import annotations

import base64
import os
import shutil
import stat
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tipbox import audit, directory, instance, onion, onion_keys, onion_sync
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


@pytest.mark.parametrize("mode", [0o755, 0o770, 0o751, 0o705])
def test_a_loose_directory_is_refused(clients: Config, mode: int) -> None:
    _dir(clients).mkdir()
    os.chmod(_dir(clients), mode)
    with pytest.raises(onion.OnionError, match="0700"):
        onion.add_device(clients, "alice", "laptop", KEY)
    assert list(_dir(clients).iterdir()) == []


def test_a_spool_gets_group_readable_files_despite_the_umask(clients: Config) -> None:
    """The deployment's spool is 0750 so that Tor's user (in the app's group) can read it;
    the service's UMask=0077 must not strip the files' group bit."""
    _dir(clients).mkdir()
    os.chmod(_dir(clients), 0o750)
    old = os.umask(0o077)
    try:
        device = onion.add_device(clients, "alice", "laptop", KEY)
    finally:
        os.umask(old)
    assert stat.S_IMODE(device.path.stat().st_mode) == 0o640


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


# --- sync: spool to Tor's directory ---------------------------------------------------------


@pytest.fixture
def spool(tmp_path: Path) -> tuple[Config, Path, Path]:
    """A 0750 spool the app writes, and Tor's (not yet existing) authorized_clients."""
    directory = tmp_path / "spool"
    directory.mkdir()
    os.chmod(directory, 0o750)
    config = Config.for_data_dir(tmp_path, onion_clients_dir=directory)
    (tmp_path / "tor").mkdir(mode=0o700)
    return config, directory, tmp_path / "tor" / "authorized_clients"


def _target_files(target: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="ascii") for p in sorted(target.iterdir())}


def test_sync_copies_the_spool_and_removes_what_left_it(
    spool: tuple[Config, Path, Path],
) -> None:
    config, source, target = spool
    onion.add_device(config, "alice", "laptop", KEY)
    onion.add_device(config, "bob", "phone", key_line(2))
    (source / "admin--first.auth").write_text(key_line(3), encoding="ascii")  # no newline
    target.mkdir(mode=0o700)
    (target / "gone.auth").write_text(key_line(9) + "\n", encoding="ascii")
    (target / "README").write_text("not a client file: Tor ignores it\n", encoding="ascii")

    result = onion_sync.sync_clients(source, target)
    assert result.added == ("admin--first.auth", "alice--laptop.auth", "bob--phone.auth")
    assert result.removed == ("gone.auth",)
    assert (result.updated, result.refused, result.locked) == ((), (), False)
    assert _target_files(target) == {
        "README": "not a client file: Tor ignores it\n",
        "admin--first.auth": key_line(3) + "\n",
        "alice--laptop.auth": KEY + "\n",
        "bob--phone.auth": key_line(2) + "\n",
    }
    for path in target.glob("*.auth"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.stat().st_mode) == 0o700

    again = onion_sync.sync_clients(source, target)
    assert not again.changed
    assert len(again.kept) == 3

    # A revocation in the spool reaches Tor's directory; a changed key is rewritten.
    onion.revoke_device(config, "bob", "phone")
    (source / "admin--first.auth").write_text(key_line(4) + "\n", encoding="ascii")
    result = onion_sync.sync_clients(source, target)
    assert (result.added, result.updated, result.removed) == (
        (),
        ("admin--first.auth",),
        ("bob--phone.auth",),
    )
    assert _target_files(target)["admin--first.auth"] == key_line(4) + "\n"


def test_sync_refuses_every_doubtful_file_and_revokes_it(
    spool: tuple[Config, Path, Path], tmp_path: Path
) -> None:
    config, source, target = spool
    onion.add_device(config, "alice", "laptop", KEY)
    onion.add_device(config, "alice", "phone", key_line(2))
    assert onion_sync.sync_clients(source, target).added == (
        "alice--laptop.auth",
        "alice--phone.auth",
    )
    # The phone's file is damaged in the spool: it must disappear from Tor's directory.
    (source / "alice--phone.auth").write_text(key_line(2) + "\nextra\n", encoding="ascii")
    outside = tmp_path / "outside.auth"
    outside.write_text(key_line(5) + "\n", encoding="ascii")
    (source / "linked.auth").symlink_to(outside)
    (source / "big.auth").write_text(key_line(6) + "\n" + " " * 200, encoding="ascii")
    (source / "private.auth").write_text(f"{'a' * 56}:{key_line(7)}\n", encoding="ascii")
    (source / "copy.auth").write_text(KEY + "\n", encoding="ascii")
    (source / "dir.auth").mkdir()
    os.mkfifo(source / "fifo.auth")
    for bad_name in ("a.b.auth", "-x.auth", "x.txt", onion_sync.PLACEHOLDER, "é.auth"):
        (source / bad_name).write_text(key_line(8) + "\n", encoding="ascii")
    (source / ".alice--tablet.auth.0123.tmp").write_text("half", encoding="ascii")

    result = onion_sync.sync_clients(source, target)
    reasons = dict(result.refused)
    assert set(reasons) == {
        "alice--phone.auth",
        "linked.auth",
        "big.auth",
        "private.auth",
        "copy.auth",
        "dir.auth",
        "fifo.auth",
        "a.b.auth",
        "-x.auth",
        "x.txt",
        onion_sync.PLACEHOLDER,
        "é.auth",
    }
    assert "not a client key line" in reasons["alice--phone.auth"]
    assert "symbolic links are refused" in reasons["linked.auth"]
    assert "larger than 128 bytes" in reasons["big.auth"]
    assert "PRIVATE" in reasons["private.auth"]
    assert "the same key as alice--laptop.auth" in reasons["copy.auth"]
    assert "not a regular file" in reasons["fifo.auth"]
    assert result.removed == ("alice--phone.auth",)
    assert _target_files(target) == {"alice--laptop.auth": KEY + "\n"}


def test_sync_never_leaves_the_onion_open(spool: tuple[Config, Path, Path]) -> None:
    """An empty authorized_clients/ would make the journalist onion public: the last
    revocation leaves a key nobody holds instead."""
    config, source, target = spool
    onion.add_device(config, "alice", "laptop", KEY)
    onion_sync.sync_clients(source, target)
    onion.revoke_devices(config, "alice")
    result = onion_sync.sync_clients(source, target)
    assert result.locked
    assert result.removed == ("alice--laptop.auth",)
    assert result.added == (onion_sync.PLACEHOLDER,)
    placeholder = _target_files(target)
    assert list(placeholder) == [onion_sync.PLACEHOLDER]
    line = placeholder[onion_sync.PLACEHOLDER]
    assert onion.parse_key_line(line) == line.removesuffix("\n")
    assert line != KEY + "\n"
    # Kept as it is while nothing changes; gone with the first device.
    assert not onion_sync.sync_clients(source, target).changed
    assert _target_files(target) == placeholder
    onion.add_device(config, "alice", "phone", key_line(2))
    result = onion_sync.sync_clients(source, target)
    assert (result.added, result.removed, result.locked) == (
        ("alice--phone.auth",),
        (onion_sync.PLACEHOLDER,),
        False,
    )


def test_sync_refuses_unusable_directories(
    spool: tuple[Config, Path, Path], tmp_path: Path
) -> None:
    _config, source, target = spool
    with pytest.raises(onion.OnionError, match="does not exist"):
        onion_sync.sync_clients(tmp_path / "missing", target)
    target.mkdir(mode=0o750)
    os.chmod(target, 0o750)
    with pytest.raises(onion.OnionError, match="mode 0700"):
        onion_sync.sync_clients(source, target)
    link = tmp_path / "link"
    link.symlink_to(source)
    with pytest.raises(onion.OnionError, match="not a directory one can open"):
        onion_sync.sync_clients(link, target)
    os.chmod(source, 0o757)
    with pytest.raises(onion.OnionError, match="writable by anyone"):
        onion_sync.sync_clients(source, target)
    assert list(target.iterdir()) == []


def test_sync_removes_a_crashed_syncs_temporary_file(spool: tuple[Config, Path, Path]) -> None:
    config, source, target = spool
    onion.add_device(config, "alice", "laptop", KEY)
    target.mkdir(mode=0o700)
    (target / ".sync-0123456789abcdef.tmp").write_text(key_line(2), encoding="ascii")
    onion_sync.sync_clients(source, target)
    assert sorted(p.name for p in target.iterdir()) == ["alice--laptop.auth"]


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
    os.chmod(_dir(config), 0o770)
    with pytest.raises(AccountError, match="could not revoke alice's onion devices"):
        remove(db, admin, "alice", config=config)
    db.rollback()
    row = db.scalars(
        select(Journalist)
        .where(Journalist.username == "alice")
        .execution_options(populate_existing=True)
    ).one()
    assert row.removed_on is None


# --- onion service keys, against Tor itself ------------------------------------------------


def _tor_makes_a_service(tmp_path: Path) -> Path:
    """Run the real tor (no network) until it has made an onion service's keys."""
    tor = shutil.which("tor")
    if tor is None:
        if os.environ.get("TIPBOX_REQUIRE_DEPLOY_TOOLS") == "1":
            pytest.fail("tor is missing and TIPBOX_REQUIRE_DEPLOY_TOOLS=1")
        pytest.skip("tor is missing")
    data = tmp_path / "tor-data"
    data.mkdir(mode=0o700)
    service = tmp_path / "tor-service"
    torrc = tmp_path / "torrc"
    torrc.write_text(
        f"DataDirectory {data}\nSocksPort 0\nDisableNetwork 1\n"
        f"HiddenServiceDir {service}\nHiddenServicePort 80 127.0.0.1:9\n",
        encoding="ascii",
    )
    process = subprocess.Popen(
        [tor, "--defaults-torrc", os.devnull, "-f", str(torrc), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not (service / "hostname").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert (service / "hostname").exists(), "tor made no onion service"
    return service


def test_keys_restored_from_the_secret_alone_are_what_tor_wrote(tmp_path: Path) -> None:
    made = _tor_makes_a_service(tmp_path)
    secret = onion_keys.read_service_secret(made)
    public = onion_keys.service_public_key(secret)
    assert (made / "hs_ed25519_public_key").read_bytes() == onion_keys.PUBLIC_HEADER + public
    hostname = (made / "hostname").read_text(encoding="ascii")
    assert onion_keys.onion_address(public) + "\n" == hostname
    restored = tmp_path / "restored"
    assert onion_keys.write_service_keys(restored, secret) == hostname.strip()
    for name in ("hs_ed25519_secret_key", "hs_ed25519_public_key", "hostname"):
        assert (restored / name).read_bytes() == (made / name).read_bytes(), name
        assert stat.S_IMODE((restored / name).stat().st_mode) == 0o600
    # Another service's key is never written over.
    other = bytearray(secret)
    other[40] ^= 0x10
    with pytest.raises(onion.OnionError, match="holds another onion service's key"):
        onion_keys.write_service_keys(restored, bytes(other))
    assert (restored / "hs_ed25519_secret_key").read_bytes() == secret
