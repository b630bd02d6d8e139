"""Generate the known-answer vectors for keys, directory, grants, codenames, journalist keys
and the recovery key (docs/envelope.md sections 2-7, 10, 11; format in section 13).

Usage, from the repository root::

    .venv/bin/python tests/vectors/make_keys.py            # write missing files only
    .venv/bin/python tests/vectors/make_keys.py --force    # overwrite (review the diff!)
    .venv/bin/python tests/vectors/make_keys.py --check    # compare deterministic files

Every input is derived from a fixed label, so every output is reproducible except the
sealed boxes of ``grants.json`` (``crypto_box_seal`` draws an ephemeral key): those are
reader vectors. Vectors are never regenerated silently: existing files are kept unless
``--force`` is given, and ``tests/crypto/test_vectors_keys.py`` checks every case against
the implementation. Each invalid case has exactly one fault, so the check it names does
not depend on the order in which a reader runs its checks.
"""

# The tables of cases below read best one case per line, even when a line is long.
# ruff: noqa: E501

from __future__ import annotations

import argparse
import json
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_encrypt as aead  # noqa: E402
from nacl.bindings import crypto_box_seal  # noqa: E402

from tipbox.config import CODENAME_KDF, JOURNALIST_KDF, TEST_KDF, Argon2Cost  # noqa: E402
from tipbox.crypto import codenames, journalist, recovery  # noqa: E402
from tipbox.crypto.directory import NO_SUBJECT, Entry, Status  # noqa: E402
from tipbox.crypto.grants import grant_plaintext, make_grant  # noqa: E402
from tipbox.crypto.identity import sign_entry, sign_identity_entry  # noqa: E402
from tipbox.crypto.kdf import ALL_CONTEXTS, blake2b_256, derive, tagged_hash  # noqa: E402
from tipbox.crypto.keys import (  # noqa: E402
    FINGERPRINT_TAG,
    KeyPair,
    Role,
    identity_file_text,
    keypair_from_seed,
)
from tipbox.crypto.wordlist import words  # noqa: E402

Case = dict[str, Any]
VECTOR_DIR = Path(__file__).resolve().parent
# Files whose every byte is reproducible (grants.json holds sealed boxes and is not).
DETERMINISTIC = (
    "kdf.json",
    "keys.json",
    "directory.json",
    "codenames.json",
    "journalist.json",
    "recovery.json",
)


def det(label: str, size: int = 32) -> bytes:
    """A fixed pseudo-random input named by ``label``."""
    return blake2b_256(b"tipbox test vector\x00" + label.encode())[:size]


def det_words(label: str, count: int) -> list[str]:
    """``count`` list words picked deterministically from ``label``."""
    wordlist = words()
    return [
        wordlist[int.from_bytes(det(f"{label}/{i}", 4), "big") % len(wordlist)]
        for i in range(count)
    ]


