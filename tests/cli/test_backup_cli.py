"""``tipbox backup`` and ``tipbox restore`` (``tipbox.cli_backup``) with click's runner, on
SQLite and PostgreSQL: the admin unlocks with passphrase and TOTP code on standard input;
restore trusts a key file or a typed fingerprint, and refuses a tampered archive."""

from __future__ import annotations

import hashlib
import tarfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pyotp
from click.testing import CliRunner, Result
from sqlalchemy import Engine, select

from tipbox import conversations, directory, instance, onion_keys, sources
from tipbox.accounts import unlock_journalist
from tipbox.cli import cli
from tipbox.config import Config
from tipbox.db import make_engine, make_session_factory, transaction
from tipbox.models import AuditEvent, Journalist
from tipbox.storage import FilesystemBlobStore


@dataclass(frozen=True)
class Made:
    """An instance with a reply and a note, its admin's passphrase and TOTP secret."""

    config: Config
    passphrase: str
    totp_secret: str
    source_id: bytes


def _make(config: Config, engine: Engine) -> Made:
    factory = make_session_factory(engine)
    with transaction(factory) as db:
        result = instance.init_instance(db, config, name="Test", admin_username="admin")
        source_id = sources.create_source(db).public_id
    store = FilesystemBlobStore(config.blob_dir)
    with transaction(factory) as db:
        identity = directory.identity_public(db)
        admin = db.scalars(select(Journalist)).one()
        keys = unlock_journalist(db, identity, admin, result.admin.passphrase).keypair
        conversations.add_reply(db, store, identity, admin, keys, source_id, "a reply")
        conversations.add_note(db, store, identity, admin, keys, source_id, "a note")
    return Made(config, result.admin.passphrase, result.admin.totp_secret, source_id)


def _invoke(config: Config, *args: str, stdin: str = "") -> Result:
    return CliRunner().invoke(cli, list(args), obj=config, input=stdin)


def _texts(config: Config, passphrase: str, source_id: bytes) -> list[str | None]:
    engine = make_engine(config)
    try:
        with transaction(make_session_factory(engine)) as db:
            identity = directory.identity_public(db)
            admin = db.scalars(select(Journalist)).one()
            keys = unlock_journalist(db, identity, admin, passphrase).keypair
            store = FilesystemBlobStore(config.blob_dir)
            views = conversations.conversation(db, store, identity, keys, source_id)
            return [view.text for view in views]
    finally:
        engine.dispose()


def _backup(made: Made, out: Path) -> Result:
    code = pyotp.TOTP(made.totp_secret).now()
    stdin = f"{made.passphrase}\n{code}\n"
    return _invoke(made.config, "backup", str(out), "--admin", "admin", stdin=stdin)


def test_backup_then_restore_by_key_file_and_refuse_tampering(
    config: Config, engine: Engine, tmp_path: Path
) -> None:
    made = _make(config, engine)
    out = tmp_path / "backup.tar"
    done = _backup(made, out)
    assert done.exit_code == 0, done.output
    assert "2 blobs" in done.output

    tampered = tmp_path / "tampered.tar"
    with tarfile.open(out, "r:") as tar:
        manifest = tar.getmember("manifest.json")
    data = bytearray(out.read_bytes())
    data[manifest.offset_data + 20] ^= 1
    tampered.write_bytes(bytes(data))
    # A fresh SQLite target: `restore` migrates it once the archive has verified.
    target = replace(
        Config.for_data_dir(tmp_path / "restored"),
        journalist_kdf=config.journalist_kdf,
        codename_kdf=config.codename_kdf,
    )
    key_file = str(config.keys_dir / "identity.json")
    refused = _invoke(target, "restore", str(tampered), "--identity", key_file)
    assert refused.exit_code == 1
    assert "restore refused, nothing restored" in refused.output
    assert not target.blob_dir.exists()

    restored = _invoke(target, "restore", str(out), "--identity", key_file)
    assert restored.exit_code == 0, restored.output
    assert "directory verified" in restored.output
    assert _texts(target, made.passphrase, made.source_id) == ["a reply", "a note"]
    # Each database records its part, counts only: the backup's maker, and the restore.
    [made_event] = _events(made.config, "backup.make")
    assert made_event.actor_journalist_id is not None
    assert made_event.detail == {"rows": made_event.detail["rows"], "blobs": 2, "onion_keys": 0}
    [restore_event] = _events(target, "backup.restore")
    assert restore_event.actor_journalist_id is None
    assert restore_event.detail == {"rows": made_event.detail["rows"], "blobs": 2}
    assert _events(target, "backup.make") == []  # made after the archive's snapshot


def _events(config: Config, action: str) -> list[AuditEvent]:
    engine = make_engine(config)
    try:
        with make_session_factory(engine)() as db:
            return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action)))
    finally:
        engine.dispose()


