"""Generate tests/vectors/sessions.json (docs/envelope.md section 9).

Run once: ``python tests/vectors/make_sessions.py > tests/vectors/sessions.json``. The
vectors are never regenerated silently: ``tests/crypto/test_sessionbox.py`` checks that this
script still produces exactly the committed file, and that ``tipbox.crypto.sessionbox``
agrees with it.

This script does not use ``tipbox.crypto``: it derives with ``hashlib.blake2b`` (the
definition of ``crypto_kdf_derive_from_key``) and encrypts with libsodium's AEAD directly,
so that the vectors check the implementation rather than repeat it. Secrets and nonces are
fixed, so the output is deterministic.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import sys
from typing import Any

from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_encrypt

CONTEXT = b"tbsessn1"


def kdf(key: bytes, subkey_id: int, length: int = 32) -> bytes:
    """``crypto_kdf_derive_from_key(length, subkey_id, "tbsessn1", key)``."""
    salt = struct.pack("<Q", subkey_id) + bytes(8)
    return hashlib.blake2b(
        b"", digest_size=length, key=key, salt=salt, person=CONTEXT + bytes(8)
    ).digest()


def fixed(label: str, size: int) -> bytes:
    """A fixed, reproducible byte string for the vectors."""
    return hashlib.blake2b(label.encode(), digest_size=size).digest()


def cookie(secret: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(secret).rstrip(b"=").decode()


def ad(app: str, row_id: bytes) -> bytes:
    """The box's additional data."""
    return b"tipbox.session.v1\x00" + app.encode() + b"\x00" + row_id


