"""Backup and restore (``tipbox.backup``): round trips on each backend and across them,
every refusal leaving the target as it was, and the signature's known-answer vectors.

Real databases, real blob stores, real archives; tampering is done on the archive's bytes.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from nacl.bindings import crypto_sign_seed_keypair
from sqlalchemy import Engine, inspect, select
from sqlalchemy.orm import Session

from tipbox import (
    conversations,
    directory,
    instance,
    keyring,
    onion_keys,
    sources,
    tagging,
    triage,
)
from tipbox.accounts import create_journalist, unlock_journalist
from tipbox.backup import (
    MANIFEST,
    SIGNATURE,
    BackupRefused,
    member_hash,
    onion_plaintext,
    open_onion_key,
    seal_onion_key,
    sign_manifest,
    signed_message,
    verify_manifest,
    write_backup,
)
from tipbox.config import TEST_KDF, Config
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import KeyPair, PublicKeys, Role, keypair_from_seed, new_seed
from tipbox.db import make_engine, make_session_factory, transaction
from tipbox.models import DirectoryEntry, Journalist, ReadMarker, Source
from tipbox.restore import (
    RestoredOnion,
    TrustedIdentity,
    archived_onion_services,
    restore_backup,
    restore_onion_keys,
)
from tipbox.storage import FilesystemBlobStore
from tipbox.submissions import EncryptingUpload, Limits, accept_server_submission

# The suite's conftest is not importable from here; these mirror its names.
PG_URL_ENV = "TIPBOX_TEST_DATABASE_URL"
Templates = Any  # tests/conftest.py's database templates (``database_templates``)
MIB = 1024 * 1024
LIMITS = Limits(max_message_chars=1000, max_files=3, max_file_bytes=4 * MIB)
VECTORS = Path(__file__).resolve().parent.parent / "vectors"
CASES: dict[str, Any] = json.loads((VECTORS / "backup.json").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Made:
    """A populated instance, the admin's passphrase and the archive made of it."""

    config: Config
    engine: Engine
    passphrase: str
    identity_keys: KeyPair
    archive: Path


def _upload(store: FilesystemBlobStore, source_id: bytes, content: bytes) -> EncryptingUpload:
    upload = EncryptingUpload(store, source_id, "leak.pdf", "application/pdf", 4 * MIB)
    upload.write(content)
    upload.finish()
    return upload


def _populate(db: Session, config: Config, store: FilesystemBlobStore) -> tuple[str, KeyPair]:
    """Journalists, two sources with messages, files, replies, notes, tags, read markers."""
    result = instance.init_instance(db, config, name="Test", admin_username="admin")
    db.commit()
    identity = directory.identity_public(db)
    admin = db.scalars(select(Journalist)).one()
    admin_keys = unlock_journalist(db, identity, admin, result.admin.passphrase).keypair
    identity_keys = keyring.granted_keypair(
        db, identity, admin_keys, Role.IDENTITY, identity.key_id
    )
    create_journalist(
        db, identity_keys, "reporter", is_admin=False, cost=TEST_KDF, must_change_passphrase=False
    )
    metadata = tagging.open_metadata_keys(db, identity, admin_keys, is_admin=True)
    assert metadata is not None
    db.commit()
    for number in range(2):
        source_id = sources.create_source(db).public_id
        db.commit()
        upload = _upload(store, source_id, os.urandom(70_000 + number))
        accept_server_submission(
            db, store, identity, source_id, f"message {number}", [upload], LIMITS
        )
        conversations.add_reply(db, store, identity, admin, admin_keys, source_id, "Спасибо")
        conversations.add_note(db, store, identity, admin, admin_keys, source_id, "check")
        tagging.add_tag(db, metadata, source_id, f"Ministry {number}")
        triage.mark_read(db, admin.id, [source_id])
        triage.set_starred(db, [source_id], number == 0)
        db.commit()
    return result.admin.passphrase, identity_keys


