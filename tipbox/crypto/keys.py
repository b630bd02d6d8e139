"""Key pairs from seeds, key ids, fingerprints and the identity public key file.

docs/envelope.md sections 2 (key pairs from a seed), 3 (key ids and fingerprints) and 11
(``keys/identity.json``). This module holds public keys and derives key pairs; it never
stores a secret, so the source-facing app may import it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

from nacl.bindings import crypto_scalarmult_base
from nacl.signing import SigningKey

from tipbox.crypto.errors import Rejected
from tipbox.crypto.kdf import (
    CTX_IDENTITY,
    CTX_JOURNALIST,
    CTX_METADATA,
    CTX_NEWSROOM,
    CTX_RECOVERY,
    CTX_SOURCE,
    derive,
    tagged_hash,
)

SEED_BYTES = 32
PUBLIC_KEY_BYTES = 32
KEY_ID_BYTES = 16
PUBKEYS_BYTES = 1 + 2 * PUBLIC_KEY_BYTES
FINGERPRINT_TAG = b"tipbox.key-fingerprint.v1"
NO_ED25519 = bytes(PUBLIC_KEY_BYTES)

IDENTITY_JSON = "identity.json"
IDENTITY_FINGERPRINT = "identity.fingerprint"
IDENTITY_FORMAT = "tipbox-identity-public-key"

# Key files are a few hundred bytes; anything much larger is not one.
_KEY_FILE_MAX_CHARS = 16 * 1024
_HEX32 = re.compile(r"[0-9a-f]{64}")


class Role(IntEnum):
    """What a key is for; the value is the ``u8 role`` byte of every format."""

    IDENTITY = 1
    NEWSROOM = 2
    JOURNALIST = 3
    RECOVERY = 4
    SOURCE = 5
    METADATA = 6


def has_signing_key(role: Role) -> bool:
    """True for the roles whose seed also gives an Ed25519 key pair (identity, journalist)."""
    return role in (Role.IDENTITY, Role.JOURNALIST)


def _derivation(role: Role) -> tuple[bytes, int, int | None]:
    """(context, X25519 subkey id, Ed25519 subkey id or None) per section 2's table."""
    match role:
        case Role.IDENTITY:
            return CTX_IDENTITY, 2, 1
        case Role.NEWSROOM:
            return CTX_NEWSROOM, 1, None
        case Role.JOURNALIST:
            return CTX_JOURNALIST, 1, 2
        case Role.RECOVERY:
            return CTX_RECOVERY, 1, None
        case Role.SOURCE:
            return CTX_SOURCE, 1, None
        case Role.METADATA:
            return CTX_METADATA, 1, None
    raise Rejected("keys.role: unknown role")  # pragma: no cover - IntEnum is exhaustive


def new_seed() -> bytes:
    """Return a fresh 32-byte seed from the operating system's CSPRNG."""
    return secrets.token_bytes(SEED_BYTES)


def format_fingerprint(fingerprint_bytes: bytes) -> str:
    """``fp[0:20]`` as 40 uppercase hex digits in ten groups of four (section 3)."""
    digits = fingerprint_bytes[:20].hex().upper()
    return " ".join(digits[i : i + 4] for i in range(0, 40, 4))