def payload(user: int | str, role: str, key: bytes | None, data: dict[str, Any]) -> bytes:
    """UTF-8 JSON, sorted keys, no spaces; the key as padded standard base64."""
    document = {
        "user": user,
        "role": role,
        "key": None if key is None else base64.b64encode(key).decode(),
        "data": data,
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode()


def box(secret: bytes, app: str, message: bytes, nonce: bytes) -> bytes:
    """``nonce || XChaCha20-Poly1305(box_key, nonce, message, ad)``."""
    sealed = crypto_aead_xchacha20poly1305_ietf_encrypt(
        message, ad(app, kdf(secret, 1, 16)), nonce, kdf(secret, 2)
    )
    return nonce + bytes(sealed)


def valid_case(
    comment: str,
    secret: bytes,
    app: str,
    user: int | str,
    role: str,
    key: bytes | None,
    data: dict[str, Any],
    nonce: bytes,
) -> dict[str, Any]:
    """One known-answer case: S to cookie, row id, box key, and a box to its payload."""
    message = payload(user, role, key, data)
    row_id = kdf(secret, 1, 16)
    return {
        "comment": comment,
        "secret": secret.hex(),
        "cookie": cookie(secret),
        "row_id": row_id.hex(),
        "box_key": kdf(secret, 2).hex(),
        "app": app,
        "ad": ad(app, row_id).hex(),
        "nonce": nonce.hex(),
        "payload": message.hex(),
        "user": user,
        "role": role,
        "key": None if key is None else key.hex(),
        "data": data,
        "box": box(secret, app, message, nonce).hex(),
    }


def build() -> dict[str, Any]:
    """Every vector, as the JSON document."""
    s1, s2, s3 = fixed("session secret 1", 32), fixed("session secret 2", 32), bytes(range(32))
    valid = [
        valid_case(
            "journalist session with a key seed and app data",
            s1,
            "journalist",
            7,
            "admin",
            fixed("journalist seed", 32),
            {"csrf": "c2VjcmV0", "flash": []},
            fixed("nonce 1", 24),
        ),
        valid_case(
            "source session, user as hex public id, non-ASCII data",
            s2,
            "source",
            "3f2a9b01c4d5e6f708192a3b4c5d6e7f",
            "source",
            fixed("source seed", 32),
            {"lang": "kk", "note": "Сәлем"},
            fixed("nonce 2", 24),
        ),
        valid_case(
            "no key seed (a journalist whose key is being reset)",
            s3,
            "journalist",
            1,
            "journalist",
            None,
            {},
            bytes(24),
        ),
        valid_case(
            "all-ones secret: the cookie's last character carries two zero bits",
            b"\xff" * 32,
            "source",
            1,
            "source",
            None,
            {},
            b"\xff" * 24,
        ),
    ]
    good = valid[0]
    good_box = bytes.fromhex(good["box"])
    flipped = bytearray(good_box)
    flipped[-1] ^= 1
    flipped_nonce = bytearray(good_box)
    flipped_nonce[0] ^= 1
    good_cookie = good["cookie"]
    # A canonical cookie ends in one of "AEIMQUYcgkosw048"; the next letter is not canonical.
    noncanonical = good_cookie[:-1] + chr(ord(good_cookie[-1]) + 1)
    invalid: list[dict[str, Any]] = [
        {
            "comment": "42 characters",
            "cookie": good_cookie[:-1],
            "check": "session.cookie_length",
        },
        {
            "comment": "44 characters",
            "cookie": good_cookie + "A",
            "check": "session.cookie_length",
        },
        {
            "comment": "padded",
            "cookie": good_cookie[:-1] + "=",
            "check": "session.cookie_base64",
        },
        {
            "comment": "standard alphabet",
            "cookie": "+" + good_cookie[1:],
            "check": "session.cookie_base64",
        },
        {
            "comment": "spare bits set",
            "cookie": noncanonical,
            "check": "session.cookie_canonical",
        },
        {
            "comment": "tag modified",
            "secret": good["secret"],
            "app": "journalist",
            "box": bytes(flipped).hex(),
            "check": "session.box_open",
        },
        {
            "comment": "nonce modified",
            "secret": good["secret"],
            "app": "journalist",
            "box": bytes(flipped_nonce).hex(),
            "check": "session.box_open",
        },
        {
            "comment": "journalist box opened by the source app",
            "secret": good["secret"],
            "app": "source",
            "box": good["box"],
            "check": "session.box_open",
        },
        {
            "comment": "box moved to another session's secret (row id and key differ)",
            "secret": s2.hex(),
            "app": "journalist",
            "box": good["box"],
            "check": "session.box_open",
        },
        {
            "comment": "shorter than nonce and tag",
            "secret": good["secret"],
            "app": "journalist",
            "box": good_box[:39].hex(),
            "check": "session.box_length",
        },
    ]
    key_b64 = base64.b64encode(fixed("journalist seed", 32)).decode()
    bad_payloads = [
        ("not JSON", b"{user:1}", "session.payload_json"),
        ("not UTF-8", b'{"user":"\xff"}', "session.payload_json"),
        ("missing data", b'{"key":null,"role":"x","user":1}', "session.payload_fields"),
        (
            "extra field",
            b'{"data":{},"exp":1,"key":null,"role":"x","user":1}',
            "session.payload_fields",
        ),
        ("a list", b"[]", "session.payload_fields"),
        (
            "user is a boolean",
            b'{"data":{},"key":null,"role":"x","user":true}',
            "session.payload_user",
        ),
        (
            "role is a number",
            b'{"data":{},"key":null,"role":1,"user":1}',
            "session.payload_role",
        ),
        (
            "data is a list",
            b'{"data":[],"key":null,"role":"x","user":1}',
            "session.payload_data",
        ),
        (
            "key in base64url",
            (
                '{"data":{},"key":"'
                + key_b64.replace("+", "-").replace("/", "_")
                + '","role":"x","user":1}'
            ).encode(),
            "session.payload_key",
        ),
        (
            "key of 31 bytes",
            (
                '{"data":{},"key":"'
                + base64.b64encode(bytes(31)).decode()
                + '","role":"x","user":1}'
            ).encode(),
            "session.payload_key",
        ),
        (
            "key without padding",
            ('{"data":{},"key":"' + key_b64.rstrip("=") + '","role":"x","user":1}').encode(),
            "session.payload_key",
        ),
    ]
    for comment, raw, check in bad_payloads:
        invalid.append({"comment": comment, "payload": raw.hex(), "check": check})
    return {
        "format": "tipbox sessions, docs/envelope.md section 9",
        "valid": valid,
        "invalid": invalid,
    }


def render() -> str:
    """The file's exact text."""
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
