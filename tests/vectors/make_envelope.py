"""Generate the known-answer vectors for the item envelope and Padmé (docs/envelope.md,
section 8; file format in section 13): ``envelope.json`` and ``padme.json``.

Usage, from the repository root::

    .venv/bin/python tests/vectors/make_envelope.py            # write missing files only
    .venv/bin/python tests/vectors/make_envelope.py --force    # overwrite (review the diff!)
    .venv/bin/python tests/vectors/make_envelope.py --check    # compare padme.json

Every input (content keys, ids, nonces, recipient and signer keys, contents) is derived
from a fixed label, so ``padme.json``, the additional data, subkeys, sealed metas and
signatures are reproducible. Blobs and wraps are not: ``crypto_secretstream`` and
``crypto_box_seal`` draw their own randomness, so those are reader vectors. Vectors are
never regenerated silently: existing files are kept unless ``--force`` is given, and
``tests/crypto/test_envelope_vectors.py`` checks every case against the implementation.
Each invalid case has exactly one fault, so the check it names does not depend on the
order in which a reader runs its checks.
"""

from __future__ import annotations

import argparse
import io
import json
import struct
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

import nacl.bindings as sodium  # noqa: E402
import nacl.signing  # noqa: E402

from tipbox.crypto import envelope as env  # noqa: E402
from tipbox.crypto.envelope import Kind, Meta  # noqa: E402
from tipbox.crypto.kdf import blake2b_256  # noqa: E402

Case = dict[str, Any]
VECTOR_DIR = Path(__file__).resolve().parent
TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
TAG_PUSH = sodium.crypto_secretstream_xchacha20poly1305_TAG_PUSH
TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
# Plaintexts longer than this are given by their rule and hash only, to keep files small.
INLINE_PLAINTEXT_MAX = 4096


def det(label: str, size: int = 32) -> bytes:
    """A fixed pseudo-random input named by ``label``."""
    return blake2b_256(b"tipbox test vector\x00" + label.encode())[:size]


def x25519_pair(label: str) -> tuple[bytes, bytes]:
    """(secret, public): an X25519 key pair as section 2 makes them (secret used as-is)."""
    secret = det(label)
    return secret, sodium.crypto_scalarmult_base(secret)


def raw_stream(body_key: bytes, chunks: list[tuple[bytes, bytes | None, int]]) -> bytes:
    """A secretstream made with raw libsodium: (plaintext, additional data, tag) per chunk."""
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    parts = [sodium.crypto_secretstream_xchacha20poly1305_init_push(state, body_key)]
    for message, ad, tag in chunks:
        parts.append(sodium.crypto_secretstream_xchacha20poly1305_push(state, message, ad, tag))
    return b"".join(parts)


def raw_meta(meta_key: bytes, ad: bytes, padded: bytes, nonce: bytes) -> bytes:
    """A sealed meta around any 1024-byte padded record, made with raw libsodium."""
    return nonce + sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(padded, ad, nonce, meta_key)


def record(size: int, name: bytes, media_type: bytes) -> bytes:
    return struct.pack(">QH", size, len(name)) + name + bytes((len(media_type),)) + media_type


NEWSROOM_SECRET, NEWSROOM_PUBLIC = x25519_pair("envelope/newsroom")
SOURCE_SECRET, SOURCE_PUBLIC = x25519_pair("envelope/source")
SIGNER_SEED = det("envelope/journalist ed25519 seed")
SIGNER = nacl.signing.SigningKey(SIGNER_SEED)
OTHER_SIGNER = nacl.signing.SigningKey(det("envelope/another journalist"))


# --------------------------------------------------------------------------- envelope