@dataclass(frozen=True)
class PublicKeys:
    """The public half of a key: role, X25519 key and, for signing roles, Ed25519 key.

    ``ed25519`` is None exactly for the roles without a signing key (newsroom, recovery,
    source); the wire formats put 32 zero bytes in its place.
    """

    role: Role
    x25519: bytes
    ed25519: bytes | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.role, Role):
            raise Rejected("keys.role: unknown role")
        if len(self.x25519) != PUBLIC_KEY_BYTES:
            raise Rejected("keys.x25519: public key must be 32 bytes")
        if has_signing_key(self.role):
            # An all-zero Ed25519 key would read as "no key" in pubkeys(role).
            if self.ed25519 is None or len(self.ed25519) != PUBLIC_KEY_BYTES:
                raise Rejected("keys.ed25519: this role needs a 32-byte Ed25519 key")
            if self.ed25519 == NO_ED25519:
                raise Rejected("keys.ed25519: Ed25519 key is all zeros")
        elif self.ed25519 is not None:
            raise Rejected("keys.ed25519: this role has no Ed25519 key")

    @property
    def pubkeys_bytes(self) -> bytes:
        """``u8 role ‖ x25519_pk ‖ ed25519_pk`` (65 bytes, zeros for a missing Ed25519 key)."""
        return bytes([self.role]) + self.x25519 + (self.ed25519 or NO_ED25519)

    @property
    def fingerprint_bytes(self) -> bytes:
        """``TH("tipbox.key-fingerprint.v1", pubkeys)``: 32 bytes."""
        return tagged_hash(FINGERPRINT_TAG, self.pubkeys_bytes)

    @property
    def key_id(self) -> bytes:
        """The first 16 bytes of the fingerprint hash: how every format names this key."""
        return self.fingerprint_bytes[:KEY_ID_BYTES]

    @property
    def fingerprint(self) -> str:
        """The fingerprint people compare: ``"3F2A 9B01 …"`` (40 hex digits, 10 groups)."""
        return format_fingerprint(self.fingerprint_bytes)

    @property
    def short_id(self) -> str:
        """The first eight hex digits of the fingerprint."""
        return self.fingerprint_bytes[:4].hex().upper()


def key_id_of(role: Role, x25519: bytes, ed25519: bytes | None) -> bytes:
    """The key id of the given public keys (section 3)."""
    return PublicKeys(role, x25519, ed25519).key_id


# eq=False: comparing private keys with == would be neither constant-time nor meaningful.
@dataclass(frozen=True, eq=False)
class KeyPair:
    """A key pair made from a seed: X25519 for encryption and, for signing roles, Ed25519."""

    role: Role
    x25519_private: bytes = field(repr=False)
    x25519_public: bytes
    signing_key: SigningKey | None = field(default=None, repr=False)

    @property
    def public(self) -> PublicKeys:
        """The public keys of this pair."""
        ed = None if self.signing_key is None else bytes(self.signing_key.verify_key)
        return PublicKeys(self.role, self.x25519_public, ed)

    @property
    def key_id(self) -> bytes:
        """The key id of the public keys."""
        return self.public.key_id

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte Ed25519 detached signature of ``message``."""
        if self.signing_key is None:
            raise Rejected("keys.sign: this role has no signing key")
        return bytes(self.signing_key.sign(message).signature)


def keypair_from_seed(role: Role, seed: bytes) -> KeyPair:
    """Derive the key pair of ``role`` from a 32-byte seed (section 2)."""
    if len(seed) != SEED_BYTES:
        raise Rejected("keys.seed: seed must be 32 bytes")
    context, x_id, ed_id = _derivation(Role(role))
    # The derived bytes are the X25519 secret key as-is; libsodium clamps on use.
    x_private = derive(seed, x_id, context)
    x_public = bytes(crypto_scalarmult_base(x_private))
    signing = None if ed_id is None else SigningKey(derive(seed, ed_id, context))
    return KeyPair(Role(role), x_private, x_public, signing)


# ---------------------------------------------------------------------------------------
# Public key files (sections 10 and 11): strict JSON, fingerprint recomputed on read.


def _reject_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for name, value in pairs:
        if name in result:
            raise ValueError("duplicate key")
        result[name] = value
    return result


def parse_key_file(
    text: str, *, format_name: str, fields: tuple[str, ...], check: str
) -> dict[str, object]:
    """Parse a public key file: a JSON object with exactly ``fields``, the given format, v1.

    Rejects (with check names prefixed by ``check``): malformed JSON or duplicate names
    (``.json``), other or missing fields (``.fields``), another format (``.format``) and a
    version other than the integer 1 (``.version``).
    """
    if len(text) > _KEY_FILE_MAX_CHARS:
        raise Rejected(f"{check}.json: file too large")
    try:
        data = json.loads(text, object_pairs_hook=_reject_duplicates)
    except (ValueError, RecursionError):  # deep nesting raises RecursionError
        raise Rejected(f"{check}.json: not a JSON object") from None
    if not isinstance(data, dict):
        raise Rejected(f"{check}.json: not a JSON object")
    if sorted(data) != sorted(fields):
        raise Rejected(f"{check}.fields: unexpected or missing fields")
    if data["format"] != format_name:
        raise Rejected(f"{check}.format: not a {format_name} file")
    version = data["version"]
    # bool is an int in Python: JSON `true` must not pass for version 1.
    if type(version) is not int or version != 1:
        raise Rejected(f"{check}.version: unsupported version")
    return data


def key_file_hex32(data: dict[str, object], name: str, check: str) -> bytes:
    """Field ``name`` of a parsed key file as 32 bytes (64 lowercase hex digits)."""
    value = data[name]
    if not isinstance(value, str) or not _HEX32.fullmatch(value):
        raise Rejected(f"{check}.{name}: must be 64 lowercase hex digits")
    return bytes.fromhex(value)


def check_key_file_fingerprint(data: dict[str, object], public: PublicKeys, check: str) -> None:
    """Reject unless the file's ``fingerprint`` field is the one recomputed from its keys."""
    if data["fingerprint"] != public.fingerprint:
        raise Rejected(f"{check}.fingerprint: fingerprint does not match the keys")


