"""Restore: verify a backup archive (docs/envelope.md section 14), then load it.

Restore verifies the signature against an identity key the operator supplies before it
reads anything else, verifies every member's hash in a first pass, and only then loads,
in one transaction, into an empty database and a temporary blob directory that is moved
into place at the end. Onion service keys, sealed to the identity key, are opened only
with an admin's unlocked identity seed. The archive is made by ``tipbox.backup``.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Engine,
    Integer,
    Table,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.orm import Session

from tipbox import audit, directory, onion, onion_keys
from tipbox.backup import (
    CHUNK,
    FORMAT,
    IDENTITY_MEMBER,
    INSERT_BATCH,
    MANIFEST,
    MAX_IDENTITY_BYTES,
    MAX_MANIFEST_BYTES,
    MAX_ONION_MEMBER_BYTES,
    ONION_PREFIX,
    SIGNATURE,
    SIGNATURE_BYTES,
    VERSION,
    BackupRefused,
    backed_up_tables,
    check_service_name,
    column_decoder,
    member_hash,
    open_onion_key,
    verify_manifest,
)
from tipbox.config import Config
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import (
    IDENTITY_JSON,
    KeyPair,
    PublicKeys,
    parse_identity_file,
    read_identity_file,
    write_identity_files,
)
from tipbox.db import head_revision, make_session_factory, transaction, upgrade
from tipbox.models import Base, Item
from tipbox.storage import FilesystemBlobStore, check_blob_id

# --- verifying -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TrustedIdentity:
    """The identity key the operator vouches for: a key file, or a fingerprint typed in."""

    public: PublicKeys | None = None
    fingerprint: str | None = None


@dataclass(frozen=True)
class RestoreResult:
    """What ``restore_backup`` loaded."""

    rows: int
    blobs: int
    identity: PublicKeys
    created_on: str


@dataclass(frozen=True)
class _Member:
    name: str
    size: int
    digest: str


@dataclass(frozen=True)
class _Verified:
    identity: PublicKeys
    manifest: dict[str, Any]
    members: list[_Member]


def _open_tar(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, mode="r:")
    except (tarfile.TarError, OSError) as exc:
        raise BackupRefused(f"not a readable archive: {exc}") from None


def _read_small(tar: tarfile.TarFile, info: tarfile.TarInfo, limit: int) -> bytes:
    if not info.isfile() or info.size > limit:
        raise BackupRefused(f"archive member {info.name} is not a small regular file")
    handle = tar.extractfile(info)
    assert handle is not None
    data = handle.read()
    if len(data) != info.size:
        raise BackupRefused("the archive is truncated")
    return data


def _trusted_public(trusted: TrustedIdentity, archived: bytes) -> PublicKeys:
    if trusted.public is not None:
        return trusted.public
    if trusted.fingerprint is None:
        raise BackupRefused("restore needs the identity key file or its fingerprint")
    # The archive's own identity file is used only if its fingerprint is the one typed in.
    try:
        public = parse_identity_file(archived.decode("utf-8"))
    except (Rejected, UnicodeDecodeError) as exc:
        raise BackupRefused(f"the archive's identity file is malformed: {exc}") from None
    typed = " ".join(trusted.fingerprint.upper().split())
    if typed.replace(" ", "") != public.fingerprint.replace(" ", ""):
        raise BackupRefused("this archive was made by another instance: fingerprints differ")
    return public


def _check_manifest(manifest: dict[str, Any], public: PublicKeys) -> list[_Member]:
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise BackupRefused("not a tipbox backup of format version 1")
    assert public.ed25519 is not None
    if manifest.get("identity", {}).get("ed25519") != public.ed25519.hex():
        raise BackupRefused("the manifest names another identity key")
    if manifest.get("schema_revision") != head_revision():
        raise BackupRefused(
            f"the archive is of schema revision {manifest.get('schema_revision')},"
            f" this tipbox is at {head_revision()}: restore with the same version"
        )
    expected = [
        {"name": t.name, "columns": [c.name for c in t.columns]} for t in backed_up_tables()
    ]
    found = [{"name": t["name"], "columns": t["columns"]} for t in manifest["tables"]]
    if found != expected:
        raise BackupRefused("the archive's tables differ from this tipbox's")
    return [_Member(m["name"], int(m["size"]), str(m["blake2b"])) for m in manifest["members"]]


def verify_archive(path: Path, trusted: TrustedIdentity) -> _Verified:
    """Check the signature, then the list and hash of every member; read nothing into place.

    ``BackupRefused`` for any failure. The manifest and its signature are the last two
    members: they are found by reading the tar headers, and the signature is verified
    against the trusted identity before the manifest is parsed.
    """
    with _open_tar(path) as tar:
        verified, infos = _verify_signed(tar, trusted)
        for member, info in zip(verified.members, infos, strict=False):
            _check_hash(tar, info, member)
    return verified


def _verify_signed(
    tar: tarfile.TarFile, trusted: TrustedIdentity
) -> tuple[_Verified, list[tarfile.TarInfo]]:
    """The signed manifest, checked against the archive's member list (not yet hashed)."""
    try:
        infos = tar.getmembers()
    except (tarfile.TarError, OSError) as exc:
        raise BackupRefused(f"the archive is damaged or truncated: {exc}") from None
    names = [i.name for i in infos]
    if len(infos) < 3 or names[-2:] != [MANIFEST, SIGNATURE]:
        raise BackupRefused("the archive is truncated or not a tipbox backup")
    manifest_bytes = _read_small(tar, infos[-2], MAX_MANIFEST_BYTES)
    signature = _read_small(tar, infos[-1], SIGNATURE_BYTES)
    by_name = {i.name: i for i in infos[:-2]}
    if IDENTITY_MEMBER not in by_name:
        raise BackupRefused("the archive has no identity key file")
    archived_identity = _read_small(tar, by_name[IDENTITY_MEMBER], MAX_IDENTITY_BYTES)
    public = _trusted_public(trusted, archived_identity)
    try:
        verify_manifest(public, manifest_bytes, signature)
    except Rejected as exc:
        raise BackupRefused(f"the archive's signature does not verify ({exc})") from None
    try:
        manifest = json.loads(manifest_bytes)
        members = _check_manifest(manifest, public)
    # A signed manifest is still parsed as hostile: deep nesting (RecursionError), a
    # size of 1e400 (OverflowError) and wrong types are refusals, not crashes.
    except (
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        RecursionError,
        OverflowError,
    ) as exc:
        raise BackupRefused(f"the manifest is malformed: {exc}") from None
    if [(m.name, m.size) for m in members] != [(i.name, i.size) for i in infos[:-2]]:
        raise BackupRefused("the archive's members differ from its manifest")
    return _Verified(public, manifest, members), infos


