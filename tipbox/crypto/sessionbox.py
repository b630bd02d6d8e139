"""Split-key sessions: the cookie secret, the row id, and the box (docs/envelope.md 9).

The cookie carries a random 32-byte secret ``S``. Derivations of ``S`` give the row id
under which the server keeps the session, and the key of the box that holds the payload::

    row_id  = KDF(S, 1, "tbsessn1", 16)          stored as 32 lowercase hex digits
    box_key = KDF(S, 2, "tbsessn1")
    ad      = "tipbox.session.v1" || 0x00 || app || 0x00 || row_id
    box     = nonce (24) || XChaCha20-Poly1305(box_key, nonce, payload, ad)

The row alone opens nothing (no ``S``); the cookie alone opens nothing (no box). The
payload is UTF-8 JSON ``{"data": {...}, "key": <base64 seed or null>, "role": ...,
"user": ...}`` with sorted keys and no spaces; ``key`` is standard base64 with padding.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_ABYTES,
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
    crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
)
from nacl.exceptions import CryptoError

from tipbox.crypto.errors import Rejected
from tipbox.crypto.kdf import CTX_SESSION, derive

SECRET_BYTES = 32
ROW_ID_BYTES = 16
SEED_BYTES = 32
NONCE_BYTES: int = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
TAG_BYTES: int = crypto_aead_xchacha20poly1305_ietf_ABYTES
COOKIE_CHARS = 43  # unpadded base64url of 32 bytes
AD_PREFIX = b"tipbox.session.v1"
APPS = ("source", "journalist")
PAYLOAD_KEYS = frozenset({"user", "role", "key", "data"})

_COOKIE_RE = re.compile(r"[A-Za-z0-9_-]{43}")


def new_secret() -> bytes:
    """Return a fresh session secret ``S`` (32 bytes from the CSPRNG)."""
    return secrets.token_bytes(SECRET_BYTES)


def encode_cookie(secret: bytes) -> str:
    """Encode ``S`` for the cookie: unpadded base64url, 43 characters."""
    _check_secret(secret)
    return base64.urlsafe_b64encode(secret).rstrip(b"=").decode("ascii")


def decode_cookie(value: str) -> bytes:
    """Decode a cookie value to ``S``; anything but the canonical 43 characters is rejected."""
    if len(value) != COOKIE_CHARS:
        raise Rejected("session.cookie_length: cookie must be 43 characters")
    if not _COOKIE_RE.fullmatch(value):
        raise Rejected("session.cookie_base64: cookie is not base64url")
    secret = base64.urlsafe_b64decode(value + "=")
    # The last character carries two spare bits; only one spelling of S is accepted.
    if encode_cookie(secret) != value:
        raise Rejected("session.cookie_canonical: cookie is not canonical base64url")
    return secret


def row_id(secret: bytes) -> bytes:
    """Return the 16-byte row id: ``KDF(S, 1, tbsessn1, 16)``."""
    _check_secret(secret)
    return derive(secret, 1, CTX_SESSION, ROW_ID_BYTES)


def row_id_hex(secret: bytes) -> str:
    """Return the row id as stored: 32 lowercase hex digits."""
    return row_id(secret).hex()


def box_key(secret: bytes) -> bytes:
    """Return the box key: ``KDF(S, 2, tbsessn1)``."""
    _check_secret(secret)
    return derive(secret, 2, CTX_SESSION)


def additional_data(app: str, row: bytes) -> bytes:
    """Return ``"tipbox.session.v1" || 0x00 || app || 0x00 || row_id``."""
    if app not in APPS:
        raise Rejected("session.app: unknown app")
    if len(row) != ROW_ID_BYTES:
        raise Rejected("session.row_id: row id must be 16 bytes")
    return AD_PREFIX + b"\x00" + app.encode("ascii") + b"\x00" + row


def seal(secret: bytes, app: str, payload: bytes, nonce: bytes | None = None) -> bytes:
    """Box ``payload`` for the session ``S`` of ``app``.

    ``nonce`` is for known-answer tests only; leave it out and a random one is drawn.
    """
    if nonce is None:
        nonce = secrets.token_bytes(NONCE_BYTES)
    elif len(nonce) != NONCE_BYTES:
        raise Rejected("session.nonce: nonce must be 24 bytes")
    ad = additional_data(app, row_id(secret))
    sealed = crypto_aead_xchacha20poly1305_ietf_encrypt(payload, ad, nonce, box_key(secret))
    return nonce + bytes(sealed)


def open_box(secret: bytes, app: str, box: bytes) -> bytes:
    """Open a session box; raise ``Rejected`` if it is short or does not authenticate."""
    if len(box) < NONCE_BYTES + TAG_BYTES:
        raise Rejected("session.box_length: box too short")
    ad = additional_data(app, row_id(secret))
    nonce, sealed = box[:NONCE_BYTES], box[NONCE_BYTES:]
    try:
        return bytes(crypto_aead_xchacha20poly1305_ietf_decrypt(sealed, ad, nonce, box_key(secret)))
    except CryptoError:
        raise Rejected("session.box_open: box does not open") from None


@dataclass(frozen=True)
class Payload:
    """What a session box holds. ``key`` (a seed) is kept out of ``repr``."""

    user: int | str
    role: str
    key: bytes | None = field(repr=False)
    data: dict[str, Any]


def encode_payload(payload: Payload) -> bytes:
    """Serialise a payload to UTF-8 JSON (sorted keys, no spaces)."""
    if isinstance(payload.user, bool) or not isinstance(payload.user, int | str):
        raise Rejected("session.payload_user: user must be an integer or a string")
    if payload.key is not None and len(payload.key) != SEED_BYTES:
        raise Rejected("session.payload_key: key must be 32 bytes")
    document = {
        "user": payload.user,
        "role": payload.role,
        "key": None if payload.key is None else base64.b64encode(payload.key).decode("ascii"),
        "data": payload.data,
    }
    try:
        text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):
        raise Rejected("session.payload_data: data is not JSON") from None
    return text.encode("utf-8")


def decode_payload(raw: bytes) -> Payload:
    """Parse a payload; reject anything that is not exactly the expected shape."""
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # deep nesting: RecursionError
        raise Rejected("session.payload_json: payload is not UTF-8 JSON") from None
    if not isinstance(document, dict) or set(document) != PAYLOAD_KEYS:
        raise Rejected("session.payload_fields: wrong fields")
    user, role, key, data = document["user"], document["role"], document["key"], document["data"]
    if isinstance(user, bool) or not isinstance(user, int | str):
        raise Rejected("session.payload_user: user must be an integer or a string")
    if not isinstance(role, str):
        raise Rejected("session.payload_role: role must be a string")
    if not isinstance(data, dict):
        raise Rejected("session.payload_data: data must be an object")
    seed: bytes | None = None
    if key is not None:
        if not isinstance(key, str):
            raise Rejected("session.payload_key: key must be base64")
        try:
            seed = base64.b64decode(key, validate=True)
        except (binascii.Error, ValueError):
            raise Rejected("session.payload_key: key must be base64") from None
        if base64.b64encode(seed).decode("ascii") != key:
            raise Rejected("session.payload_key: key must be base64")
        if len(seed) != SEED_BYTES:
            raise Rejected("session.payload_key: key must be 32 bytes")
    return Payload(user=user, role=role, key=seed, data=data)


def _check_secret(secret: bytes) -> None:
    if len(secret) != SECRET_BYTES:
        raise Rejected("session.secret: secret must be 32 bytes")