def identity_file_text(public: PublicKeys) -> str:
    """The contents of ``keys/identity.json`` for an identity public key (section 11)."""
    if public.role != Role.IDENTITY or public.ed25519 is None:
        raise Rejected("identity_file.role: not an identity key")
    data = {
        "format": IDENTITY_FORMAT,
        "version": 1,
        "ed25519": public.ed25519.hex(),
        "x25519": public.x25519.hex(),
        "fingerprint": public.fingerprint,
    }
    return json.dumps(data, indent=2) + "\n"


def parse_identity_file(text: str) -> PublicKeys:
    """Parse ``keys/identity.json``; reject malformed input or a fingerprint mismatch."""
    check = "identity_file"
    data = parse_key_file(
        text,
        format_name=IDENTITY_FORMAT,
        fields=("format", "version", "ed25519", "x25519", "fingerprint"),
        check=check,
    )
    ed25519 = key_file_hex32(data, "ed25519", check)
    x25519 = key_file_hex32(data, "x25519", check)
    try:
        public = PublicKeys(Role.IDENTITY, x25519, ed25519)
    except Rejected:
        raise Rejected(f"{check}.ed25519: not a usable Ed25519 key") from None
    check_key_file_fingerprint(data, public, check)
    return public


def _write_atomically(path: Path, text: str) -> None:
    # A reader (the source app at start-up) must never see a half-written key file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # public keys: world-readable is intended
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_identity_files(keys_dir: Path, public: PublicKeys) -> None:
    """Write ``identity.json`` and ``identity.fingerprint`` into ``keys_dir`` (section 11)."""
    text = identity_file_text(public)
    keys_dir.mkdir(parents=True, exist_ok=True)
    _write_atomically(keys_dir / IDENTITY_JSON, text)
    _write_atomically(keys_dir / IDENTITY_FINGERPRINT, public.fingerprint + "\n")


def _read_utf8(path: Path, check: str) -> str:
    """A key file's text; bytes that are not UTF-8 are ``Rejected``, like any bad content."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise Rejected(f"{check}: not UTF-8 text") from None


def read_identity_file(keys_dir: Path) -> PublicKeys:
    """Read the identity public key from ``keys_dir``, checking both files agree.

    ``identity.json`` must parse and its fingerprint must match its keys; when
    ``identity.fingerprint`` is present it must hold the same fingerprint. A missing
    ``identity.json`` raises ``OSError``; everything else raises ``Rejected``.
    """
    public = parse_identity_file(_read_utf8(keys_dir / IDENTITY_JSON, "identity_file.json"))
    fingerprint_path = keys_dir / IDENTITY_FINGERPRINT
    if fingerprint_path.exists():
        line = _read_utf8(fingerprint_path, "identity_file.fingerprint")
        line = line[:_KEY_FILE_MAX_CHARS].strip()
        if line != public.fingerprint:
            raise Rejected("identity_file.fingerprint: identity.fingerprint does not match")
    return public