def valid_case(
    name: str,
    kind: Kind,
    content: bytes,
    meta_name: str = "",
    media_type: str = env.TEXT_MEDIA_TYPE,
    plaintext_rule: str | None = None,
) -> Case:
    key = det(f"envelope/{name}/content key")
    source_id = det(f"envelope/{name}/source id", 16)
    item_id = det(f"envelope/{name}/item id", 16)
    ad = env.additional_data(kind, source_id, item_id)
    body_key, meta_key = env.content_subkeys(key)
    meta = Meta(meta_name, media_type, len(content))
    nonce = det(f"envelope/{name}/meta nonce", 24)
    sealed_meta = env.seal_meta(key, ad, meta, nonce)
    sink = io.BytesIO()
    info = env.encrypt_body(key, ad, content, sink, digest=True)
    blob = sink.getvalue()
    case: Case = {
        "name": name,
        "kind": int(kind),
        "source_id": source_id.hex(),
        "item_id": item_id.hex(),
        "ad": ad.hex(),
        "content_key": key.hex(),
        "body_key": body_key.hex(),
        "meta_key": meta_key.hex(),
        "meta": {"name": meta.name, "media_type": meta.media_type, "size": meta.size},
        "meta_nonce": nonce.hex(),
        "sealed_meta": sealed_meta.hex(),
        "padded_length": info.padded_length,
        "blob": blob.hex(),
        "blob_digest": blake2b_256(blob).hex(),
        "plaintext_blake2b": blake2b_256(content).hex(),
    }
    if plaintext_rule is None:
        case["plaintext"] = content.hex()
    else:
        case["plaintext_rule"] = plaintext_rule
    recipients = [("newsroom", NEWSROOM_SECRET, NEWSROOM_PUBLIC)]
    if kind == Kind.REPLY:
        recipients.append(("source", SOURCE_SECRET, SOURCE_PUBLIC))
    case["wraps"] = [
        {
            "recipient": who,
            "recipient_secret": secret.hex(),
            "recipient_public": public.hex(),
            "wrap": env.wrap_key(key, public).hex(),
        }
        for who, secret, public in recipients
    ]
    if kind in (Kind.REPLY, Kind.NOTE):
        digest = blake2b_256(blob)
        case["signer_seed"] = SIGNER_SEED.hex()
        case["signer_public"] = bytes(SIGNER.verify_key).hex()
        case["signature_message"] = env.signature_message(ad, sealed_meta, digest).hex()
        case["signature"] = env.sign_item(SIGNER, ad, sealed_meta, digest).hex()
    return case


def body_invalid(
    name: str, check: str, key: bytes, ad: bytes, plain_length: int, blob: bytes
) -> Case:
    return {
        "name": name,
        "part": "body",
        "check": check,
        "content_key": key.hex(),
        "ad": ad.hex(),
        "plain_length": plain_length,
        "blob": blob.hex(),
    }


def meta_invalid(name: str, check: str, key: bytes, ad: bytes, sealed_meta: bytes) -> Case:
    return {
        "name": name,
        "part": "meta",
        "check": check,
        "content_key": key.hex(),
        "ad": ad.hex(),
        "sealed_meta": sealed_meta.hex(),
    }


def flip(data: bytes, position: int) -> bytes:
    changed = bytearray(data)
    changed[position] ^= 0x01
    return bytes(changed)


