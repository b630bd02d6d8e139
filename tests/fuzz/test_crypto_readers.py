"""Every reader of a stored format in ``tipbox.crypto`` against hostile input.

Three kinds of input per reader: mutations of the known-answer vectors (an untouched
vector opens; anything else is ``Rejected``), random bytes, and "authenticated garbage":
a fuzzed plaintext sealed under the right key, so that the parsing behind each AEAD or
sealed box runs on hostile records too. The only exception a reader may raise is
``Rejected`` (docs/envelope.md section 1).
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import nacl.bindings as sodium
from hypothesis import given
from hypothesis import strategies as st

from tipbox.crypto import envelope as env
from tipbox.crypto import sessionbox
from tipbox.crypto.codenames import parse_codename
from tipbox.crypto.directory import Entry, verify_entry
from tipbox.crypto.errors import Rejected
from tipbox.crypto.grants import open_grant
from tipbox.crypto.journalist import open_seed, open_totp
from tipbox.crypto.kdf import CTX_CONTENT, derive
from tipbox.crypto.keys import (
    IDENTITY_FINGERPRINT,
    IDENTITY_JSON,
    PublicKeys,
    Role,
    keypair_from_seed,
    parse_identity_file,
    read_identity_file,
)
from tipbox.crypto.passphrases import parse_passphrase
from tipbox.crypto.recovery import parse_recovery_public_file, parse_recovery_secret
from tipbox.crypto.tags import TAG_AD_PREFIX, metadata_keys, open_tag

from .profiles import fuzz, hostile_bytes, hostile_text, mutated, pure_parser

pytestmark = pure_parser

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
T = TypeVar("T")


def _vectors(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / f"{name}.json").read_text(encoding="utf-8"))
    return data


def _hex(value: str) -> bytes:
    return bytes.fromhex(value)


def opens_or_rejects(read: Callable[[], T]) -> T | None:
    """Run a reader: its result, or None when it raised ``Rejected`` (anything else
    propagates and fails the test)."""
    try:
        return read()
    except Rejected:
        return None


def rejected(read: Callable[[], object]) -> None:
    """The reader must refuse with ``Rejected``."""
    try:
        read()
    except Rejected:
        return
    raise AssertionError("a changed input was accepted")


def changed(original: bytes) -> st.SearchStrategy[bytes]:
    """Mutations of ``original`` that differ from it."""
    return mutated(original).filter(lambda data: data != original)


ENVELOPE = _vectors("envelope")
ITEMS = [v for v in ENVELOPE["valid"] if "wraps" in v]
REPLY = next(v for v in ENVELOPE["valid"] if "signature" in v)


def _aead(plain: bytes, ad: bytes, key: bytes, nonce: bytes = bytes(24)) -> bytes:
    return nonce + bytes(sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plain, ad, nonce, key))


# --- the envelope: meta, body, wraps, signatures -------------------------------------------


@fuzz(300)
@given(st.sampled_from(ITEMS), st.data())
def test_open_meta_rejects_every_mutation(vector: dict[str, Any], data: st.DataObject) -> None:
    key, ad, sealed = (_hex(vector[k]) for k in ("content_key", "ad", "sealed_meta"))
    assert env.open_meta(key, ad, sealed).size == vector["meta"]["size"]
    rejected(lambda: env.open_meta(key, ad, data.draw(changed(sealed))))
    rejected(lambda: env.open_meta(key, data.draw(changed(ad)), sealed))


@st.composite
def meta_records(draw: st.DrawFn) -> bytes:
    """A 1024-byte meta block: a plausible record (lengths that may overrun) or noise."""
    size = draw(st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, 2**53 - 1, 2**53])))
    name = draw(hostile_bytes(1100))
    name_length = draw(st.one_of(st.just(len(name)), st.integers(0, 0xFFFF)))
    media = draw(hostile_bytes(300))
    media_length = draw(st.one_of(st.just(len(media)), st.integers(0, 255))) & 0xFF
    record = struct.pack(">QH", size, name_length) + name + bytes([media_length]) + media
    record += draw(st.binary(max_size=8))
    if draw(st.booleans()) and len(record) < 1024:
        return bytes(sodium.sodium_pad(record, 1024))
    return (record + draw(st.binary(min_size=1024, max_size=1024)))[:1024]


@fuzz(250)
@given(meta_records(), st.sampled_from(ITEMS))
def test_open_meta_parses_authenticated_garbage(block: bytes, vector: dict[str, Any]) -> None:
    key, ad = _hex(vector["content_key"]), _hex(vector["ad"])
    sealed = _aead(block, ad, derive(key, 2, CTX_CONTENT))
    meta = opens_or_rejects(lambda: env.open_meta(key, ad, sealed))
    if meta is not None:
        # What opened is a record a writer could have made: it seals and opens the same.
        assert env.open_meta(key, ad, env.seal_meta(key, ad, meta)) == meta


def _read_body(key: bytes, ad: bytes, blob: bytes, length: int) -> bytes:
    return b"".join(env.decrypt_body(key, ad, io.BytesIO(blob), length))


@fuzz(150)
@given(st.sampled_from(ITEMS), st.data())
def test_decrypt_body_rejects_every_mutation(vector: dict[str, Any], data: st.DataObject) -> None:
    key, ad, blob = (_hex(vector[k]) for k in ("content_key", "ad", "blob"))
    size = vector["meta"]["size"]
    rejected(lambda: _read_body(key, ad, data.draw(changed(blob)), size))
    other = data.draw(st.integers(0, 3 * size + 70000).filter(lambda n: n != size))
    # Another length may fall in the same bucket: then only the padding check can tell.
    result = opens_or_rejects(lambda: _read_body(key, ad, blob, other))
    assert result is None or env.padded_length(other) == env.padded_length(size)


@st.composite
def secretstreams(draw: st.DrawFn) -> tuple[bytes, bytes, bytes, int]:
    """(content key, AD, blob, claimed length): a real secretstream of arbitrary chunks,
    tags and padding, with a claimed length near what the chunks hold."""
    key = draw(st.binary(min_size=32, max_size=32))
    ad = env.additional_data(draw(st.sampled_from(list(env.Kind))), bytes(16), bytes(range(16)))
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    header = sodium.crypto_secretstream_xchacha20poly1305_init_push(
        state, derive(key, 1, CTX_CONTENT)
    )
    pieces, total = [header], 0
    tags = st.sampled_from([0, 0, 0, 1, 2, 3])
    for index in range(draw(st.integers(0, 4))):
        size = draw(st.sampled_from([0, 1, 4095, 4096, 8191, 65535, 65536, 65537]))
        fill = draw(st.sampled_from([b"\x00", b"\x01", b"A"]))
        chunk_ad = ad if index == 0 and draw(st.booleans()) else None
        pieces.append(
            sodium.crypto_secretstream_xchacha20poly1305_push(
                state, fill * size, chunk_ad, draw(tags)
            )
        )
        total += size
    pieces.append(draw(st.binary(max_size=20)))
    length = draw(st.one_of(st.integers(0, total + 10), st.integers(0, 2**53 - 1)))
    return key, ad, b"".join(pieces), length


@fuzz(200)
@given(secretstreams())
def test_decrypt_body_survives_arbitrary_streams(stream: tuple[bytes, bytes, bytes, int]) -> None:
    key, ad, blob, length = stream
    content = opens_or_rejects(lambda: _read_body(key, ad, blob, length))
    if content is not None:
        assert len(content) == length
        assert len(blob) == env.blob_length(length)


@fuzz(300)
@given(st.integers(-(2**70), 2**70))
def test_padded_length_of_blob_takes_any_size(size: int) -> None:
    padded = opens_or_rejects(lambda: env.padded_length_of_blob(size))
    if padded is not None:
        assert env.blob_length(padded) == size


@fuzz(200)
@given(st.sampled_from(ITEMS), st.data())
def test_unwrap_key_rejects_every_mutation(vector: dict[str, Any], data: st.DataObject) -> None:
    wrap = vector["wraps"][0]
    secret, public, sealed = (
        _hex(wrap[k]) for k in ("recipient_secret", "recipient_public", "wrap")
    )
    assert env.unwrap_key(sealed, secret) == _hex(vector["content_key"])
    rejected(lambda: env.unwrap_key(data.draw(changed(sealed)), secret))
    rejected(lambda: env.unwrap_key(sealed, secret, data.draw(changed(public))))
    opens_or_rejects(lambda: env.unwrap_key(sealed, data.draw(hostile_bytes(40))))


@fuzz(200)
@given(st.data())
def test_verify_item_rejects_every_mutation(data: st.DataObject) -> None:
    signer, ad, meta, digest, signature = (
        _hex(REPLY[k]) for k in ("signer_public", "ad", "sealed_meta", "blob_digest", "signature")
    )
    env.verify_item(signer, ad, meta, digest, signature)
    parts = [signer, ad, meta, digest, signature]
    which = data.draw(st.integers(0, 4))
    parts[which] = data.draw(changed(parts[which]))
    rejected(lambda: env.verify_item(*parts))


# --- the directory and grants --------------------------------------------------------------

DIRECTORY = _vectors("directory")
IDENTITY_ED25519 = _hex(DIRECTORY["identity_ed25519_public"])
IDENTITY = keypair_from_seed(Role.IDENTITY, _hex(DIRECTORY["identity_seed"]))


@fuzz(300)
@given(st.sampled_from(DIRECTORY["valid"]), st.data())
def test_verify_entry_rejects_every_mutation(vector: dict[str, Any], data: st.DataObject) -> None:
    entry, signature = _hex(vector["entry"]), _hex(vector["signature"])
    verify_entry(IDENTITY_ED25519, entry, signature)
    rejected(lambda: verify_entry(IDENTITY_ED25519, data.draw(changed(entry)), signature))
    rejected(lambda: verify_entry(IDENTITY_ED25519, entry, data.draw(changed(signature))))
    rejected(lambda: verify_entry(data.draw(changed(IDENTITY_ED25519)), entry, signature))


@st.composite
def entry_bytes(draw: st.DrawFn) -> bytes:
    """126 bytes shaped like an entry (right prefix, fuzzed fields), or mutated valid ones."""
    valid = _hex(draw(st.sampled_from(DIRECTORY["valid"]))["entry"])
    prefix = valid[:20]
    body = draw(
        st.one_of(
            st.binary(min_size=106, max_size=106),
            mutated(valid[20:]),
        )
    )
    return prefix + body


@fuzz(200)
@given(entry_bytes())
def test_verify_entry_parses_signed_garbage(entry: bytes) -> None:
    # Signed by the identity key itself: only the structural checks stand in the way.
    signature = IDENTITY.sign(entry)
    found = opens_or_rejects(lambda: verify_entry(IDENTITY_ED25519, entry, signature))
    if found is not None:
        assert found.to_bytes() == entry
    opens_or_rejects(lambda: Entry.parse(entry))


GRANTS = _vectors("grants")


def _grant_case(vector: dict[str, Any]) -> tuple[Any, Role, bytes, Entry]:
    grantee = keypair_from_seed(Role(vector["grantee_role"]), _hex(vector["grantee_seed"]))
    entry = verify_entry(
        _hex(GRANTS["identity_ed25519_public"]), _hex(vector["entry"]), _hex(vector["signature"])
    )
    return grantee, Role(vector["expected_role"]), _hex(vector["expected_key_id"]), entry


@fuzz(200)
@given(st.sampled_from(GRANTS["valid"]), st.data())
def test_open_grant_rejects_every_mutation(vector: dict[str, Any], data: st.DataObject) -> None:
    grantee, role, key_id, entry = _grant_case(vector)
    grant = _hex(vector["grant"])
    assert open_grant(grant, grantee, role, key_id, entry) == _hex(vector["seed"])
    rejected(lambda: open_grant(data.draw(changed(grant)), grantee, role, key_id, entry))


@fuzz(200)
@given(st.sampled_from(GRANTS["valid"]), st.data())
def test_open_grant_parses_sealed_garbage(vector: dict[str, Any], data: st.DataObject) -> None:
    grantee, role, key_id, entry = _grant_case(vector)
    seed = _hex(vector["seed"])
    plain = bytes(16) + bytes([role]) + key_id + grantee.key_id + seed
    plain = b"tipbox.grant.v1" + data.draw(mutated(plain[15:]))
    grant = bytes(sodium.crypto_box_seal(plain, grantee.x25519_public))
    result = opens_or_rejects(lambda: open_grant(grant, grantee, role, key_id, entry))
    assert result is None or result == seed


# --- sessions, tags, journalist boxes ------------------------------------------------------

SESSIONS = _vectors("sessions")


@fuzz(300)
@given(st.one_of(hostile_text(60), st.text(alphabet="AZaz09_-=+/", min_size=42, max_size=44)))
def test_decode_cookie_takes_any_text(value: str) -> None:
    secret = opens_or_rejects(lambda: sessionbox.decode_cookie(value))
    if secret is not None:
        assert sessionbox.encode_cookie(secret) == value


@fuzz(200)
@given(st.sampled_from(SESSIONS["valid"]), st.data())
def test_open_box_rejects_every_mutation(vector: dict[str, Any], data: st.DataObject) -> None:
    secret, box, app = _hex(vector["secret"]), _hex(vector["box"]), vector["app"]
    assert sessionbox.open_box(secret, app, box) == _hex(vector["payload"])
    rejected(lambda: sessionbox.open_box(secret, app, data.draw(changed(box))))


@st.composite
def payloads(draw: st.DrawFn) -> bytes:
    """Session payloads: mutated valid ones, JSON of any shape, deep nesting, raw bytes."""
    valid = _hex(draw(st.sampled_from(SESSIONS["valid"]))["payload"])
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10))
    shapes = st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
        ),
        max_leaves=12,
    )
    fields = st.fixed_dictionaries(
        {"user": shapes, "role": shapes, "key": st.one_of(shapes, st.text()), "data": shapes}
    )
    depth = draw(st.integers(1, 5000))
    raw: bytes = draw(
        st.one_of(
            mutated(valid),
            fields.map(lambda d: json.dumps(d).encode()),
            shapes.map(lambda d: json.dumps(d).encode()),
            st.just(b'{"data":' * depth + b"1" + b"}" * depth),
            st.just(b"[" * depth),
            hostile_bytes(),
        )
    )
    return raw


@fuzz(200)
@given(payloads())
def test_decode_payload_takes_any_bytes(raw: bytes) -> None:
    payload = opens_or_rejects(lambda: sessionbox.decode_payload(raw))
    if payload is not None:
        assert sessionbox.decode_payload(sessionbox.encode_payload(payload)) == payload


TAGS = _vectors("tags")
TAG_KEYS = metadata_keys(_hex(TAGS["metadata_seed"]))


@fuzz(200)
@given(st.sampled_from(TAGS["valid"]), st.data())
def test_open_tag_rejects_every_mutation(vector: dict[str, Any], data: st.DataObject) -> None:
    source_id, sealed = _hex(vector["source_id"]), _hex(vector["sealed"])
    assert open_tag(TAG_KEYS, source_id, sealed) == vector["display"]
    rejected(lambda: open_tag(TAG_KEYS, source_id, data.draw(changed(sealed))))
    opens_or_rejects(lambda: open_tag(TAG_KEYS, data.draw(hostile_bytes(20)), sealed))


@fuzz(250)
@given(hostile_bytes(300), st.booleans(), st.binary(min_size=16, max_size=16))
def test_open_tag_parses_authenticated_garbage(text: bytes, framed: bool, source: bytes) -> None:
    record = bytes([len(text) & 0xFF]) + text if framed else text
    padded = bytes(sodium.sodium_pad(record, 256)) if len(record) < 256 else record[:256]
    ad = TAG_AD_PREFIX + b"\x00" + TAG_KEYS.key_id + source
    sealed = _aead(padded, ad, TAG_KEYS.tag_key)
    tag = opens_or_rejects(lambda: open_tag(TAG_KEYS, source, sealed))
    assert tag is None or tag.encode() == text


JOURNALIST = _vectors("journalist")
SEED_BOX = next(v for v in JOURNALIST["valid"] if v["kind"] == "seed_box")
TOTP_BOX = next(v for v in JOURNALIST["valid"] if v["kind"] == "totp_box")


@fuzz(200)
@given(st.data())
def test_journalist_boxes_reject_every_mutation(data: st.DataObject) -> None:
    v = SEED_BOX
    public = PublicKeys(Role.JOURNALIST, _hex(v["x25519_public"]), _hex(v["ed25519_public"]))
    kek, journalist_id, box = _hex(v["kek"]), _hex(v["journalist_id"]), _hex(v["box"])
    assert open_seed(kek, journalist_id, public, box) == _hex(v["seed"])
    rejected(lambda: open_seed(kek, journalist_id, public, data.draw(changed(box))))
    rejected(lambda: open_seed(kek, data.draw(changed(journalist_id)), public, box))
    t = TOTP_BOX
    totp_key, totp_id, totp_box = _hex(t["totp_key"]), _hex(t["journalist_id"]), _hex(t["box"])
    assert open_totp(totp_key, totp_id, totp_box) == _hex(t["secret"])
    rejected(lambda: open_totp(totp_key, totp_id, data.draw(changed(totp_box))))
    rejected(lambda: open_totp(data.draw(changed(totp_key)), totp_id, totp_box))


# --- public key files and typed secrets ----------------------------------------------------

KEYS = _vectors("keys")
IDENTITY_FILE = next(v for v in KEYS["valid"] if v["kind"] == "identity_file")["text"]
RECOVERY_FILE = next(v for v in _vectors("recovery")["valid"] if v["kind"] == "public_file")["text"]


@st.composite
def key_file_texts(draw: st.DrawFn, valid: str) -> str:
    """Key file text: mutated (decoded leniently), JSON of other shapes, deep nesting."""
    depth = draw(st.integers(1, 8000))
    base = json.loads(valid)
    swapped = draw(
        st.dictionaries(
            st.sampled_from([*base, "extra"]),
            st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=70)),
        )
    )
    return draw(
        st.one_of(
            mutated(valid.encode()).map(lambda b: b.decode("utf-8", "replace")),
            st.just(json.dumps({**base, **swapped})),
            st.just("[" * depth),
            st.just('{"format":' * depth),
            hostile_text(),
        )
    )


@fuzz(150)
@given(key_file_texts(IDENTITY_FILE), key_file_texts(RECOVERY_FILE))
def test_key_files_take_any_text(identity: str, recovery: str) -> None:
    assert opens_or_rejects(lambda: parse_identity_file(IDENTITY_FILE)) is not None
    opens_or_rejects(lambda: parse_identity_file(identity))
    opens_or_rejects(lambda: parse_recovery_public_file(recovery))


@fuzz(150)
@given(mutated(IDENTITY_FILE.encode()), st.one_of(st.none(), hostile_bytes(60)))
def test_read_identity_file_takes_any_bytes(
    tmp_path: Path, identity: bytes, fingerprint: bytes | None
) -> None:
    (tmp_path / IDENTITY_JSON).write_bytes(identity)
    fingerprint_path = tmp_path / IDENTITY_FINGERPRINT
    fingerprint_path.unlink(missing_ok=True)
    if fingerprint is not None:
        fingerprint_path.write_bytes(fingerprint)
    opens_or_rejects(lambda: read_identity_file(tmp_path))


@fuzz(200)
@given(hostile_text(300))
def test_typed_secrets_take_any_text(typed: str) -> None:
    for parse in (parse_codename, parse_passphrase, parse_recovery_secret):
        opens_or_rejects(lambda: parse(typed))  # noqa: B023 - called at once
