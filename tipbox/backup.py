"""Backup and restore: one signed archive of the database and the blob store (issue #6).

The format is docs/envelope.md section 14; the operator's guide and the choices behind it
are docs/backup.md. In short: a tar file whose members are a logical dump of every table
(JSON lines, one member per table, in foreign-key order), every blob an item names, and
the identity public key file, followed by ``manifest.json`` (format, identity, day, schema
revision, tables and row counts, every member's size and BLAKE2b-256) and
``manifest.sig`` (the identity key's Ed25519 signature over a tagged hash of the manifest).

Everything in the archive is already ciphertext or public; nothing is decrypted here. The
identity key signs (an admin opens it from their grant); restore verifies the signature
against an identity key the operator supplies before it reads anything else, verifies
every member's hash in a first pass, and only then loads, in one transaction, into an
empty database and a temporary blob directory that is moved into place at the end.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import secrets
import shutil
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO, Final

from nacl.bindings import crypto_box_seal, crypto_box_seal_open
from nacl.exceptions import BadSignatureError, CryptoError
from nacl.signing import VerifyKey
from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Engine,
    Integer,
    LargeBinary,
    String,
    Table,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.orm import Session, sessionmaker

from tipbox import directory, onion, onion_keys
from tipbox.config import Config
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import (
    IDENTITY_JSON,
    KeyPair,
    PublicKeys,
    Role,
    identity_file_text,
    parse_identity_file,
    read_identity_file,
    write_identity_files,
)
from tipbox.db import head_revision, make_session_factory, transaction, upgrade
from tipbox.models import Base, Item, UTCDateTime, today
from tipbox.storage import BlobStore, FilesystemBlobStore, check_blob_id

FORMAT: Final = "tipbox-backup"
VERSION: Final = 1
MANIFEST: Final = "manifest.json"
SIGNATURE: Final = "manifest.sig"
IDENTITY_MEMBER: Final = f"keys/{IDENTITY_JSON}"
SIGNED_PREFIX: Final = b"tipbox.backup.v1\x00"
MANIFEST_TAG: Final = b"tipbox.backup-manifest.v1"
SIGNATURE_BYTES: Final = 64
# Onion service keys (envelope.md 14, "Onion service keys"): one sealed member per service.
ONION_PREFIX: Final = "onion/"
ONION_SEALED_PREFIX: Final = b"tipbox.backup-onion.v1\x00"
SERVICE_NAME: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
SEAL_OVERHEAD: Final = 48
MAX_ONION_MEMBER_BYTES: Final = 1024
HASH_BYTES: Final = 32
# Sessions are not backed up: they are minutes to hours long, and a restored instance
# starts with everyone logged out (docs/backup.md).
SKIPPED_TABLES: Final = frozenset({"sessions"})
CHUNK: Final = 1024 * 1024
INSERT_BATCH: Final = 500
# Small members are read whole; anything larger than these is refused on its face.
MAX_MANIFEST_BYTES: Final = 256 * 1024 * 1024
MAX_IDENTITY_BYTES: Final = 16 * 1024
# Dumps are spooled in memory up to this size, then in a file beside the archive (tar needs
# a member's size before its data).
SPOOL_BYTES: Final = 8 * 1024 * 1024


class BackupRefused(Exception):  # noqa: N818 - a refusal the CLI shows as is
    """The archive or the target is not acceptable; nothing was restored."""


# --- the signature (envelope.md 14) ------------------------------------------------------


def manifest_digest(manifest: bytes) -> bytes:
    """``TH("tipbox.backup-manifest.v1", manifest)``: what the signature covers."""
    return hashlib.blake2b(MANIFEST_TAG + b"\x00" + manifest, digest_size=HASH_BYTES).digest()


def signed_message(manifest: bytes) -> bytes:
    """``"tipbox.backup.v1" ‖ 0x00 ‖ TH(...)``: the 49 bytes the identity key signs."""
    return SIGNED_PREFIX + manifest_digest(manifest)


def sign_manifest(identity: KeyPair, manifest: bytes) -> bytes:
    """The identity key's detached Ed25519 signature of ``manifest``."""
    if identity.role != Role.IDENTITY:
        raise Rejected("backup.signer: only the identity key signs a backup")
    return identity.sign(signed_message(manifest))