def _check_hash(tar: tarfile.TarFile, info: tarfile.TarInfo, member: _Member) -> None:
    if not info.isfile():
        raise BackupRefused(f"archive member {info.name} is not a regular file")
    for _ in _chunks(tar, info, member):
        pass


def _chunks(tar: tarfile.TarFile, info: tarfile.TarInfo, member: _Member) -> Iterator[bytes]:
    """The member's bytes in chunks; ``BackupRefused`` at the end if they are not signed."""
    handle = tar.extractfile(info)
    assert handle is not None
    digest = member_hash()
    count = 0
    try:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            count += len(chunk)
            yield chunk
    except (tarfile.TarError, OSError) as exc:
        raise BackupRefused(f"the archive is damaged or truncated: {exc}") from None
    if count != member.size or digest.hexdigest() != member.digest:
        raise BackupRefused(f"archive member {member.name} does not match its signed hash")


def _lines(tar: tarfile.TarFile, info: tarfile.TarInfo, member: _Member) -> Iterator[bytes]:
    pending = b""
    for chunk in _chunks(tar, info, member):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        yield from lines
    if pending:
        raise BackupRefused(f"{member.name}: the dump does not end with a line break")


def check_target(engine: Engine, blob_dir: Path) -> bool:
    """``BackupRefused`` unless the blob store is empty and the database either has no
    tables at all (return False: it needs migrating) or is migrated and empty (True)."""
    if blob_dir.exists() and (not blob_dir.is_dir() or any(blob_dir.iterdir())):
        raise BackupRefused(f"the blob directory {blob_dir} is not empty")
    if not inspect(engine).get_table_names():
        return False
    with engine.connect() as conn:
        try:
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except Exception:
            raise BackupRefused("the target database holds tables but no tipbox schema") from None
        if revision != head_revision():
            raise BackupRefused("the target database is not at this tipbox's schema revision")
        for table in Base.metadata.sorted_tables:
            if conn.execute(select(func.count()).select_from(table)).scalar_one():
                raise BackupRefused(f"the target database is not empty ({table.name} has rows)")
    return True