@pytest.fixture
def made(
    db: Session, config: Config, engine: Engine, blob_store: FilesystemBlobStore, tmp_path: Path
) -> Made:
    passphrase, identity_keys = _populate(db, config, blob_store)
    db.close()
    archive = tmp_path / "backup.tar"
    result = write_backup(engine, blob_store, identity_keys, archive)
    assert result.blobs == 8
    return Made(config, engine, passphrase, identity_keys, archive)


def _read_everything(config: Config, engine: Engine, passphrase: str) -> dict[str, object]:
    """What the admin sees: every item opened, files downloaded, tags, markers, accounts."""
    store = FilesystemBlobStore(config.blob_dir)
    with transaction(make_session_factory(engine)) as db:
        identity = directory.identity_public(db)
        admin = db.scalars(select(Journalist).where(Journalist.username == "admin")).one()
        keys = unlock_journalist(db, identity, admin, passphrase).keypair
        metadata = tagging.open_metadata_keys(db, identity, keys, is_admin=True)
        assert metadata is not None
        seen: dict[str, object] = {}
        source_rows = db.scalars(select(Source).order_by(Source.id)).all()
        for row in source_rows:
            views = conversations.conversation(db, store, identity, keys, row.public_id)
            items = []
            for view in views:
                assert not view.damaged
                content = None
                if view.file is not None:
                    download = conversations.open_download(db, store, identity, keys, view.item_id)
                    content = b"".join(download.chunks())
                items.append((view.kind, view.author, view.text, view.verified, content))
            seen[row.public_id.hex()] = (row.starred, items)
        seen["tags"] = tagging.tags_of(db, metadata, [row.id for row in source_rows])
        seen["markers"] = sorted(
            (m.journalist_id, m.source_id, m.seen_seq) for m in db.scalars(select(ReadMarker))
        )
        seen["journalists"] = sorted(db.scalars(select(Journalist.username)))
    return seen


@pytest.fixture
def target(tmp_path: Path, db_backend: str, database_templates: Templates) -> Iterator[Config]:
    """An empty target of the same backend: a SQLite file with no tables, or a migrated
    PostgreSQL database with no rows."""
    yield from _target(tmp_path, db_backend, database_templates)


@pytest.fixture
def other_target(
    tmp_path: Path, db_backend: str, database_templates: Templates
) -> Iterator[Config]:
    """An empty target of the other backend."""
    if not os.environ.get(PG_URL_ENV):
        pytest.skip(f"{PG_URL_ENV} is not set")
    other = "sqlite" if db_backend == "postgresql" else "postgresql"
    yield from _target(tmp_path, other, database_templates)


def _target(tmp_path: Path, backend: str, templates: Templates) -> Iterator[Config]:
    config = Config.for_data_dir(
        tmp_path / "restored", journalist_kdf=TEST_KDF, codename_kdf=TEST_KDF
    )
    if backend == "sqlite":
        yield config
        return
    name = templates.pg_acquire()
    try:
        yield replace(config, database_url=templates.server().url_for(name))
    finally:
        templates.pg_release(name)


def _restore(target: Config, archive: Path, trusted: TrustedIdentity) -> Engine:
    engine = make_engine(target)
    try:
        restore_backup(target, engine, archive, trusted)
    except BaseException:
        engine.dispose()
        raise
    return engine


def test_round_trip_on_one_backend(made: Made, target: Config) -> None:
    before = _read_everything(made.config, made.engine, made.passphrase)
    trusted = TrustedIdentity(public=made.identity_keys.public)
    engine = _restore(target, made.archive, trusted)
    try:
        assert _read_everything(target, engine, made.passphrase) == before
        # The restored instance takes new rows: PostgreSQL's sequences moved past the ids.
        with transaction(make_session_factory(engine)) as db:
            sources.create_source(db)
    finally:
        engine.dispose()
    assert (target.keys_dir / "identity.json").exists()