def invalid_cases() -> list[Case]:
    key = det("envelope/invalid/content key")
    source_id = det("envelope/invalid/source id", 16)
    item_id = det("envelope/invalid/item id", 16)
    ad = env.additional_data(Kind.MESSAGE, source_id, item_id)
    body_key, meta_key = env.content_subkeys(key)
    text = "Это проверка. This is a test.".encode()
    padded = text + bytes(4096 - len(text))
    good = raw_stream(body_key, [(padded, ad, TAG_FINAL)])
    cases: list[Case] = [
        body_invalid("40 bytes", "body.too_short", key, ad, len(text), good[:40]),
        body_invalid("a bit flipped", "body.authenticate", key, ad, len(text), flip(good, 100)),
        body_invalid(
            "only chunk tagged TAG_MESSAGE",
            "body.tag_final",
            key,
            ad,
            len(text),
            raw_stream(body_key, [(padded, ad, TAG_MESSAGE)]),
        ),
        body_invalid(
            "only chunk tagged TAG_PUSH",
            "body.tag",
            key,
            ad,
            len(text),
            raw_stream(body_key, [(padded, ad, TAG_PUSH)]),
        ),
        body_invalid("a byte after TAG_FINAL", "body.trailing", key, ad, len(text), good + b"\0"),
        body_invalid(
            "non-zero padding",
            "body.padding",
            key,
            ad,
            len(text),
            raw_stream(body_key, [(padded[:-1] + b"\x01", ad, TAG_FINAL)]),
        ),
        body_invalid(
            "not padded",
            "body.padded_length",
            key,
            ad,
            len(text),
            raw_stream(body_key, [(text, ad, TAG_FINAL)]),
        ),
    ]

    nonce = det("envelope/invalid/meta nonce", 24)
    meta = Meta("", env.TEXT_MEDIA_TYPE, len(text))
    sealed = env.seal_meta(key, ad, meta, nonce)
    text_type = env.TEXT_MEDIA_TYPE.encode()
    other_source = env.additional_data(Kind.MESSAGE, det("envelope/other source", 16), item_id)
    as_reply = env.additional_data(Kind.REPLY, source_id, item_id)
    version_2 = ad[:16] + b"\x02" + ad[17:]

    def raw(padded_record: bytes, writer_ad: bytes = ad) -> bytes:
        return raw_meta(meta_key, writer_ad, padded_record, nonce)

    def pad(rec: bytes) -> bytes:
        return sodium.sodium_pad(rec, 1024)

    cases += [
        meta_invalid("1063 bytes", "meta.length", key, ad, sealed[:-1]),
        meta_invalid("a bit flipped", "meta.authenticate", key, ad, flip(sealed, 500)),
        meta_invalid(
            "sealed for another source",
            "meta.authenticate",
            key,
            ad,
            env.seal_meta(key, other_source, meta, nonce),
        ),
        meta_invalid(
            "sealed as a reply",
            "meta.authenticate",
            key,
            ad,
            env.seal_meta(key, as_reply, meta, nonce),
        ),
        meta_invalid(
            "sealed with version 2",
            "meta.authenticate",
            key,
            ad,
            raw(pad(record(len(text), b"", text_type)), version_2),
        ),
        meta_invalid("bad padding", "meta.padding", key, ad, raw(bytes(1024))),
        meta_invalid(
            "name length overruns",
            "meta.overrun",
            key,
            ad,
            raw(pad(struct.pack(">QH", len(text), 200) + b"abc")),
        ),
        meta_invalid(
            "a byte after the type",
            "meta.trailing",
            key,
            ad,
            raw(pad(record(len(text), b"", text_type) + b"\0")),
        ),
        meta_invalid(
            "name not UTF-8",
            "meta.name_utf8",
            key,
            ad,
            raw(pad(record(len(text), b"caf\xe9.txt", text_type))),
        ),
        meta_invalid(
            "type with a control byte",
            "meta.type_ascii",
            key,
            ad,
            raw(pad(record(len(text), b"", b"text/plain\n"))),
        ),
        meta_invalid(
            "size 2^53",
            "meta.size",
            key,
            ad,
            raw(pad(record(2**53, b"", text_type))),
        ),
    ]

    wrap = env.wrap_key(key, NEWSROOM_PUBLIC)
    other_secret, other_public = x25519_pair("envelope/another recipient")
    for name, check, value, secret in [
        ("sealed to another key", "wrap.open", env.wrap_key(key, other_public), NEWSROOM_SECRET),
        ("a bit flipped", "wrap.open", flip(wrap, 40), NEWSROOM_SECRET),
        ("79 bytes", "wrap.length", wrap[:-1], NEWSROOM_SECRET),
    ]:
        cases.append(
            {
                "name": name,
                "part": "wrap",
                "check": check,
                "recipient_secret": secret.hex(),
                "wrap": value.hex(),
            }
        )
    del other_secret

    reply_ad = as_reply
    reply_meta = env.seal_meta(key, reply_ad, meta, nonce)
    digest = blake2b_256(good)  # any 32 bytes will do: the signature is over the digest
    signature = env.sign_item(SIGNER, reply_ad, reply_meta, digest)
    other_meta = env.seal_meta(key, reply_ad, Meta("", env.TEXT_MEDIA_TYPE, 1), nonce)
    for name, check, signed_meta, sig in [
        (
            "signed by another journalist",
            "signature.verify",
            reply_meta,
            env.sign_item(OTHER_SIGNER, reply_ad, reply_meta, digest),
        ),
        ("a bit flipped", "signature.verify", reply_meta, flip(signature, 10)),
        ("meta replaced after signing", "signature.verify", other_meta, signature),
        ("63 bytes", "signature.length", reply_meta, signature[:-1]),
    ]:
        cases.append(
            {
                "name": name,
                "part": "signature",
                "check": check,
                "signer_public": bytes(SIGNER.verify_key).hex(),
                "ad": reply_ad.hex(),
                "sealed_meta": signed_meta.hex(),
                "blob_digest": digest.hex(),
                "signature": sig.hex(),
            }
        )
    return cases