def restore_backup(
    config: Config, engine: Engine, path: Path, trusted: TrustedIdentity
) -> RestoreResult:
    """Verify ``path`` entirely, then load it into the empty database and blob directory
    of ``config`` (``engine`` is on its database).

    A database with no tables is migrated first, once the archive has verified. The rows
    go in in one transaction, blobs into a temporary directory beside the blob directory;
    the directory entries are verified against the identity key and every item's blob
    checked before the blobs are moved into place and the transaction committed. On any
    failure the transaction is rolled back and the temporary directory removed: the
    target is as it was (but for the schema of a database that had none).
    """
    blob_dir, keys_dir = config.blob_dir.resolve(), config.keys_dir
    migrated = check_target(engine, blob_dir)
    verified = verify_archive(path, trusted)
    if (keys_dir / IDENTITY_JSON).exists():
        try:
            existing: PublicKeys | None = read_identity_file(keys_dir)
        except (Rejected, OSError, UnicodeDecodeError):
            existing = None
        if existing != verified.identity:
            raise BackupRefused(f"{keys_dir} holds another identity key")
    if not migrated:
        upgrade(config)
    blob_dir.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=blob_dir.parent))
    moved = False
    try:
        with transaction(make_session_factory(engine)) as session:
            rows, blobs = _load(session, path, verified, FilesystemBlobStore(staging))
            _check_loaded(session, verified, FilesystemBlobStore(staging))
            _reset_sequences(session)
            # In the restored database, with the rows it tells of (counts only).
            audit.record(session, None, "backup.restore", rows=rows, blobs=blobs)
            if blob_dir.exists():
                blob_dir.rmdir()  # checked empty above
            os.rename(staging, blob_dir)
            moved = True
    except BaseException:
        # A failed commit after the move takes the blobs away again.
        shutil.rmtree(blob_dir if moved else staging, ignore_errors=True)
        raise
    if not (keys_dir / IDENTITY_JSON).exists():
        write_identity_files(keys_dir, verified.identity)
    return RestoreResult(rows, blobs, verified.identity, str(verified.manifest["created_on"]))


def _load(
    session: Session, path: Path, verified: _Verified, staging: FilesystemBlobStore
) -> tuple[int, int]:
    tables = {t.name: t for t in backed_up_tables()}
    rows = blobs = 0
    with _open_tar(path) as tar:
        for member, info in zip(verified.members, tar, strict=False):
            if info.name != member.name:
                raise BackupRefused("the archive changed since it was verified")
            if member.name.startswith("db/"):
                table = tables[member.name.removeprefix("db/").removesuffix(".jsonl")]
                rows += _load_table(session, table, _lines(tar, info, member))
            elif member.name.startswith("blobs/"):
                blob_id = check_blob_id(member.name.removeprefix("blobs/"))
                with staging.writer(blob_id) as out:
                    for chunk in _chunks(tar, info, member):
                        out.write(chunk)
                blobs += 1
            elif member.name.startswith(ONION_PREFIX):
                # Sealed to the identity key: only restore_onion_keys, with an admin, opens it.
                check_service_name(member.name.removeprefix(ONION_PREFIX))
            elif member.name != IDENTITY_MEMBER:
                raise BackupRefused(f"unexpected archive member {member.name}")
    return rows, blobs


def _load_table(session: Session, table: Table, lines: Iterator[bytes]) -> int:
    columns = [c.name for c in table.columns]
    decoders = [column_decoder(table, name) for name in columns]
    batch: list[dict[str, object]] = []
    count = 0
    for line in lines:
        try:
            values = json.loads(line)
        except ValueError:
            raise BackupRefused(f"{table.name}: a row is not JSON") from None
        if not isinstance(values, list) or len(values) != len(columns):
            raise BackupRefused(f"{table.name}: a row has the wrong number of columns")
        batch.append({c: d(v) for c, d, v in zip(columns, decoders, values, strict=True)})
        count += 1
        if len(batch) == INSERT_BATCH:
            session.execute(insert(table), batch)
            batch = []
    if batch:
        session.execute(insert(table), batch)
    return count


def _check_loaded(session: Session, verified: _Verified, staging: FilesystemBlobStore) -> None:
    for table in verified.manifest["tables"]:
        found = session.execute(
            select(func.count()).select_from(Base.metadata.tables[table["name"]])
        ).scalar_one()
        if found != table["rows"]:
            raise BackupRefused(f"{table['name']}: {found} rows, the manifest says {table['rows']}")
    try:
        if directory.identity_public(session) != verified.identity:
            raise BackupRefused("the restored database names another identity key")
        directory.entries(session, verified.identity)
    except (Rejected, directory.NotInitialised) as exc:
        raise BackupRefused(f"the restored directory does not verify: {exc}") from None
    for blob_id, blob_size in session.execute(select(Item.blob_id, Item.blob_size)):
        if not staging.exists(blob_id) or staging.size(blob_id) != blob_size:
            raise BackupRefused("an item's blob is missing from the archive")