@pytest.mark.both_backends
def test_round_trip_across_backends_by_fingerprint(made: Made, other_target: Config) -> None:
    before = _read_everything(made.config, made.engine, made.passphrase)
    trusted = TrustedIdentity(fingerprint=made.identity_keys.public.fingerprint.lower())
    engine = _restore(other_target, made.archive, trusted)
    try:
        assert _read_everything(other_target, engine, made.passphrase) == before
    finally:
        engine.dispose()


# --- refusals ------------------------------------------------------------------------------


def _member_offset(archive: Path, name: str) -> tuple[int, int]:
    with tarfile.open(archive, "r:") as tar:
        info = next(i for i in tar.getmembers() if i.name.startswith(name))
        return info.offset_data, info.size


def _flip(archive: Path, name: str, at: int = 10) -> Path:
    offset, _size = _member_offset(archive, name)
    data = bytearray(archive.read_bytes())
    data[offset + at] ^= 0x01
    tampered = archive.with_name("tampered.tar")
    tampered.write_bytes(bytes(data))
    return tampered


def _resigned(made: Made, signer: KeyPair) -> Path:
    offset, size = _member_offset(made.archive, MANIFEST)
    data = bytearray(made.archive.read_bytes())
    manifest = bytes(data[offset : offset + size])
    sig_offset, _ = _member_offset(made.archive, SIGNATURE)
    data[sig_offset : sig_offset + 64] = sign_manifest(signer, manifest)
    tampered = made.archive.with_name("resigned.tar")
    tampered.write_bytes(bytes(data))
    return tampered


