"""Directory entries: the identity key's signed statement of every key the system uses.

docs/envelope.md section 4. Verifying an entry needs only the identity public key, so the
source-facing app may import this module; signing lives in ``tipbox.crypto.identity``.
Rejections name their check (``entry.length``, ``entry.signature``, …) at the start of the
message, as the invalid cases of ``tests/vectors/directory.json`` do.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import (
    KEY_ID_BYTES,
    NO_ED25519,
    PUBLIC_KEY_BYTES,
    PublicKeys,
    Role,
    has_signing_key,
    key_id_of,
)

ENTRY_PREFIX = b"tipbox.directory.v1"
ENTRY_BYTES = 126
SIGNATURE_BYTES = 64
NO_SUBJECT = bytes(KEY_ID_BYTES)

_HEADER = ENTRY_PREFIX + b"\x00"
# Offsets within an entry (section 4).
_ROLE = len(_HEADER)  # 20
_STATUS = _ROLE + 1
_KEY_ID = _STATUS + 1
_SUBJECT = _KEY_ID + KEY_ID_BYTES
_X25519 = _SUBJECT + KEY_ID_BYTES
_ED25519 = _X25519 + PUBLIC_KEY_BYTES
_SERIAL = _ED25519 + PUBLIC_KEY_BYTES
assert _SERIAL + 8 == ENTRY_BYTES


# The roles an entry may carry: every role but the source's (section 4).
DIRECTORY_ROLES = (Role.IDENTITY, Role.NEWSROOM, Role.JOURNALIST, Role.RECOVERY, Role.METADATA)


class Status(IntEnum):
    """The ``u8 status`` of an entry: newsroom keys use 1-3, every other role 4."""

    CURRENT = 1
    RETIRING = 2
    RETIRED = 3
    ACTIVE = 4


def allowed_statuses(role: Role) -> tuple[Status, ...]:
    """The statuses an entry of ``role`` may carry."""
    if role == Role.NEWSROOM:
        return (Status.CURRENT, Status.RETIRING, Status.RETIRED)
    return (Status.ACTIVE,)


def _directory_role(value: int) -> Role:
    # Sources never appear in the directory (section 2).
    if value not in DIRECTORY_ROLES:
        raise Rejected("entry.role: unknown role")
    return Role(value)


def _status_for(role: Role, value: int) -> Status:
    if value not in allowed_statuses(role):
        raise Rejected("entry.status: unknown status or not allowed for the role")
    return Status(value)


@dataclass(frozen=True)
class Entry:
    """One directory entry (section 4). Constructing one checks every field."""

    role: Role
    status: Status
    key_id: bytes
    subject_id: bytes
    x25519: bytes
    ed25519: bytes | None
    serial: int

    def __post_init__(self) -> None:
        role = _directory_role(self.role)
        # Store enums even when given plain ints, so equality and display stay uniform.
        object.__setattr__(self, "role", role)
        object.__setattr__(self, "status", _status_for(role, self.status))
        if len(self.key_id) != KEY_ID_BYTES:
            raise Rejected("entry.key_id: key id must be 16 bytes")
        if len(self.subject_id) != KEY_ID_BYTES:
            raise Rejected("entry.subject_id: subject id must be 16 bytes")
        if len(self.x25519) != PUBLIC_KEY_BYTES:
            raise Rejected("entry.x25519: public key must be 32 bytes")
        if has_signing_key(role):
            if self.ed25519 is None or len(self.ed25519) != PUBLIC_KEY_BYTES:
                raise Rejected("entry.ed25519: this role needs a 32-byte Ed25519 key")
            if self.ed25519 == NO_ED25519:
                raise Rejected("entry.ed25519: Ed25519 key is all zeros")
        elif self.ed25519 is not None:
            raise Rejected("entry.ed25519: this role has no Ed25519 key")
        if role != Role.JOURNALIST and self.subject_id != NO_SUBJECT:
            raise Rejected("entry.subject_id: only journalist entries have a subject")
        if not 0 <= self.serial < 2**64:
            raise Rejected("entry.serial: serial out of range")
        if key_id_of(role, self.x25519, self.ed25519) != self.key_id:
            raise Rejected("entry.key_id: key id does not match the public keys")

    @classmethod
    def for_keys(
        cls,
        public: PublicKeys,
        status: Status,
        serial: int,
        subject_id: bytes = NO_SUBJECT,
    ) -> Entry:
        """The entry for ``public`` with its key id computed from the keys."""
        return cls(
            role=public.role,
            status=status,
            key_id=public.key_id,
            subject_id=subject_id,
            x25519=public.x25519,
            ed25519=public.ed25519,
            serial=serial,
        )

    @property
    def public(self) -> PublicKeys:
        """The public keys this entry vouches for."""
        return PublicKeys(self.role, self.x25519, self.ed25519)

    def to_bytes(self) -> bytes:
        """The 126-byte encoding that the identity key signs."""
        return (
            _HEADER
            + bytes([self.role, self.status])
            + self.key_id
            + self.subject_id
            + self.x25519
            + (self.ed25519 or NO_ED25519)
            + struct.pack(">Q", self.serial)
        )

    @classmethod
    def parse(cls, data: bytes) -> Entry:
        """Decode an entry and check its structure. This does NOT check the signature:
        use ``verify_entry`` for anything that will be trusted."""
        if len(data) != ENTRY_BYTES:
            raise Rejected("entry.length: entry must be 126 bytes")
        if data[: len(ENTRY_PREFIX)] != ENTRY_PREFIX:
            raise Rejected("entry.prefix: not a tipbox directory entry")
        if data[len(ENTRY_PREFIX)] != 0:
            raise Rejected("entry.separator: separator byte is not zero")
        role = _directory_role(data[_ROLE])
        status = _status_for(role, data[_STATUS])
        raw_ed25519 = data[_ED25519:_SERIAL]
        if has_signing_key(role):
            if raw_ed25519 == NO_ED25519:
                raise Rejected("entry.ed25519: Ed25519 key is all zeros")
            ed25519: bytes | None = raw_ed25519
        else:
            if raw_ed25519 != NO_ED25519:
                raise Rejected("entry.ed25519: this role has no Ed25519 key")
            ed25519 = None
        subject_id = data[_SUBJECT:_X25519]
        if role != Role.JOURNALIST and subject_id != NO_SUBJECT:
            raise Rejected("entry.subject_id: only journalist entries have a subject")
        return cls(
            role=role,
            status=status,
            key_id=data[_KEY_ID:_SUBJECT],
            subject_id=subject_id,
            x25519=data[_X25519:_ED25519],
            ed25519=ed25519,
            serial=struct.unpack(">Q", data[_SERIAL:])[0],
        )


def verify_entry(identity_ed25519_public: bytes, entry_bytes: bytes, signature: bytes) -> Entry:
    """Check an entry and its identity signature (section 4); return the entry.

    Rejects every case of section 4: length, prefix, separator, role, status, Ed25519
    bytes, subject id, key id, an identity entry for another identity key, and a signature
    that does not verify under ``identity_ed25519_public``.
    """
    if len(identity_ed25519_public) != PUBLIC_KEY_BYTES:
        raise Rejected("entry.identity: identity public key must be 32 bytes")
    entry = Entry.parse(entry_bytes)
    # There is one identity per instance: an identity entry must describe the signer.
    if entry.role == Role.IDENTITY and entry.ed25519 != identity_ed25519_public:
        raise Rejected("entry.identity: identity entry is not for the verifying key")
    if len(signature) != SIGNATURE_BYTES:
        raise Rejected("entry.signature: signature must be 64 bytes")
    try:
        VerifyKey(identity_ed25519_public).verify(entry_bytes, signature)
    except (BadSignatureError, ValueError):
        raise Rejected("entry.signature: signature does not verify") from None
    return entry


def public_keys(entry: Entry) -> PublicKeys:
    """The public keys of a (verified) entry."""
    return entry.public