def _reset_sequences(session: Session) -> None:
    # Rows came with their ids; PostgreSQL's sequences must move past them.
    if session.get_bind().dialect.name != "postgresql":
        return
    for table in backed_up_tables():
        for column in table.primary_key.columns:
            if isinstance(column.type, Integer) and column.autoincrement is not False:
                sequence = session.execute(
                    text("SELECT pg_get_serial_sequence(:t, :c)"),
                    {"t": table.name, "c": column.name},
                ).scalar()
                if sequence is not None:
                    highest = session.execute(select(func.max(column))).scalar()
                    session.execute(
                        text("SELECT setval(:s, :v, false)"),
                        {"s": sequence, "v": (highest or 0) + 1},
                    )


# --- restoring onion service keys ----------------------------------------------------------


@dataclass(frozen=True)
class RestoredOnion:
    """One onion service key put back: its name, its address, where."""

    service: str
    address: str
    directory: Path


def archived_onion_services(path: Path, trusted: TrustedIdentity) -> list[str]:
    """The onion services a signed archive holds (signature verified, hashes not yet)."""
    with _open_tar(path) as tar:
        verified, _infos = _verify_signed(tar, trusted)
    return [
        check_service_name(m.name.removeprefix(ONION_PREFIX))
        for m in verified.members
        if m.name.startswith(ONION_PREFIX)
    ]


def restore_onion_keys(
    path: Path, trusted: TrustedIdentity, identity: KeyPair, targets: Sequence[Path]
) -> list[RestoredOnion]:
    """Open the archived key of each service that ``targets`` names (by the directory's
    name) with the identity key pair, and write it there as Tor keeps it
    (``onion_keys.write_service_keys``).

    Everything is checked before anything is written: the signature, each member's signed
    hash, the seal, the key, and each target (missing, or holding the same key already).
    ``BackupRefused`` otherwise.
    """
    wanted: dict[str, Path] = {}
    for target in targets:
        name = check_service_name(target.name)
        if name in wanted:
            raise BackupRefused(f"two onion service directories are named {name}")
        wanted[name] = target
    opened: dict[str, bytes] = {}
    with _open_tar(path) as tar:
        verified, infos = _verify_signed(tar, trusted)
        if identity.public != verified.identity:
            raise BackupRefused("the unlocked identity key is not the archive's")
        for member, info in zip(verified.members, infos, strict=False):
            name = member.name.removeprefix(ONION_PREFIX)
            if not member.name.startswith(ONION_PREFIX) or name not in wanted:
                continue
            if member.size > MAX_ONION_MEMBER_BYTES:
                raise BackupRefused(f"archive member {member.name} is too large")
            sealed = b"".join(_chunks(tar, info, member))
            try:
                opened[name] = open_onion_key(identity, name, sealed)
            except Rejected as exc:
                raise BackupRefused(f"{member.name}: {exc}") from None
    missing = sorted(set(wanted) - set(opened))
    if missing:
        raise BackupRefused(f"the archive holds no key of onion service {', '.join(missing)}")
    for name, target in wanted.items():
        _check_onion_target(target, opened[name])
    restored = []
    for name, target in sorted(wanted.items()):
        try:
            address = onion_keys.write_service_keys(target, opened[name])
        except onion.OnionError as exc:
            raise BackupRefused(str(exc)) from None
        restored.append(RestoredOnion(name, address, target))
    return restored


def _check_onion_target(target: Path, secret_file: bytes) -> None:
    if not target.exists() and not target.is_symlink():
        if not target.parent.is_dir():
            raise BackupRefused(f"{target.parent} does not exist: make it first (mode 0700)")
        return
    if target.is_symlink() or not target.is_dir():
        raise BackupRefused(f"{target} is not a directory")
    key = target / onion_keys.SECRET_KEY_FILE
    if not key.exists() and not key.is_symlink():
        return
    try:
        held = onion_keys.read_service_secret(target)
    except onion.OnionError as exc:
        raise BackupRefused(str(exc)) from None
    if held != secret_file:
        raise BackupRefused(f"{target} holds another onion service's key: not replaced")


def record_onion_restore(
    session: Session, actor_id: int, restored: Sequence[RestoredOnion]
) -> None:
    """Record ``backup.onion_restore`` (how many keys; the admin who unlocked them) in the
    caller's transaction."""
    audit.record(session, actor_id, "backup.onion_restore", onion_keys=len(restored))