def _has_tables(config: Config) -> bool:
    engine = make_engine(config)
    try:
        return bool(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _assert_untouched(target: Config, had_tables: bool) -> None:
    engine = make_engine(target)
    try:
        tables = inspect(engine).get_table_names()
        if had_tables:
            with engine.connect() as conn:
                for table in tables:
                    if table != "alembic_version":
                        assert conn.exec_driver_sql(f'SELECT count(*) FROM "{table}"').scalar() == 0
        else:
            assert tables == []
    finally:
        engine.dispose()
    assert not target.blob_dir.exists()
    assert not (target.keys_dir / "identity.json").exists()
    assert [p.name for p in target.blob_dir.parent.glob(".restore-*")] == []


OTHER = keypair_from_seed(Role.IDENTITY, new_seed())


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("blob", "blobs/.* does not match its signed hash"),
        ("dump", "db/items.jsonl does not match its signed hash"),
        ("manifest", "signature does not verify"),
        ("signature", "signature does not verify"),
        ("signed by another instance", "signature does not verify"),
        ("trusting another instance's key", "manifest names another identity key"),
        ("another instance's fingerprint", "made by another instance"),
        ("truncated", "truncated"),
    ],
)
def test_tampered_archive_is_refused(made: Made, target: Config, case: str, message: str) -> None:
    had_tables = _has_tables(target)
    trusted = TrustedIdentity(public=made.identity_keys.public)
    archive = made.archive
    if case == "blob":
        archive = _flip(archive, "blobs/", at=100)
    elif case == "dump":
        archive = _flip(archive, "db/items.jsonl", at=40)
    elif case == "manifest":
        archive = _flip(archive, MANIFEST, at=30)
    elif case == "signature":
        archive = _flip(archive, SIGNATURE, at=3)
    elif case == "signed by another instance":
        archive = _resigned(made, OTHER)
    elif case == "trusting another instance's key":
        archive = _resigned(made, OTHER)
        trusted = TrustedIdentity(public=OTHER.public)
    elif case == "another instance's fingerprint":
        trusted = TrustedIdentity(fingerprint=OTHER.public.fingerprint)
    else:
        archive = archive.with_name("truncated.tar")
        archive.write_bytes(made.archive.read_bytes()[: made.archive.stat().st_size // 2])
    with pytest.raises(BackupRefused, match=message):
        _restore(target, archive, trusted).dispose()
    _assert_untouched(target, had_tables)


def test_directory_that_does_not_verify_is_refused_after_loading(
    made: Made, target: Config, tmp_path: Path
) -> None:
    """A correctly signed archive of a database whose directory was tampered with: the
    rows and blobs load, the directory check refuses, and everything is undone."""
    with transaction(make_session_factory(made.engine)) as db:
        row = db.scalars(select(DirectoryEntry).order_by(DirectoryEntry.serial.desc())).first()
        assert row is not None
        row.signature = bytes([row.signature[0] ^ 1]) + row.signature[1:]
    archive = tmp_path / "bad-directory.tar"
    store = FilesystemBlobStore(made.config.blob_dir)
    write_backup(made.engine, store, made.identity_keys, archive)
    trusted = TrustedIdentity(public=made.identity_keys.public)
    with pytest.raises(BackupRefused, match="directory does not verify"):
        _restore(target, archive, trusted).dispose()
    # A database that had no tables keeps the schema restore gave it, and no row.
    _assert_untouched(target, had_tables=True)
    assert _has_tables(target)


def test_restore_into_a_non_empty_target_is_refused(made: Made) -> None:
    before = _read_everything(made.config, made.engine, made.passphrase)
    trusted = TrustedIdentity(public=made.identity_keys.public)
    with pytest.raises(BackupRefused, match="not empty"):
        restore_backup(made.config, made.engine, made.archive, trusted)
    assert _read_everything(made.config, made.engine, made.passphrase) == before


def test_backup_refuses_to_overwrite(made: Made) -> None:
    store = FilesystemBlobStore(made.config.blob_dir)
    with pytest.raises(BackupRefused, match="exists already"):
        write_backup(made.engine, store, made.identity_keys, made.archive)


# --- known-answer vectors (docs/envelope.md 14) ----------------------------------------------


def test_vectors_are_what_the_generator_makes() -> None:
    spec = importlib.util.spec_from_file_location("make_backup", VECTORS / "make_backup.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.render() == (VECTORS / "backup.json").read_text(encoding="utf-8")


def _identity() -> tuple[KeyPair, PublicKeys]:
    keys = keypair_from_seed(Role.IDENTITY, bytes.fromhex(CASES["identity_seed"]))
    return keys, keys.public


@pytest.mark.parametrize("case", CASES["valid"], ids=[c["comment"] for c in CASES["valid"]])
def test_valid(case: dict[str, Any]) -> None:
    keys, public = _identity()
    assert public.ed25519 is not None
    assert public.ed25519.hex() == CASES["identity_ed25519"]
    manifest = bytes.fromhex(case["manifest"])
    assert signed_message(manifest).hex() == case["signed"]
    assert sign_manifest(keys, manifest).hex() == case["signature"]
    verify_manifest(public, manifest, bytes.fromhex(case["signature"]))
    for member in case["members"]:
        digest = member_digest(bytes.fromhex(member["content"]))
        assert digest == member["blake2b"]


def member_digest(content: bytes) -> str:
    """The member hash as ``tipbox.backup`` computes it while streaming."""
    digest = member_hash()
    digest.update(content)
    return str(digest.hexdigest())


@pytest.mark.parametrize("case", CASES["invalid"], ids=[c["comment"] for c in CASES["invalid"]])
def test_invalid(case: dict[str, Any]) -> None:
    _keys, public = _identity()
    with pytest.raises(Rejected) as caught:
        verify_manifest(public, bytes.fromhex(case["manifest"]), bytes.fromhex(case["signature"]))
    assert str(caught.value).split(":")[0] == case["check"]


# --- onion service keys (envelope.md 14) ------------------------------------------------------

SERVICES = ("tipbox-journalist", "tipbox-source")


def _tor_dir(path: Path, seed: bytes) -> Path:
    """An onion service directory as Tor leaves it: the expanded secret key (SHA-512 of the
    seed, clamped) after Tor's header, the public key file, the hostname."""
    expanded = bytearray(hashlib.sha512(seed).digest())
    expanded[0] &= 248
    expanded[31] &= 127
    expanded[31] |= 64
    public, _ = crypto_sign_seed_keypair(seed)
    path.mkdir(mode=0o700, parents=True)
    (path / "hs_ed25519_secret_key").write_bytes(onion_keys.SECRET_HEADER + bytes(expanded))
    (path / "hs_ed25519_public_key").write_bytes(onion_keys.PUBLIC_HEADER + bytes(public))
    (path / "hostname").write_text(onion_keys.onion_address(bytes(public)) + "\n", encoding="ascii")
    return path


@pytest.fixture
def tor_dirs(tmp_path: Path) -> list[Path]:
    return [_tor_dir(tmp_path / "tor" / name, os.urandom(32)) for name in SERVICES]


def _onion_archive(made: Made, tor_dirs: list[Path]) -> Path:
    archive = made.archive.with_name("with-onion.tar")
    store = FilesystemBlobStore(made.config.blob_dir)
    result = write_backup(made.engine, store, made.identity_keys, archive, tor_dirs)
    assert result.onion_services == SERVICES
    return archive


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def test_onion_keys_round_trip_sealed_to_the_identity(
    made: Made, target: Config, tor_dirs: list[Path], tmp_path: Path
) -> None:
    archive = _onion_archive(made, tor_dirs)
    trusted = TrustedIdentity(public=made.identity_keys.public)
    assert archived_onion_services(archive, trusted) == list(SERVICES)
    # The database restores as ever: the sealed members are carried, not opened.
    before = _read_everything(made.config, made.engine, made.passphrase)
    engine = _restore(target, archive, trusted)
    try:
        assert _read_everything(target, engine, made.passphrase) == before
    finally:
        engine.dispose()
    restored_root = tmp_path / "restored-tor"
    restored_root.mkdir(mode=0o700)
    targets = [restored_root / name for name in SERVICES]
    done = restore_onion_keys(archive, trusted, made.identity_keys, targets)
    for original, item in zip(tor_dirs, done, strict=True):
        address = (original / "hostname").read_text(encoding="ascii").strip()
        assert item == RestoredOnion(original.name, address, restored_root / original.name)
        assert _files(item.directory) == _files(original)
        assert stat.S_IMODE(item.directory.stat().st_mode) == 0o700
        for path in item.directory.iterdir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Again into the same directories: the same keys, nothing changes.
    assert restore_onion_keys(archive, trusted, made.identity_keys, targets) == done


def test_no_onion_key_appears_in_clear(made: Made, tor_dirs: list[Path]) -> None:
    data = _onion_archive(made, tor_dirs).read_bytes()
    for service_dir in tor_dirs:
        secret = (service_dir / "hs_ed25519_secret_key").read_bytes()
        public = (service_dir / "hs_ed25519_public_key").read_bytes()[32:]
        address = (service_dir / "hostname").read_text(encoding="ascii").strip()
        for needle in (
            secret[32:64],  # the scalar
            secret[64:],  # the nonce prefix
            secret[32:48],
            secret[32:64].hex().encode(),
            base64.b64encode(secret[32:64]),
            public,
            public.hex().encode(),
            address.removesuffix(".onion").encode(),
            address.removesuffix(".onion").upper().encode(),
        ):
            assert needle not in data
    assert b"onion/tipbox-source" in data  # the member is there, under its name


def test_a_tampered_onion_member_is_refused(
    made: Made, target: Config, tor_dirs: list[Path], tmp_path: Path
) -> None:
    tampered = _flip(_onion_archive(made, tor_dirs), "onion/tipbox-source", at=60)
    trusted = TrustedIdentity(public=made.identity_keys.public)
    had_tables = _has_tables(target)
    with pytest.raises(BackupRefused, match="onion/tipbox-source does not match its signed hash"):
        _restore(target, tampered, trusted).dispose()
    _assert_untouched(target, had_tables)
    targets = [tmp_path / "restored-tor" / name for name in SERVICES]
    with pytest.raises(BackupRefused, match="onion/tipbox-source does not match its signed hash"):
        restore_onion_keys(tampered, trusted, made.identity_keys, targets)
    assert not (tmp_path / "restored-tor").exists()


def test_onion_restore_refusals_write_nothing(
    made: Made, tor_dirs: list[Path], tmp_path: Path
) -> None:
    archive = _onion_archive(made, tor_dirs)
    trusted = TrustedIdentity(public=made.identity_keys.public)
    root = tmp_path / "restored-tor"
    root.mkdir(mode=0o700)
    targets = [root / name for name in SERVICES]
    with pytest.raises(BackupRefused, match="unlocked identity key is not the archive's"):
        restore_onion_keys(archive, trusted, OTHER, targets)
    with pytest.raises(BackupRefused, match="no key of onion service tipbox-spare"):
        restore_onion_keys(archive, trusted, made.identity_keys, [*targets, root / "tipbox-spare"])
    # A directory that holds another service's key is never overwritten, and the refusal
    # comes before the other service is written.
    _tor_dir(root / "tipbox-source", os.urandom(32))
    held = _files(root / "tipbox-source")
    with pytest.raises(BackupRefused, match="holds another onion service's key"):
        restore_onion_keys(archive, trusted, made.identity_keys, targets)
    assert _files(root / "tipbox-source") == held
    assert not (root / "tipbox-journalist").exists()


def test_backup_refuses_what_is_not_an_onion_key(made: Made, tmp_path: Path) -> None:
    store = FilesystemBlobStore(made.config.blob_dir)
    out = tmp_path / "refused.tar"
    empty = tmp_path / "tor" / "tipbox-source"
    empty.mkdir(parents=True, mode=0o700)
    with pytest.raises(BackupRefused, match="cannot read"):
        write_backup(made.engine, store, made.identity_keys, out, [empty])
    (empty / "hs_ed25519_secret_key").write_bytes(b"== ed25519v1-secret: type0 ==" + bytes(67))
    with pytest.raises(BackupRefused, match="not a clamped Ed25519 scalar"):
        write_backup(made.engine, store, made.identity_keys, out, [empty])
    bad_name = _tor_dir(tmp_path / "tor" / "Tipbox.Source", os.urandom(32))
    with pytest.raises(BackupRefused, match="cannot name an onion service"):
        write_backup(made.engine, store, made.identity_keys, out, [bad_name])
    assert not out.exists()


ONION = CASES["onion"]


@pytest.mark.parametrize("case", ONION["valid"], ids=[c["service"] for c in ONION["valid"]])
def test_onion_valid(case: dict[str, Any]) -> None:
    keys, _public = _identity()
    assert keys.x25519_public.hex() == ONION["identity_x25519"]
    secret_file = bytes.fromhex(case["secret_key_file"])
    assert onion_plaintext(case["service"], secret_file).hex() == case["plaintext"]
    assert open_onion_key(keys, case["service"], bytes.fromhex(case["sealed"])) == secret_file
    assert onion_keys.service_public_key(secret_file).hex() == case["public_key"]
    assert onion_keys.onion_address(bytes.fromhex(case["public_key"])) == case["address"]
    # What the writer seals (with its own ephemeral key) opens the same way.
    sealed = seal_onion_key(keys.public, case["service"], secret_file)
    assert len(sealed) == len(bytes.fromhex(case["sealed"]))
    assert open_onion_key(keys, case["service"], sealed) == secret_file


@pytest.mark.parametrize("case", ONION["invalid"], ids=[c["comment"] for c in ONION["invalid"]])
def test_onion_invalid(case: dict[str, Any]) -> None:
    keys, _public = _identity()
    with pytest.raises(Rejected) as caught:
        open_onion_key(keys, case["service"], bytes.fromhex(case["sealed"]))
    assert str(caught.value).split(":")[0] == case["check"]