def envelope_vectors() -> Case:
    two_chunk = (bytes(range(256)) * 257)[:65537]
    valid = [
        valid_case(
            "message",
            Kind.MESSAGE,
            # Russian, Kazakh and English, as sources write.
            "Здравствуйте. Сәлеметсіз бе. I have documents about the tender.".encode(),  # noqa: RUF001
        ),
        valid_case("empty message", Kind.MESSAGE, b""),
        valid_case(
            "small file",
            Kind.FILE,
            det("envelope/small file/content", 32) * 40,
            "Отчёт 2024.pdf",
            "application/pdf",
        ),
        valid_case("reply", Kind.REPLY, b"Thank you. Please do not use your work phone."),
        valid_case(
            "file of two chunks",
            Kind.FILE,
            two_chunk,
            "scan.png",
            "image/png",
            plaintext_rule="65537 bytes; byte i is i mod 256",
        ),
    ]
    return {
        "description": (
            "The item envelope (section 8). Valid cases: additional data, subkeys and "
            "sealed_meta are reproducible from their inputs (sealed_meta with meta_nonce); "
            "blob and wraps are reader vectors, since crypto_secretstream and "
            "crypto_box_seal are randomised: the blob must decrypt, with meta.size as L, to "
            "the plaintext (given in hex, or by plaintext_rule, and by its BLAKE2b-256), "
            "each wrap must open with recipient_secret to content_key, and for replies and "
            "notes the Ed25519 signature (deterministic, from signer_seed) must equal "
            "signature and verify over signature_message. Invalid cases have one fault "
            "each; part says which reader to run (body: decrypt blob with content_key, ad "
            "and plain_length; meta: open sealed_meta; wrap: open with recipient_secret; "
            "signature: verify over ad, sealed_meta and blob_digest) and check names the "
            "rule that must reject it."
        ),
        "valid": valid,
        "invalid": invalid_cases(),
    }


# --------------------------------------------------------------------------- padme


def padme_vectors() -> Case:
    lengths = {0, 1, 2, 100, 4095, 4096, 4097, 4351, 4352, 4353, 5000, 65535, 65536, 65537}
    lengths |= {67584, 67585, 131072, 131073, 10 * 2**20, 10 * 2**20 + 1, 2**53 - 1}
    for exponent in range(12, 53):
        lengths |= {2**exponent - 1, 2**exponent, 2**exponent + 1}
    valid = [
        {
            "length": n,
            "padded_length": env.padded_length(n),
            "blob_length": env.blob_length(n),
        }
        for n in sorted(lengths)
    ]
    # Blob sizes that are no bucket's: one off either side of valid ones, and tiny ones.
    invalid_blob_lengths = sorted(
        {0, 24, 41, 4136, 4138, 4392, 4394, 65576, 65578, 67641, 67643, 67642 + 17}
    )
    return {
        "description": (
            "Padmé buckets (section 8.2): padded_length = padme(max(length, 4096)) and "
            "blob_length = 24 + P + 17 * ceil(P / 65536). A server that sees only a blob's "
            "size must accept exactly the blob_length values of some length, and reject "
            "invalid_blob_lengths."
        ),
        "valid": valid,
        "invalid_blob_lengths": invalid_blob_lengths,
    }


def dump(data: Case, *, compact_cases: bool = False) -> str:
    """JSON, indented; with ``compact_cases``, one line per case (for long flat lists)."""
    if not compact_cases:
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    lines = []
    for key, value in data.items():
        if key == "valid":
            rows = ",\n".join(f"    {json.dumps(case)}" for case in value)
            lines.append(f'  "valid": [\n{rows}\n  ]')
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.add_argument("--check", action="store_true", help="compare padme.json, write nothing")
    args = parser.parse_args()
    if args.check:
        expected = dump(padme_vectors(), compact_cases=True)
        same = (VECTOR_DIR / "padme.json").read_text(encoding="utf-8") == expected
        print("padme.json", "matches" if same else "DIFFERS")
        return 0 if same else 1
    for name in ("envelope.json", "padme.json"):
        path = VECTOR_DIR / name
        if path.exists() and not args.force:
            print(f"{name}: exists, kept (use --force to overwrite)")
            continue
        if name == "envelope.json":
            text = dump(envelope_vectors())
        else:
            text = dump(padme_vectors(), compact_cases=True)
        path.write_text(text, encoding="utf-8")
        print(f"{name}: written, {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