def _hex_or_none(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def _cost(cost: Argon2Cost) -> Case:
    return {"opslimit": cost.opslimit, "memlimit": cost.memlimit}


# --------------------------------------------------------------------------- kdf.json


def kdf_vectors() -> Case:
    valid: list[Case] = []
    reference_key = bytes(range(32))
    for subkey_id in range(4):
        for length in (16, 32, 64):
            valid.append(
                {
                    "name": f"libsodium reference id {subkey_id} length {length}",
                    "key": reference_key.hex(),
                    "context": "KDF test",
                    "id": subkey_id,
                    "length": length,
                    "output": derive(reference_key, subkey_id, b"KDF test", length).hex(),
                }
            )
    key = det("kdf")
    for context in ALL_CONTEXTS:
        for subkey_id in (1, 2, 3):
            valid.append(
                {
                    "name": f"{context.decode()} id {subkey_id}",
                    "key": key.hex(),
                    "context": context.decode(),
                    "id": subkey_id,
                    "length": 32,
                    "output": derive(key, subkey_id, context).hex(),
                }
            )
    valid.append(
        {
            "name": "session row id (16 bytes)",
            "key": key.hex(),
            "context": "tbsessn1",
            "id": 1,
            "length": 16,
            "output": derive(key, 1, b"tbsessn1", 16).hex(),
        }
    )
    valid.append(
        {
            "name": "largest subkey id",
            "key": key.hex(),
            "context": "tbcontn1",
            "id": 2**64 - 1,
            "length": 32,
            "output": derive(key, 2**64 - 1, b"tbcontn1").hex(),
        }
    )
    return {
        "description": (
            "crypto_kdf_derive_from_key(length, id, context, key); context is 8 ASCII "
            "characters. The first 12 cases are libsodium's own test key (bytes 0..31) and "
            "context; all are re-checked against libsodium.js by test_kdf_libsodium_js.py."
        ),
        "valid": valid,
    }


# --------------------------------------------------------------------------- keys.json


def keypair_case(name: str, role: Role, seed: bytes) -> Case:
    pair = keypair_from_seed(role, seed)
    public = pair.public
    context = {
        Role.IDENTITY: b"tbidnty1",
        Role.NEWSROOM: b"tbnwsrm1",
        Role.JOURNALIST: b"tbjrnls1",
        Role.RECOVERY: b"tbrecov1",
        Role.SOURCE: b"tbsourc1",
        Role.METADATA: b"tbmetad1",
    }[role]
    ed_id = {Role.IDENTITY: 1, Role.JOURNALIST: 2}.get(role)
    return {
        "kind": "keypair",
        "name": name,
        "role": int(role),
        "seed": seed.hex(),
        "x25519_secret": pair.x25519_private.hex(),
        "x25519_public": public.x25519.hex(),
        "ed25519_seed": None if ed_id is None else derive(seed, ed_id, context).hex(),
        "ed25519_public": _hex_or_none(public.ed25519),
        "pubkeys": public.pubkeys_bytes.hex(),
        "fingerprint_hash": tagged_hash(FINGERPRINT_TAG, public.pubkeys_bytes).hex(),
        "key_id": public.key_id.hex(),
        "fingerprint": public.fingerprint,
        "short_id": public.short_id,
    }


def _identity_json(fields: dict[str, object]) -> str:
    return json.dumps(fields, indent=2) + "\n"


def keys_vectors() -> Case:
    valid: list[Case] = []
    for role in Role:
        for n in (1, 2):
            valid.append(
                keypair_case(f"{role.name.lower()} {n}", role, det(f"keys/{role.name}/{n}"))
            )
    identity = keypair_from_seed(Role.IDENTITY, det("keys/IDENTITY/1")).public
    assert identity.ed25519 is not None
    text = identity_file_text(identity)
    valid.append(
        {
            "kind": "identity_file",
            "name": "identity.json",
            "text": text,
            "x25519_public": identity.x25519.hex(),
            "ed25519_public": identity.ed25519.hex(),
            "fingerprint": identity.fingerprint,
        }
    )
    good: dict[str, object] = json.loads(text)
    other = keypair_from_seed(Role.IDENTITY, det("keys/IDENTITY/2")).public
    assert other.ed25519 is not None

    def variant(**changes: object) -> str:
        fields = dict(good)
        for name, value in changes.items():
            if value is None:
                del fields[name]
            else:
                fields[name] = value
        return _identity_json(fields)

    bad: list[tuple[str, str, str]] = [
        ("not JSON", "{", "identity_file.json"),
        ("JSON array", "[]\n", "identity_file.json"),
        (
            "duplicate field",
            text.replace('"version": 1,', '"version": 1,\n  "version": 1,'),
            "identity_file.json",
        ),
        ("missing fingerprint", variant(fingerprint=None), "identity_file.fields"),
        ("extra field", variant(comment="hello"), "identity_file.fields"),
        ("recovery format", variant(format="tipbox-recovery-public-key"), "identity_file.format"),
        ("version 2", variant(version=2), "identity_file.version"),
        ("version true", variant(version=True), "identity_file.version"),
        ("version string", variant(version="1"), "identity_file.version"),
        ("uppercase hex", variant(ed25519=identity.ed25519.hex().upper()), "identity_file.ed25519"),
        ("short x25519", variant(x25519=identity.x25519.hex()[:62]), "identity_file.x25519"),
        ("zero ed25519", variant(ed25519="00" * 32), "identity_file.ed25519"),
        ("another key's fingerprint", variant(fingerprint=other.fingerprint), "identity_file.fingerprint"),
        ("another x25519 key", variant(x25519=other.x25519.hex()), "identity_file.fingerprint"),
        ("another ed25519 key", variant(ed25519=other.ed25519.hex()), "identity_file.fingerprint"),
        (
            "fingerprint without spaces",
            variant(fingerprint=identity.fingerprint.replace(" ", "")),
            "identity_file.fingerprint",
        ),
    ]  # fmt: skip
    invalid = [
        {"kind": "identity_file", "name": name, "text": t, "check": check} for name, t, check in bad
    ]
    return {
        "description": (
            "Key pairs from seeds (section 2), key ids and fingerprints (section 3), and the "
            "identity public key file (section 11). ed25519_* are null for roles without a "
            "signing key."
        ),
        "valid": valid,
        "invalid": invalid,
    }


# --------------------------------------------------------------------- directory.json


def identity_pair() -> KeyPair:
    return keypair_from_seed(Role.IDENTITY, det("directory/identity"))


def newsroom_pair(n: int) -> KeyPair:
    return keypair_from_seed(Role.NEWSROOM, det(f"directory/newsroom/{n}"))


def journalist_pair() -> KeyPair:
    return keypair_from_seed(Role.JOURNALIST, det("directory/journalist"))


def recovery_pair() -> KeyPair:
    return recovery.recovery_keypair(" ".join(det_words("directory/recovery", 20)))


JOURNALIST_ID = det("directory/journalist-id", 16)


def raw_entry(
    role: int,
    status: int,
    x25519: bytes,
    ed25519: bytes,
    serial: int,
    subject_id: bytes = NO_SUBJECT,
    key_id: bytes | None = None,
    header: bytes = b"tipbox.directory.v1\x00",
) -> bytes:
    """Encode an entry field by field, with no checks, for the invalid cases."""
    if key_id is None:
        key_id = tagged_hash(FINGERPRINT_TAG, bytes([role]) + x25519 + ed25519)[:16]
    return (
        header
        + bytes([role, status])
        + key_id
        + subject_id
        + x25519
        + ed25519
        + struct.pack(">Q", serial)
    )


def entry_case(name: str, entry_bytes: bytes, signature: bytes, entry: Entry) -> Case:
    return {
        "name": name,
        "entry": entry_bytes.hex(),
        "signature": signature.hex(),
        "role": int(entry.role),
        "status": int(entry.status),
        "key_id": entry.key_id.hex(),
        "subject_id": entry.subject_id.hex(),
        "x25519": entry.x25519.hex(),
        "ed25519": _hex_or_none(entry.ed25519),
        "serial": entry.serial,
    }


def directory_vectors() -> Case:
    ident = identity_pair()
    assert ident.public.ed25519 is not None
    jpair = journalist_pair()
    rpair = recovery_pair()
    entries: list[tuple[str, Entry]] = [
        ("identity (self-signed)", Entry.for_keys(ident.public, Status.ACTIVE, 1)),
        ("newsroom current", Entry.for_keys(newsroom_pair(1).public, Status.CURRENT, 2)),
        ("newsroom retiring", Entry.for_keys(newsroom_pair(2).public, Status.RETIRING, 3)),
        ("newsroom retired", Entry.for_keys(newsroom_pair(3).public, Status.RETIRED, 4)),
        ("journalist", Entry.for_keys(jpair.public, Status.ACTIVE, 5, JOURNALIST_ID)),
        ("recovery", Entry.for_keys(rpair.public, Status.ACTIVE, 6)),
        ("largest serial", Entry.for_keys(newsroom_pair(4).public, Status.CURRENT, 2**64 - 1)),
    ]
    valid = []
    for name, entry in entries:
        entry_bytes, signature = sign_entry(ident, entry)
        valid.append(entry_case(name, entry_bytes, signature, entry))
    self_bytes, self_sig = sign_identity_entry(ident, 1)
    assert self_bytes.hex() == valid[0]["entry"]
    assert self_sig.hex() == valid[0]["signature"]

    zeros = bytes(32)
    nx = newsroom_pair(1).public.x25519
    jx, je = jpair.public.x25519, jpair.public.ed25519
    assert je is not None
    good = raw_entry(2, 1, nx, zeros, 10)
    other_identity = keypair_from_seed(Role.IDENTITY, det("directory/other-identity"))
    assert other_identity.public.ed25519 is not None
    flipped_id = bytearray(good)
    flipped_id[22] ^= 0x01

    signed: list[tuple[str, bytes, str]] = [
        ("125 bytes", good[:-1], "entry.length"),
        ("127 bytes", good + b"\x00", "entry.length"),
        ("empty", b"", "entry.length"),
        ("other prefix", raw_entry(2, 1, nx, zeros, 10, header=b"tipbox.directory.v2\x00"), "entry.prefix"),
        ("separator 0x01", raw_entry(2, 1, nx, zeros, 10, header=b"tipbox.directory.v1\x01"), "entry.separator"),
        ("role 0", raw_entry(0, 4, nx, zeros, 10), "entry.role"),
        ("role 5 (source)", raw_entry(5, 4, nx, zeros, 10), "entry.role"),
        ("role 255", raw_entry(255, 4, nx, zeros, 10), "entry.role"),
        ("newsroom status 0", raw_entry(2, 0, nx, zeros, 10), "entry.status"),
        ("newsroom status 4 (active)", raw_entry(2, 4, nx, zeros, 10), "entry.status"),
        ("newsroom status 5", raw_entry(2, 5, nx, zeros, 10), "entry.status"),
        ("journalist status 1 (current)", raw_entry(3, 1, jx, je, 10, JOURNALIST_ID), "entry.status"),
        ("recovery status 3 (retired)", raw_entry(4, 3, rpair.x25519_public, zeros, 10), "entry.status"),
        ("newsroom with an Ed25519 key", raw_entry(2, 1, nx, je, 10), "entry.ed25519"),
        ("recovery with an Ed25519 key", raw_entry(4, 4, rpair.x25519_public, je, 10), "entry.ed25519"),
        ("journalist without an Ed25519 key", raw_entry(3, 4, jx, zeros, 10, JOURNALIST_ID), "entry.ed25519"),
        ("newsroom with a subject", raw_entry(2, 1, nx, zeros, 10, JOURNALIST_ID), "entry.subject_id"),
        ("recovery with a subject", raw_entry(4, 4, rpair.x25519_public, zeros, 10, JOURNALIST_ID), "entry.subject_id"),
        ("key id of other keys", bytes(flipped_id), "entry.key_id"),
        ("key id of another role", raw_entry(2, 1, nx, zeros, 10, key_id=tagged_hash(FINGERPRINT_TAG, b"\x04" + nx + zeros)[:16]), "entry.key_id"),
        ("identity entry for another identity key", raw_entry(1, 4, other_identity.x25519_public, other_identity.public.ed25519, 10), "entry.identity"),
    ]  # fmt: skip
    invalid: list[Case] = [
        {
            "name": name,
            "entry": data.hex(),
            "signature": ident.sign(data).hex(),
            "check": check,
        }
        for name, data, check in signed
    ]
    good_sig = ident.sign(good)
    bad_sig = bytearray(good_sig)
    bad_sig[40] ^= 0x80
    rolled = raw_entry(2, 1, nx, zeros, 9)
    unsigned: list[tuple[str, bytes, bytes, str]] = [
        ("signed by another key", good, other_identity.sign(good), "entry.signature"),
        ("signature of another entry", rolled, good_sig, "entry.signature"),
        ("flipped signature bit", good, bytes(bad_sig), "entry.signature"),
        ("63-byte signature", good, good_sig[:63], "entry.signature"),
        ("zero signature", good, bytes(64), "entry.signature"),
    ]
    invalid += [
        {"name": name, "entry": data.hex(), "signature": sig.hex(), "check": check}
        for name, data, sig, check in unsigned
    ]
    return {
        "description": (
            "Directory entries (section 4), each verified against identity_ed25519_public. "
            "Invalid entries are signed by the identity key unless the check is "
            "entry.signature, and each has exactly one fault."
        ),
        "identity_seed": det("directory/identity").hex(),
        "identity_ed25519_public": ident.public.ed25519.hex(),
        "valid": valid,
        "invalid": invalid,
    }


# ------------------------------------------------------------------------ grants.json


def grants_vectors() -> Case:
    ident = identity_pair()
    assert ident.public.ed25519 is not None
    jpair = journalist_pair()
    rpair = recovery_pair()
    n1, n2 = newsroom_pair(1), newsroom_pair(2)
    seeds = {
        "identity": (Role.IDENTITY, det("directory/identity"), ident),
        "newsroom 1": (Role.NEWSROOM, det("directory/newsroom/1"), n1),
        "newsroom 2": (Role.NEWSROOM, det("directory/newsroom/2"), n2),
    }
    signed_entries: dict[str, tuple[bytes, bytes]] = {
        "identity": sign_identity_entry(ident, 1),
        "newsroom 1": sign_entry(ident, Entry.for_keys(n1.public, Status.CURRENT, 2)),
        "newsroom 2": sign_entry(ident, Entry.for_keys(n2.public, Status.RETIRING, 3)),
    }
    grantees = {
        "journalist": (Role.JOURNALIST, det("directory/journalist"), jpair),
        "recovery": (Role.RECOVERY, recovery.recovery_seed(" ".join(det_words("directory/recovery", 20))), rpair),
    }  # fmt: skip
    grantee_entries = {
        "journalist": Entry.for_keys(jpair.public, Status.ACTIVE, 5, JOURNALIST_ID),
        "recovery": Entry.for_keys(rpair.public, Status.ACTIVE, 6),
    }

    def case(
        name: str, grantee: str, granted: str, grant: bytes, *, expect: str | None = None
    ) -> Case:
        g_role, g_seed, _ = grantees[grantee]
        role, _, pair = seeds[expect or granted]
        entry_bytes, signature = signed_entries[expect or granted]
        return {
            "name": name,
            "grantee_role": int(g_role),
            "grantee_seed": g_seed.hex(),
            "expected_role": int(role),
            "expected_key_id": pair.key_id.hex(),
            "entry": entry_bytes.hex(),
            "signature": signature.hex(),
            "grant": grant.hex(),
        }

    valid: list[Case] = []
    for grantee in grantees:
        for granted in seeds:
            if grantee == "journalist" and granted == "identity":
                name = "identity seed to an admin journalist"
            else:
                name = f"{granted} seed to {grantee}"
            role, seed, pair = seeds[granted]
            grant = make_grant(role, pair.key_id, seed, grantee_entries[grantee])
            valid.append(case(name, grantee, granted, grant) | {"seed": seed.hex()})

    jx = jpair.x25519_public
    jid, rid = jpair.key_id, rpair.key_id
    n1_seed, n2_seed = det("directory/newsroom/1"), det("directory/newsroom/2")
    good_plain = grant_plaintext(Role.NEWSROOM, n1.key_id, jid, n1_seed)
    good_grant = make_grant(Role.NEWSROOM, n1.key_id, n1_seed, grantee_entries["journalist"])
    flipped = bytearray(good_grant)
    flipped[60] ^= 0x04

    def sealed(plaintext: bytes) -> bytes:
        return bytes(crypto_box_seal(plaintext, jx))

    bad: list[tuple[str, str, str, bytes, str | None, str]] = [
        ("sealed to another grantee", "recovery", "newsroom 1", good_grant, None, "grant.open"),
        ("flipped ciphertext bit", "journalist", "newsroom 1", bytes(flipped), None, "grant.open"),
        ("truncated", "journalist", "newsroom 1", good_grant[:-1], None, "grant.open"),
        ("80-byte plaintext", "journalist", "newsroom 1", sealed(good_plain[:-1]), None, "grant.length"),
        ("82-byte plaintext", "journalist", "newsroom 1", sealed(good_plain + b"\x00"), None, "grant.length"),
        ("other prefix", "journalist", "newsroom 1", sealed(b"tipbox.grant.v2" + good_plain[15:]), None, "grant.prefix"),
        ("separator 0x01", "journalist", "newsroom 1", sealed(good_plain[:15] + b"\x01" + good_plain[16:]), None, "grant.separator"),
        ("identity grant opened as a newsroom key", "journalist", "identity", sealed(grant_plaintext(Role.IDENTITY, n1.key_id, jid, n1_seed)), "newsroom 1", "grant.role"),
        ("grant for another newsroom key", "journalist", "newsroom 1", good_grant, "newsroom 2", "grant.key_id"),
        ("names another grantee", "journalist", "newsroom 1", sealed(grant_plaintext(Role.NEWSROOM, n1.key_id, rid, n1_seed)), None, "grant.grantee_id"),
        ("seed of another key", "journalist", "newsroom 1", sealed(grant_plaintext(Role.NEWSROOM, n1.key_id, jid, n2_seed)), None, "grant.seed"),
    ]  # fmt: skip
    invalid: list[Case] = []
    for name, grantee, granted, grant, expect, check in bad:
        invalid.append(case(name, grantee, granted, grant, expect=expect) | {"check": check})
    # The directory case pairs a valid grant with the entry of another key.
    directory_case = case("directory entry of another key", "journalist", "newsroom 1", good_grant)
    entry_bytes, signature = signed_entries["newsroom 2"]
    directory_case |= {"entry": entry_bytes.hex(), "signature": signature.hex()}
    invalid.append(directory_case | {"check": "grant.directory"})
    return {
        "description": (
            "Grants (section 5): reader vectors, since crypto_box_seal is randomised. The "
            "grantee key pair comes from grantee_seed (section 2, role grantee_role); entry "
            "and signature are the granted key's directory entry, verified against "
            "identity_ed25519_public; expected_role and expected_key_id are what the reader "
            "asks for."
        ),
        "identity_ed25519_public": ident.public.ed25519.hex(),
        "valid": valid,
        "invalid": invalid,
    }


# --------------------------------------------------------------------- codenames.json


def codenames_vectors() -> Case:
    codename = det_words("codenames/1", 7)
    plain = " ".join(codename)
    # Look-alike spellings of a fixed codename, so each case shows one normalisation step.
    demo = "abacus cope taco sheep exact hazy jumbo"
    cyr = str.maketrans("aceopxyABCEHKMOPTX", "асеорхуАВСЕНКМОРТХ")  # noqa: RUF001
    normalise_cases = [
        ("already normal", plain),
        ("upper case", plain.upper()),
        ("Cyrillic look-alikes", demo.translate(cyr)),
        ("Cyrillic look-alikes, upper case", demo.upper().translate(cyr)),
        ("Kazakh and other look-alikes", "\u04ae\u04bb\u0456\u0458\u0455\u0501\u051b\u051d"),
        ("fullwidth letters", "".join(chr(ord(c) + 0xFEE0) if c != " " else "\u3000" for c in demo)),
        ("zero-width characters", "\u200b" + demo.replace("a", "a\u200b").replace(" ", " \u2060") + "\ufeff"),
        ("soft hyphens", demo.replace("o", "o\u00ad")),
        ("odd spacing", "  " + demo.replace(" ", "\t \u00a0\n ") + " \r\n"),
        ("separators", demo.replace(" ", ", ").replace("taco", "taco;").replace("hazy", "hazy/_.")),
        ("fullwidth separators", demo.replace(" ", "\uff0c")),
        ("hyphenated words kept", "drop-down felt-tip t-shirt yo-yo"),
        ("empty", " \u200b "),
    ]  # fmt: skip
    valid: list[Case] = [
        {"kind": "normalise", "name": name, "typed": typed, "normalised": codenames.normalise(typed)}
        for name, typed in normalise_cases
    ]  # fmt: skip
    derive_inputs = [
        ("production cost 1", plain, det("codenames/salt/1", 16), CODENAME_KDF),
        ("production cost 2", " ".join(det_words("codenames/2", 7)), det("codenames/salt/2", 16), CODENAME_KDF),
        ("test cost", plain, det("codenames/salt/1", 16), TEST_KDF),
        ("test cost, other salt", plain, det("codenames/salt/3", 16), TEST_KDF),
    ]  # fmt: skip
    for name, normalised, salt, cost in derive_inputs:
        keys = codenames.derive_source_keys(normalised, salt, cost)
        stretched = codenames.argon2id(normalised, salt, cost)
        valid.append(
            {
                "kind": "derive",
                "name": name,
                "normalised": normalised,
                "salt": salt.hex(),
                **_cost(cost),
                "argon2id": stretched.hex(),
                "lookup": derive(stretched, 1, b"tbcoden1").hex(),
                "lookup_hash": keys.lookup_hash.hex(),
                "seed": keys.seed.hex(),
                "x25519_secret": keys.x25519_private.hex(),
                "x25519_public": keys.x25519_public.hex(),
            }
        )
    six = " ".join(codename[:6])
    invalid_typed = [
        ("six words", six, "codename.words"),
        ("eight words", plain + " " + codename[0], "codename.words"),
        ("empty", "", "codename.words"),
        ("only separators", " ,;/ _.", "codename.words"),
        ("unknown word", six + " tipbox", "codename.unknown_word"),
        ("Cyrillic letter without a look-alike", six + " д" + codename[6], "codename.unknown_word"),
        ("hyphen split", six + " t shirt", "codename.words"),
        ("too long", plain + " " * 5000, "codename.length"),
    ]
    invalid: list[Case] = [
        {"kind": "parse", "name": name, "typed": typed, "check": check}
        for name, typed, check in invalid_typed
    ]
    return {
        "description": (
            "Codenames (section 6): normalisation of typed input, and derivation of the "
            "lookup hash and source key pair from the normalised codename. Invalid inputs "
            "are refused before Argon2id."
        ),
        "valid": valid,
        "invalid": invalid,
    }


# -------------------------------------------------------------------- journalist.json


def journalist_vectors() -> Case:
    passphrase = " ".join(det_words("journalist/passphrase", 7))
    salt = det("journalist/salt", 16)
    jid = det("journalist/id", 16)
    seed = det("journalist/seed")
    public = keypair_from_seed(Role.JOURNALIST, seed).public
    assert public.ed25519 is not None
    valid: list[Case] = []
    inputs = [
        ("production cost", passphrase, salt, JOURNALIST_KDF),
        ("test cost", passphrase, salt, TEST_KDF),
        ("test cost, typed in capitals with a zero-width space", passphrase.upper().replace(" ", " \u200b"), salt, TEST_KDF),
        ("test cost, eight words", " ".join(det_words("journalist/passphrase8", 8)), salt, TEST_KDF),
        ("test cost, two passes", passphrase, det("journalist/salt2", 16), Argon2Cost(2, 16 * 1024 * 1024)),
    ]  # fmt: skip
    for name, typed, s, cost in inputs:
        keys = journalist.derive_passphrase_keys(typed, s, cost)
        valid.append(
            {
                "kind": "passphrase",
                "name": name,
                "passphrase": typed,
                "normalised": codenames.normalise(typed),
                "salt": s.hex(),
                **_cost(cost),
                "verifier": keys.verifier.hex(),
                "kek": keys.kek.hex(),
                "totp_key": keys.totp_key.hex(),
            }
        )
    keys = journalist.derive_passphrase_keys(passphrase, salt, TEST_KDF)
    nonce = det("journalist/nonce", 24)
    box = journalist.box_seed(keys.kek, jid, public, seed, nonce=nonce)
    seed_box_case = {
        "kind": "seed_box",
        "kek": keys.kek.hex(),
        "journalist_id": jid.hex(),
        "x25519_public": public.x25519.hex(),
        "ed25519_public": public.ed25519.hex(),
    }
    valid.append(
        seed_box_case
        | {"name": "seed box", "seed": seed.hex(), "nonce": nonce.hex(), "box": box.hex()}
    )
    secret = det("journalist/totp", 20)
    totp_nonce = det("journalist/totp-nonce", 24)
    totp_box = journalist.box_totp(keys.totp_key, jid, secret, nonce=totp_nonce)
    totp_case = {"kind": "totp_box", "totp_key": keys.totp_key.hex(), "journalist_id": jid.hex()}
    valid.append(
        totp_case
        | {
            "name": "TOTP box",
            "secret": secret.hex(),
            "nonce": totp_nonce.hex(),
            "box": totp_box.hex(),
        }
    )
    unlock_case = {
        "kind": "unlock",
        "salt": salt.hex(),
        **_cost(TEST_KDF),
        "verifier": keys.verifier.hex(),
        "seed_box": box.hex(),
        "journalist_id": jid.hex(),
        "x25519_public": public.x25519.hex(),
        "ed25519_public": public.ed25519.hex(),
    }
    valid.append(
        unlock_case | {"name": "unlock", "passphrase": passphrase.title(), "seed": seed.hex()}
    )

    # Invalid seed boxes: a box of another seed under the same binding, and tampering.
    other_seed = det("journalist/other-seed")
    ad = journalist.seed_box_ad(jid, public)
    wrong_seed_box = nonce + bytes(aead(other_seed, ad, nonce, keys.kek))
    flipped = bytearray(box)
    flipped[30] ^= 0x01
    other_jid = det("journalist/other-id", 16)
    invalid: list[Case] = [
        seed_box_case | {"name": "71 bytes", "box": box[:-1].hex(), "check": "seed_box.length"},
        seed_box_case | {"name": "73 bytes", "box": (box + b"\x00").hex(), "check": "seed_box.length"},
        seed_box_case | {"name": "flipped bit", "box": bytes(flipped).hex(), "check": "seed_box.open"},
        seed_box_case | {"name": "another journalist id", "journalist_id": other_jid.hex(), "box": box.hex(), "check": "seed_box.open"},
        seed_box_case | {"name": "another key", "kek": keys.totp_key.hex(), "box": box.hex(), "check": "seed_box.open"},
        seed_box_case | {"name": "seed of other public keys", "box": wrong_seed_box.hex(), "check": "seed_box.seed"},
        totp_case | {"name": "TOTP box of another journalist", "journalist_id": other_jid.hex(), "box": totp_box.hex(), "check": "totp_box.open"},
        totp_case | {"name": "TOTP box without its secret", "box": totp_box[:40].hex(), "check": "totp_box.length"},
        unlock_case | {"name": "wrong passphrase", "passphrase": " ".join(det_words("journalist/wrong", 7)), "check": "passphrase.verifier"},
        unlock_case | {"name": "six words", "passphrase": " ".join(passphrase.split()[:6]), "check": "passphrase.words"},
        unlock_case | {"name": "unknown word", "passphrase": passphrase + " tipbox", "check": "passphrase.unknown_word"},
    ]  # fmt: skip
    return {
        "description": (
            "Journalist keys (section 7): passphrase derivations, seed and TOTP boxes with "
            "fixed nonces (writers draw random ones), and unlocking a stored record."
        ),
        "valid": valid,
        "invalid": invalid,
    }


# ---------------------------------------------------------------------- recovery.json


def recovery_vectors() -> Case:
    secret_words = det_words("recovery/secret", 20)
    secret = " ".join(secret_words)
    typed = [
        ("as written", secret),
        ("in capitals, one per line", "\n".join(w.upper() for w in secret_words)),
        ("separated by commas", ", ".join(secret_words)),
    ]
    valid: list[Case] = []
    for name, text in typed:
        pair = recovery.recovery_keypair(text)
        valid.append(
            {
                "kind": "secret",
                "name": name,
                "typed": text,
                "normalised": recovery.parse_recovery_secret(text),
                "seed": recovery.recovery_seed(text).hex(),
                "x25519_secret": pair.x25519_private.hex(),
                "x25519_public": pair.x25519_public.hex(),
                "key_id": pair.key_id.hex(),
                "fingerprint": pair.public.fingerprint,
            }
        )
    public = recovery.recovery_keypair(secret).public
    text = recovery.recovery_public_file_text(public)
    valid.append(
        {
            "kind": "public_file",
            "name": "public key file",
            "text": text,
            "x25519_public": public.x25519.hex(),
            "fingerprint": public.fingerprint,
        }
    )
    other = recovery.recovery_keypair(" ".join(det_words("recovery/other", 20))).public
    good = json.loads(text)

    def variant(**changes: object) -> str:
        fields = dict(good)
        for name, value in changes.items():
            if value is None:
                del fields[name]
            else:
                fields[name] = value
        return json.dumps(fields, indent=2) + "\n"

    bad_files = [
        ("not JSON", "tipbox", "recovery_file.json"),
        ("JSON string", '"x"', "recovery_file.json"),
        ("missing x25519", variant(x25519=None), "recovery_file.fields"),
        ("identity format", variant(format="tipbox-identity-public-key"), "recovery_file.format"),
        ("version 0", variant(version=0), "recovery_file.version"),
        ("x25519 not hex", variant(x25519="zz" * 32), "recovery_file.x25519"),
        ("another key's fingerprint", variant(fingerprint=other.fingerprint), "recovery_file.fingerprint"),
        ("another key", variant(x25519=other.x25519.hex()), "recovery_file.fingerprint"),
        ("lowercase fingerprint", variant(fingerprint=public.fingerprint.lower()), "recovery_file.fingerprint"),
    ]  # fmt: skip
    invalid: list[Case] = [
        {"kind": "public_file", "name": name, "text": t, "check": check}
        for name, t, check in bad_files
    ]
    invalid += [
        {"kind": "secret", "name": "19 words", "typed": " ".join(secret_words[:19]), "check": "recovery.words"},
        {"kind": "secret", "name": "21 words", "typed": secret + " " + secret_words[0], "check": "recovery.words"},
        {"kind": "secret", "name": "unknown word", "typed": " ".join(secret_words[:19]) + " tipbox", "check": "recovery.unknown_word"},
    ]  # fmt: skip
    return {
        "description": (
            "Recovery key (section 10): secret words to seed and key pair, and the public key file."
        ),
        "valid": valid,
        "invalid": invalid,
    }


BUILDERS: dict[str, Callable[[], Case]] = {
    "kdf.json": kdf_vectors,
    "keys.json": keys_vectors,
    "directory.json": directory_vectors,
    "grants.json": grants_vectors,
    "codenames.json": codenames_vectors,
    "journalist.json": journalist_vectors,
    "recovery.json": recovery_vectors,
}


def dump(data: Case) -> str:
    """The exact text a vector file holds."""
    return json.dumps(data, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.add_argument("--check", action="store_true", help="compare deterministic files")
    args = parser.parse_args(argv)
    status = 0
    for name, build in BUILDERS.items():
        path = VECTOR_DIR / name
        if args.check:
            if name in DETERMINISTIC and path.read_text(encoding="utf-8") != dump(build()):
                print(f"{name}: differs from the generator")
                status = 1
            continue
        if path.exists() and not args.force:
            print(f"{name}: exists, kept (use --force to overwrite)")
            continue
        path.write_text(dump(build()), encoding="utf-8")
        print(f"{name}: written")
    return status


if __name__ == "__main__":
    sys.exit(main())