def test_restore_by_fingerprint_and_usage_errors(
    config: Config, engine: Engine, tmp_path: Path
) -> None:
    made = _make(config, engine)
    out = tmp_path / "backup.tar"
    assert _backup(made, out).exit_code == 0
    target = Config.for_data_dir(tmp_path / "restored")
    neither = _invoke(target, "restore", str(out))
    assert neither.exit_code == 2
    wrong = _invoke(target, "restore", str(out), "--fingerprint", "0000 " * 10)
    assert wrong.exit_code == 1
    assert "made by another instance" in wrong.output
    fingerprint = (config.keys_dir / "identity.fingerprint").read_text(encoding="utf-8").strip()
    restored = _invoke(target, "restore", str(out), "--fingerprint", fingerprint)
    assert restored.exit_code == 0, restored.output
    assert (target.keys_dir / "identity.json").read_text(encoding="utf-8") == (
        config.keys_dir / "identity.json"
    ).read_text(encoding="utf-8")


def test_backup_needs_an_unlocked_admin(config: Config, engine: Engine, tmp_path: Path) -> None:
    made = _make(config, engine)
    out = tmp_path / "backup.tar"
    stdin = f"{made.passphrase}\n000000\n"
    refused = _invoke(config, "backup", str(out), "--admin", "admin", stdin=stdin)
    assert refused.exit_code == 1
    assert "not unlocked" in refused.output
    assert not out.exists()


def _tor_dir(path: Path, seed: bytes) -> Path:
    """An onion service directory as Tor leaves it (see tests/domain/test_backup.py)."""
    expanded = bytearray(hashlib.sha512(seed).digest())
    expanded[0] &= 248
    expanded[31] &= 127
    expanded[31] |= 64
    path.mkdir(mode=0o700, parents=True)
    (path / "hs_ed25519_secret_key").write_bytes(onion_keys.SECRET_HEADER + bytes(expanded))
    public = onion_keys.service_public_key(onion_keys.SECRET_HEADER + bytes(expanded))
    (path / "hs_ed25519_public_key").write_bytes(onion_keys.PUBLIC_HEADER + public)
    (path / "hostname").write_text(onion_keys.onion_address(public) + "\n", encoding="ascii")
    return path


def test_onion_keys_backed_up_and_restored_by_an_admin(
    config: Config, engine: Engine, tmp_path: Path
) -> None:
    """The admin who backs up seals the keys; an admin of the restored instance unlocks the
    identity key to put them back. A failed unlock leaves the database restored and says
    how to try again with --onion-only."""
    made = _make(config, engine)
    source_dir = _tor_dir(tmp_path / "tor" / "tipbox-source", bytes(range(32)))
    out = tmp_path / "backup.tar"
    code = pyotp.TOTP(made.totp_secret).now()
    done = _invoke(
        made.config,
        "backup",
        str(out),
        "--onion-dir",
        str(source_dir),
        "--admin",
        "admin",
        stdin=f"{made.passphrase}\n{code}\n",
    )
    assert done.exit_code == 0, done.output
    assert "sealed to the identity key: tipbox-source." in done.output

    target = replace(
        Config.for_data_dir(tmp_path / "restored"),
        journalist_kdf=config.journalist_kdf,
        codename_kdf=config.codename_kdf,
    )
    key_file = str(config.keys_dir / "identity.json")
    restored_dir = tmp_path / "restored-tor" / "tipbox-source"
    base = ["restore", str(out), "--identity", key_file, "--onion-dir", str(restored_dir)]
    no_admin = _invoke(target, *base)
    assert no_admin.exit_code == 2
    wrong_service = _invoke(target, *base[:-1], str(tmp_path / "tipbox-other"), "--admin", "admin")
    assert wrong_service.exit_code == 1
    assert "holds no key of onion service 'tipbox-other' (it holds: tipbox-source)" in (
        wrong_service.output
    )
    assert not target.blob_dir.exists()

    # Checked before anything is restored, and before the admin spends a code.
    missing_parent = _invoke(target, *base, "--admin", "admin")
    assert missing_parent.exit_code == 1
    assert "restored-tor does not exist: make it first" in missing_parent.output
    assert "Passphrase" not in missing_parent.output
    assert not target.blob_dir.exists()
    restored_dir.parent.mkdir(mode=0o700)
    failed = _invoke(target, *base, "--admin", "admin", stdin="wrong\n000000\n")
    assert failed.exit_code == 1
    assert "the database and blobs are restored, but no onion service key" in failed.output
    assert "--onion-only" in failed.output
    assert not restored_dir.exists()
    assert _texts(target, made.passphrase, made.source_id) == ["a reply", "a note"]

    # A later step than the backup's code: each code is accepted once.
    later = pyotp.TOTP(made.totp_secret).at(time.time() + 30)
    again = _invoke(
        target, *base, "--admin", "admin", "--onion-only", stdin=f"{made.passphrase}\n{later}\n"
    )
    assert again.exit_code == 0, again.output
    address = (source_dir / "hostname").read_text(encoding="ascii").strip()
    assert f"Onion service tipbox-source: {address}" in again.output
    for name in ("hs_ed25519_secret_key", "hs_ed25519_public_key", "hostname"):
        assert (restored_dir / name).read_bytes() == (source_dir / name).read_bytes()
    [event] = _events(target, "backup.onion_restore")
    assert event.detail == {"onion_keys": 1}
    assert event.actor_journalist_id is not None
