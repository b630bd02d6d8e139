"""Key pairs from seeds, key ids, fingerprints, identity files (envelope.md 2, 3, 11)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from nacl.bindings import crypto_scalarmult_base
from nacl.signing import SigningKey, VerifyKey

from tipbox.crypto.errors import Rejected
from tipbox.crypto.kdf import (
    CTX_IDENTITY,
    CTX_JOURNALIST,
    CTX_NEWSROOM,
    CTX_RECOVERY,
    CTX_SOURCE,
    derive,
    tagged_hash,
)
from tipbox.crypto.keys import (
    IDENTITY_FINGERPRINT,
    IDENTITY_JSON,
    PublicKeys,
    Role,
    format_fingerprint,
    has_signing_key,
    identity_file_text,
    keypair_from_seed,
    new_seed,
    parse_identity_file,
    read_identity_file,
    write_identity_files,
)

SEED = bytes(range(32))


def check_of(exc: pytest.ExceptionInfo[Rejected]) -> str:
    return str(exc.value).split(":", 1)[0]


def test_role_values_are_the_wire_bytes() -> None:
    assert [(r.name, r.value) for r in Role] == [
        ("IDENTITY", 1),
        ("NEWSROOM", 2),
        ("JOURNALIST", 3),
        ("RECOVERY", 4),
        ("SOURCE", 5),
        ("METADATA", 6),
    ]


def test_new_seed_is_random_32_bytes() -> None:
    seeds = {new_seed() for _ in range(16)}
    assert len(seeds) == 16
    assert all(len(s) == 32 for s in seeds)


@pytest.mark.parametrize(
    ("role", "context", "x_id", "ed_id"),
    [
        (Role.IDENTITY, CTX_IDENTITY, 2, 1),
        (Role.NEWSROOM, CTX_NEWSROOM, 1, None),
        (Role.JOURNALIST, CTX_JOURNALIST, 1, 2),
        (Role.RECOVERY, CTX_RECOVERY, 1, None),
        (Role.SOURCE, CTX_SOURCE, 1, None),
    ],
)
def test_keypair_follows_the_derivation_table(
    role: Role, context: bytes, x_id: int, ed_id: int | None
) -> None:
    pair = keypair_from_seed(role, SEED)
    assert pair.role == role
    assert pair.x25519_private == derive(SEED, x_id, context)
    assert pair.x25519_public == crypto_scalarmult_base(derive(SEED, x_id, context))
    if ed_id is None:
        assert pair.signing_key is None
        assert pair.public.ed25519 is None
        assert not has_signing_key(role)
    else:
        expected = SigningKey(derive(SEED, ed_id, context))
        assert pair.signing_key is not None
        assert bytes(pair.signing_key) == bytes(expected)
        assert pair.public.ed25519 == bytes(expected.verify_key)
        assert has_signing_key(role)


def test_same_seed_gives_unrelated_keys_per_role() -> None:
    publics = {keypair_from_seed(role, SEED).x25519_public for role in Role}
    assert len(publics) == len(Role)


def test_keypair_is_deterministic() -> None:
    a = keypair_from_seed(Role.JOURNALIST, SEED)
    b = keypair_from_seed(Role.JOURNALIST, SEED)
    assert a.public == b.public
    assert a.sign(b"m") == b.sign(b"m")


@pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
def test_seed_must_be_32_bytes(length: int) -> None:
    with pytest.raises(Rejected) as exc:
        keypair_from_seed(Role.NEWSROOM, bytes(length))
    assert check_of(exc) == "keys.seed"


def test_key_id_and_fingerprint_follow_section_3() -> None:
    public = keypair_from_seed(Role.NEWSROOM, SEED).public
    pubkeys = b"\x02" + public.x25519 + bytes(32)
    assert public.pubkeys_bytes == pubkeys
    fp = tagged_hash(b"tipbox.key-fingerprint.v1", pubkeys)
    assert fp == public.fingerprint_bytes
    assert public.key_id == fp[:16]
    digits = fp[:20].hex().upper()
    assert public.fingerprint == " ".join(digits[i : i + 4] for i in range(0, 40, 4))
    assert re.fullmatch(r"([0-9A-F]{4} ){9}[0-9A-F]{4}", public.fingerprint)
    assert public.short_id == digits[:8]
    assert format_fingerprint(fp) == public.fingerprint


def test_signing_role_fingerprint_covers_the_ed25519_key() -> None:
    public = keypair_from_seed(Role.JOURNALIST, SEED).public
    assert public.ed25519 is not None
    assert public.pubkeys_bytes == b"\x03" + public.x25519 + public.ed25519
    other = PublicKeys(Role.JOURNALIST, public.x25519, bytes(31) + b"\x01")
    assert other.key_id != public.key_id


def test_role_is_part_of_the_key_id() -> None:
    x = keypair_from_seed(Role.NEWSROOM, SEED).x25519_public
    assert PublicKeys(Role.NEWSROOM, x).key_id != PublicKeys(Role.RECOVERY, x).key_id


@pytest.mark.parametrize(
    ("role", "x25519", "ed25519"),
    [
        (Role.NEWSROOM, bytes(31), None),
        (Role.NEWSROOM, bytes(32), bytes(32)),
        (Role.RECOVERY, bytes(32), b"\x01" * 32),
        (Role.JOURNALIST, bytes(32), None),
        (Role.IDENTITY, bytes(32), bytes(32)),
        (Role.IDENTITY, bytes(32), b"\x01" * 31),
    ],
)
def test_public_keys_reject_malformed_keys(
    role: Role, x25519: bytes, ed25519: bytes | None
) -> None:
    with pytest.raises(Rejected):
        PublicKeys(role, x25519, ed25519)


def test_public_keys_reject_a_bare_int_role() -> None:
    with pytest.raises(Rejected):
        PublicKeys(2, bytes(32))  # type: ignore[arg-type]


def test_keypair_repr_and_comparison_hide_secrets() -> None:
    pair = keypair_from_seed(Role.IDENTITY, SEED)
    assert pair.x25519_private.hex() not in repr(pair)
    assert pair.signing_key is not None
    assert bytes(pair.signing_key).hex() not in repr(pair)
    # eq=False: key pairs compare by identity, never by secret bytes.
    assert pair != keypair_from_seed(Role.IDENTITY, SEED)


def test_sign_verifies_and_non_signing_roles_refuse() -> None:
    pair = keypair_from_seed(Role.JOURNALIST, SEED)
    assert pair.public.ed25519 is not None
    VerifyKey(pair.public.ed25519).verify(b"hello", pair.sign(b"hello"))
    with pytest.raises(Rejected):
        keypair_from_seed(Role.NEWSROOM, SEED).sign(b"hello")


# --------------------------------------------------------------- identity files (11)


def identity_public() -> PublicKeys:
    return keypair_from_seed(Role.IDENTITY, SEED).public


def test_identity_files_round_trip(tmp_path: Path) -> None:
    public = identity_public()
    keys_dir = tmp_path / "keys"
    write_identity_files(keys_dir, public)
    assert read_identity_file(keys_dir) == public
    assert (keys_dir / IDENTITY_FINGERPRINT).read_text() == public.fingerprint + "\n"
    data = json.loads((keys_dir / IDENTITY_JSON).read_text())
    assert list(data) == ["format", "version", "ed25519", "x25519", "fingerprint"]
    assert data["format"] == "tipbox-identity-public-key"
    assert data["version"] == 1
    assert sorted(p.name for p in keys_dir.iterdir()) == [IDENTITY_FINGERPRINT, IDENTITY_JSON]
    assert (keys_dir / IDENTITY_JSON).stat().st_mode & 0o777 == 0o644


def test_identity_files_are_replaced_in_place(tmp_path: Path) -> None:
    write_identity_files(tmp_path, identity_public())
    other = keypair_from_seed(Role.IDENTITY, bytes(32)).public
    write_identity_files(tmp_path, other)
    assert read_identity_file(tmp_path) == other
    assert len(list(tmp_path.iterdir())) == 2


def test_identity_file_with_a_swapped_key_is_rejected(tmp_path: Path) -> None:
    public = identity_public()
    write_identity_files(tmp_path, public)
    other = keypair_from_seed(Role.IDENTITY, bytes(32)).public
    assert other.ed25519 is not None
    path = tmp_path / IDENTITY_JSON
    data = json.loads(path.read_text())
    data["ed25519"] = other.ed25519.hex()
    path.write_text(json.dumps(data))
    with pytest.raises(Rejected) as exc:
        read_identity_file(tmp_path)
    assert check_of(exc) == "identity_file.fingerprint"


def test_identity_fingerprint_file_must_agree(tmp_path: Path) -> None:
    write_identity_files(tmp_path, identity_public())
    other = keypair_from_seed(Role.IDENTITY, bytes(32)).public
    (tmp_path / IDENTITY_FINGERPRINT).write_text(other.fingerprint + "\n")
    with pytest.raises(Rejected) as exc:
        read_identity_file(tmp_path)
    assert check_of(exc) == "identity_file.fingerprint"


def test_identity_fingerprint_file_is_optional(tmp_path: Path) -> None:
    write_identity_files(tmp_path, identity_public())
    (tmp_path / IDENTITY_FINGERPRINT).unlink()
    assert read_identity_file(tmp_path) == identity_public()


def test_missing_identity_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError, match=r"identity\.json"):
        read_identity_file(tmp_path)


def test_identity_file_text_refuses_other_roles() -> None:
    with pytest.raises(Rejected):
        identity_file_text(keypair_from_seed(Role.JOURNALIST, SEED).public)


@pytest.mark.parametrize(
    ("text", "check"),
    [
        ("", "identity_file.json"),
        ("null", "identity_file.json"),
        ("x" * 20000, "identity_file.json"),
        ('{"format": "tipbox-identity-public-key"}', "identity_file.fields"),
    ],
)
def test_malformed_identity_files(text: str, check: str) -> None:
    with pytest.raises(Rejected) as exc:
        parse_identity_file(text)
    assert check_of(exc) == check


# ------------------------------------------------------------- the import boundary


PUBLIC_MODULES = (
    "tipbox.crypto",
    "tipbox.crypto.wordlist",
    "tipbox.crypto.keys",
    "tipbox.crypto.directory",
    "tipbox.crypto.codenames",
    "tipbox.crypto.passphrases",
)
PRIVATE_MODULES = {
    "tipbox.crypto.identity",
    "tipbox.crypto.grants",
    "tipbox.crypto.journalist",
    "tipbox.crypto.recovery",
}


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_public_modules_pull_in_no_private_module(module: str) -> None:
    # Invariant 2: what the source app may import must not load the private-key side.
    code = (
        f"import sys, {module}; "
        "print('\\n'.join(m for m in sys.modules if m.startswith('tipbox.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    loaded = set(done.stdout.split())
    assert module in loaded | {"tipbox.crypto"}
    assert not loaded & PRIVATE_MODULES
