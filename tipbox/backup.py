"""Backup and restore: one signed archive of the database and the blob store (issue #6).

The format is docs/envelope.md section 14; the operator's guide and the choices behind it
are docs/backup.md. In short: a tar file whose members are a logical dump of every table
(JSON lines, one member per table, in foreign-key order), every blob an item names, and
the identity public key file, followed by ``manifest.json`` (format, identity, day, schema
revision, tables and row counts, every member's size and BLAKE2b-256) and
``manifest.sig`` (the identity key's Ed25519 signature over a tagged hash of the manifest).

Everything in the archive is already ciphertext or public; nothing is decrypted here. The
identity key signs (an admin opens it from their grant). Reading an archive back is
``tipbox.restore``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import secrets
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
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
    select,
)
from sqlalchemy.orm import Session, sessionmaker

from tipbox import audit, directory, onion, onion_keys
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import (
    IDENTITY_JSON,
    KeyPair,
    PublicKeys,
    Role,
    identity_file_text,
)
from tipbox.db import head_revision, make_session_factory, transaction
from tipbox.models import Base, Item, UTCDateTime, today
from tipbox.storage import BlobStore

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


def backed_up_tables() -> list[Table]:
    """The tables a backup holds (sessions left out)."""
    # Parents before children, so that foreign keys hold at every insert.
    return [t for t in Base.metadata.sorted_tables if t.name not in SKIPPED_TABLES]


def _encode(value: object) -> object:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def column_decoder(table: Table, name: str) -> Any:
    """How a column's JSON value of a dump turns back into what the database takes."""
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
    for table in backed_up_tables():
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


def record_backup(engine: Engine, actor_id: int, result: BackupResult) -> None:
    """Record ``backup.make`` with the archive's counts, once it is written (so the event is
    in the database, not in the archive)."""
    with transaction(make_session_factory(engine)) as session:
        audit.record(
            session,
            actor_id,
            "backup.make",
            rows=result.rows,
            blobs=result.blobs,
            onion_keys=len(result.onion_services),
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