def verify_manifest(identity: PublicKeys, manifest: bytes, signature: bytes) -> None:
    """``Rejected`` unless ``signature`` is the identity key's signature of ``manifest``."""
    if len(signature) != SIGNATURE_BYTES:
        raise Rejected("backup.signature_length: a signature is 64 bytes")
    if identity.ed25519 is None:
        raise Rejected("backup.identity: the identity key has no Ed25519 key")
    try:
        VerifyKey(identity.ed25519).verify(signed_message(manifest), signature)
    except BadSignatureError:
        raise Rejected("backup.signature: not signed by this identity key") from None


def member_hash() -> Any:
    """A fresh BLAKE2b-256 (no key, tag or personalisation) for one member's bytes."""
    return hashlib.blake2b(digest_size=HASH_BYTES)


# --- onion service keys (envelope.md 14) -------------------------------------------------


def check_service_name(name: str) -> str:
    """``name`` if it can name an onion service in an archive, else ``BackupRefused``."""
    if not SERVICE_NAME.fullmatch(name):
        raise BackupRefused(
            f"{name!r} cannot name an onion service: 1 to 63 of a-z 0-9 _ -, starting with a "
            "letter or digit (the service directory's name)"
        )
    return name


def onion_plaintext(service: str, secret_file: bytes) -> bytes:
    """``"tipbox.backup-onion.v1" ‖ 0x00 ‖ u8 |service| ‖ service ‖ secret key file``."""
    name = check_service_name(service).encode("ascii")
    return ONION_SEALED_PREFIX + bytes([len(name)]) + name + secret_file


def seal_onion_key(identity: PublicKeys, service: str, secret_file: bytes) -> bytes:
    """A service's Tor secret key file sealed to the identity's X25519 key: only a holder
    of the identity seed (an admin, the recovery key) opens it."""
    onion_keys.service_public_key(secret_file)  # only a real Tor key is archived
    return bytes(crypto_box_seal(onion_plaintext(service, secret_file), identity.x25519))


def open_onion_key(identity: KeyPair, service: str, sealed: bytes) -> bytes:
    """The Tor secret key file sealed in ``sealed`` for ``service``, or ``Rejected`` (check
    names as in backup.json: ``backup_onion.open``, ``.prefix``, ``.service``,
    ``.length``, ``.key``)."""
    if identity.role != Role.IDENTITY:
        raise Rejected("backup_onion.identity: only the identity key opens onion keys")
    try:
        plain = crypto_box_seal_open(sealed, identity.x25519_public, identity.x25519_private)
    except (CryptoError, ValueError, TypeError):
        raise Rejected("backup_onion.open: not sealed to this identity key") from None
    if not plain.startswith(ONION_SEALED_PREFIX):
        raise Rejected("backup_onion.prefix: not an archived onion service key")
    rest = plain[len(ONION_SEALED_PREFIX) :]
    name = service.encode("ascii")
    if not rest or rest[0] != len(name) or rest[1 : 1 + len(name)] != name:
        raise Rejected("backup_onion.service: sealed for another service")
    secret_file = rest[1 + len(name) :]
    if len(secret_file) != onion_keys.SECRET_FILE_BYTES:
        raise Rejected("backup_onion.length: the key file is not 96 bytes")
    try:
        onion_keys.service_public_key(secret_file)
    except onion.OnionError:
        raise Rejected("backup_onion.key: not a Tor v3 onion service secret key") from None
    return secret_file


# --- rows as JSON ------------------------------------------------------------------------


def _tables() -> list[Table]:
    # Parents before children, so that foreign keys hold at every insert.
    return [t for t in Base.metadata.sorted_tables if t.name not in SKIPPED_TABLES]


def _encode(value: object) -> object:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _decoder(table: Table, name: str) -> Any:
    kind = table.columns[name].type

    def decode(value: object) -> object:
        if value is None:
            return None
        if isinstance(kind, UTCDateTime) and isinstance(value, str):
            return datetime.fromisoformat(value)
        if isinstance(kind, LargeBinary) and isinstance(value, str):
            return bytes.fromhex(value)
        if isinstance(kind, Date) and isinstance(value, str):
            return date.fromisoformat(value)
        if isinstance(kind, JSON):
            return value
        if isinstance(kind, Boolean) and isinstance(value, bool):
            return value
        if isinstance(kind, Integer) and isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(kind, String) and isinstance(value, str):
            return value
        raise BackupRefused(f"dump: {table.name}.{name} holds a value of the wrong type")

    return decode


def _row_line(values: Sequence[object]) -> bytes:
    line = json.dumps([_encode(v) for v in values], ensure_ascii=False, separators=(",", ":"))
    return line.encode() + b"\n"


# --- writing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupResult:
    """What ``write_backup`` wrote."""

    path: Path
    rows: int
    blobs: int
    size: int
    onion_services: tuple[str, ...] = ()


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    # Fixed owner, mode and time: the archive says nothing about when anything was written.
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


class _HashingReader(io.RawIOBase):
    """Reads from ``inner``, hashing and counting what passes through."""

    def __init__(self, inner: IO[bytes]) -> None:
        super().__init__()
        self.inner = inner
        self.hash = member_hash()
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        self.hash.update(data)
        self.count += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _Writer:
    """Adds members to the tar and records each one's size and hash for the manifest."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.members: list[dict[str, object]] = []

    def add(self, name: str, size: int, data: IO[bytes]) -> None:
        reader = _HashingReader(data)
        self.tar.addfile(_tarinfo(name, size), reader)
        if reader.count != size:
            raise BackupRefused(f"{name} changed size while it was archived")
        self.members.append({"name": name, "size": size, "blake2b": reader.hash.hexdigest()})


def _dump_tables(
    session: Session, writer: _Writer, spool_dir: Path
) -> tuple[list[dict[str, object]], list[tuple[str, int]]]:
    tables: list[dict[str, object]] = []
    for table in _tables():
        columns = [c.name for c in table.columns]
        order = [c for c in table.primary_key.columns]
        rows = 0
        with tempfile.SpooledTemporaryFile(SPOOL_BYTES, dir=str(spool_dir)) as spool:
            result = session.execute(
                select(*table.columns).order_by(*order).execution_options(yield_per=1000)
            )
            for row in result:
                spool.write(_row_line(tuple(row)))
                rows += 1
            size = spool.tell()
            spool.seek(0)
            writer.add(f"db/{table.name}.jsonl", size, spool)
        tables.append({"name": table.name, "columns": columns, "rows": rows})
    blobs = [(str(b), int(s)) for b, s in session.execute(select(Item.blob_id, Item.blob_size))]
    return tables, sorted(blobs)


def write_backup(
    engine: Engine,
    store: BlobStore,
    identity: KeyPair,
    out: Path,
    onion_dirs: Sequence[Path] = (),
) -> BackupResult:
    """Write a signed archive of the database and every item's blob to ``out``, and of the
    onion services whose Tor directories ``onion_dirs`` names (each service named after
    its directory), their secret keys sealed to the identity key.

    The dump is one read-only transaction (a consistent snapshot); blobs are never
    rewritten, so those its items name are read after it. The archive is written to a
    temporary file beside ``out`` and renamed at the end; an existing ``out`` is refused.
    """
    if out.exists():
        raise BackupRefused(f"{out} exists already; choose a new name")
    services = read_onion_services(onion_dirs)
    out = out.resolve()
    temp = out.with_name(f".{out.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            result = _write_archive(engine, store, identity, handle, out.parent, services)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(temp, out)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return BackupResult(
        out, result[0], result[1], out.stat().st_size, tuple(name for name, _ in services)
    )


def read_onion_services(onion_dirs: Sequence[Path]) -> list[tuple[str, bytes]]:
    """``(service, secret key file)`` of each onion service directory, sorted by name; a
    directory's name names its service. ``BackupRefused`` for a missing or malformed key
    or two directories of one name."""
    services: dict[str, bytes] = {}
    for path in onion_dirs:
        name = check_service_name(path.name)
        if name in services:
            raise BackupRefused(f"two onion service directories are named {name}")
        try:
            services[name] = onion_keys.read_service_secret(path)
        except onion.OnionError as exc:
            raise BackupRefused(str(exc)) from None
    return sorted(services.items())


def _write_archive(
    engine: Engine,
    store: BlobStore,
    identity: KeyPair,
    handle: BinaryIO,
    spool: Path,
    services: Sequence[tuple[str, bytes]],
) -> tuple[int, int]:
    public = identity.public
    with tarfile.open(fileobj=handle, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        writer = _Writer(tar)
        with transaction(_snapshot_factory(engine)) as session:
            if directory.identity_public(session) != public:
                raise BackupRefused("the identity key does not match this database")
            tables, blobs = _dump_tables(session, writer, spool)
        identity_text = identity_file_text(public).encode()
        writer.add(IDENTITY_MEMBER, len(identity_text), io.BytesIO(identity_text))
        for name, secret_file in services:
            sealed = seal_onion_key(public, name, secret_file)
            writer.add(f"{ONION_PREFIX}{name}", len(sealed), io.BytesIO(sealed))
        for blob_id, blob_size in blobs:
            with store.open(blob_id) as blob:
                writer.add(f"blobs/{blob_id}", blob_size, blob)
        manifest = _manifest_bytes(public, tables, writer.members)
        signature = sign_manifest(identity, manifest)
        tar.addfile(_tarinfo(MANIFEST, len(manifest)), io.BytesIO(manifest))
        tar.addfile(_tarinfo(SIGNATURE, len(signature)), io.BytesIO(signature))
    return sum(count for _name, count in _row_counts(tables)), len(blobs)


def _row_counts(tables: list[dict[str, object]]) -> Iterator[tuple[str, int]]:
    for table in tables:
        count = table["rows"]
        assert isinstance(count, int)
        yield str(table["name"]), count


def _snapshot_factory(engine: Engine) -> sessionmaker[Session]:
    # One snapshot for the whole dump: PostgreSQL's default READ COMMITTED would give each
    # table's SELECT its own. SQLite's read transaction in WAL mode is a snapshot already.
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(isolation_level="REPEATABLE READ")
    return make_session_factory(engine, read_only=True)


def _manifest_bytes(
    public: PublicKeys, tables: list[dict[str, object]], members: list[dict[str, object]]
) -> bytes:
    assert public.ed25519 is not None
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "identity": {
            "ed25519": public.ed25519.hex(),
            "x25519": public.x25519.hex(),
            "fingerprint": public.fingerprint,
        },
        "created_on": today().isoformat(),
        "schema_revision": head_revision(),
        "tables": tables,
        "members": members,
    }
    return (json.dumps(manifest, sort_keys=True, separators=(",", ":")) + "\n").encode()


# --- reading -----------------------------------------------------------------------------


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
    expected = [{"name": t.name, "columns": [c.name for c in t.columns]} for t in _tables()]
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
        with _loading(engine) as session:
            rows, blobs = _load(session, path, verified, FilesystemBlobStore(staging))
            _check_loaded(session, verified, FilesystemBlobStore(staging))
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


@contextmanager
def _loading(engine: Engine) -> Iterator[Session]:
    with transaction(make_session_factory(engine)) as session:
        yield session
        _reset_sequences(session)


def _load(
    session: Session, path: Path, verified: _Verified, staging: FilesystemBlobStore
) -> tuple[int, int]:
    tables = {t.name: t for t in _tables()}
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
    decoders = [_decoder(table, name) for name in columns]
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
    for table in _tables():
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
