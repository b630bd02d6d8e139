"""Every case of the key-side vector files against the implementation (envelope.md §13).

Files: kdf, keys, directory, grants, codenames, journalist and recovery ``.json`` in
``tests/vectors/``, made by ``tests/vectors/make_keys.py``. Valid cases must give exactly
the recorded outputs; invalid cases must be rejected by the check they name.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tipbox.config import Argon2Cost
from tipbox.crypto import codenames, journalist, recovery
from tipbox.crypto.directory import verify_entry
from tipbox.crypto.errors import Rejected
from tipbox.crypto.grants import open_grant
from tipbox.crypto.kdf import derive
from tipbox.crypto.keys import PublicKeys, Role, keypair_from_seed, parse_identity_file

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
Case = dict[str, Any]


def load(name: str) -> Case:
    data: Case = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    return data


def cases(name: str, group: str, kind: str | None = None) -> list[Any]:
    selected = [c for c in load(name).get(group, []) if kind is None or c.get("kind") == kind]
    assert selected, f"{name} has no {group} {kind or ''} cases"
    return [pytest.param(c, id=c["name"]) for c in selected]


def h(value: str) -> bytes:
    return bytes.fromhex(value)


def rejected_by(check: str) -> Any:
    """Expect ``Rejected`` whose message starts with the check name."""
    return pytest.raises(Rejected, match="^" + re.escape(check) + ":")


def test_vector_files_use_lowercase_hex() -> None:
    for name in ("kdf", "keys", "directory", "grants", "codenames", "journalist", "recovery"):
        data = load(f"{name}.json")
        assert set(data) >= {"description", "valid"}

        def walk(value: object) -> None:
            if isinstance(value, dict):
                for key, item in value.items():
                    if key in ("name", "text", "typed", "passphrase", "normalised"):
                        continue
                    walk(item)
            elif isinstance(value, list):
                for item in value:
                    walk(item)
            elif (
                isinstance(value, str)
                and len(value) >= 32
                and set(value) <= set("0123456789abcdefABCDEF")
            ):
                assert value == value.lower()

        walk(data)


# ---------------------------------------------------------------------------- kdf


@pytest.mark.parametrize("case", cases("kdf.json", "valid"))
def test_kdf(case: Case) -> None:
    out = derive(h(case["key"]), case["id"], case["context"].encode(), case["length"])
    assert out.hex() == case["output"]


# --------------------------------------------------------------------------- keys


@pytest.mark.parametrize("case", cases("keys.json", "valid", "keypair"))
def test_keypairs(case: Case) -> None:
    pair = keypair_from_seed(Role(case["role"]), h(case["seed"]))
    public = pair.public
    assert pair.x25519_private.hex() == case["x25519_secret"]
    assert public.x25519.hex() == case["x25519_public"]
    assert (public.ed25519.hex() if public.ed25519 else None) == case["ed25519_public"]
    if case["ed25519_seed"] is not None:
        assert pair.signing_key is not None
        assert bytes(pair.signing_key).hex() == case["ed25519_seed"]
    else:
        assert pair.signing_key is None
    assert public.pubkeys_bytes.hex() == case["pubkeys"]
    assert public.fingerprint_bytes.hex() == case["fingerprint_hash"]
    assert public.key_id.hex() == case["key_id"]
    assert public.fingerprint == case["fingerprint"]
    assert public.short_id == case["short_id"]


@pytest.mark.parametrize("case", cases("keys.json", "valid", "identity_file"))
def test_identity_file(case: Case) -> None:
    public = parse_identity_file(case["text"])
    assert public.x25519.hex() == case["x25519_public"]
    assert public.ed25519 is not None
    assert public.ed25519.hex() == case["ed25519_public"]
    assert public.fingerprint == case["fingerprint"]


@pytest.mark.parametrize("case", cases("keys.json", "invalid", "identity_file"))
def test_identity_file_invalid(case: Case) -> None:
    with rejected_by(case["check"]):
        parse_identity_file(case["text"])


# ---------------------------------------------------------------------- directory


@pytest.mark.parametrize("case", cases("directory.json", "valid"))
def test_directory(case: Case) -> None:
    identity = h(load("directory.json")["identity_ed25519_public"])
    entry = verify_entry(identity, h(case["entry"]), h(case["signature"]))
    assert int(entry.role) == case["role"]
    assert int(entry.status) == case["status"]
    assert entry.key_id.hex() == case["key_id"]
    assert entry.subject_id.hex() == case["subject_id"]
    assert entry.x25519.hex() == case["x25519"]
    assert (entry.ed25519.hex() if entry.ed25519 else None) == case["ed25519"]
    assert entry.serial == case["serial"]
    assert entry.to_bytes().hex() == case["entry"]


def test_directory_identity_seed_signs_the_entries() -> None:
    # Ed25519 is deterministic: re-signing each valid entry reproduces its signature.
    data = load("directory.json")
    identity = keypair_from_seed(Role.IDENTITY, h(data["identity_seed"]))
    assert identity.public.ed25519 is not None
    assert identity.public.ed25519.hex() == data["identity_ed25519_public"]
    for case in data["valid"]:
        assert identity.sign(h(case["entry"])).hex() == case["signature"]


@pytest.mark.parametrize("case", cases("directory.json", "invalid"))
def test_directory_invalid(case: Case) -> None:
    identity = h(load("directory.json")["identity_ed25519_public"])
    with rejected_by(case["check"]):
        verify_entry(identity, h(case["entry"]), h(case["signature"]))


# ------------------------------------------------------------------------- grants


def open_grant_case(case: Case) -> bytes:
    identity = h(load("grants.json")["identity_ed25519_public"])
    entry = verify_entry(identity, h(case["entry"]), h(case["signature"]))
    grantee = keypair_from_seed(Role(case["grantee_role"]), h(case["grantee_seed"]))
    return open_grant(
        h(case["grant"]),
        grantee,
        Role(case["expected_role"]),
        h(case["expected_key_id"]),
        entry,
    )


@pytest.mark.parametrize("case", cases("grants.json", "valid"))
def test_grants(case: Case) -> None:
    assert open_grant_case(case).hex() == case["seed"]


@pytest.mark.parametrize("case", cases("grants.json", "invalid"))
def test_grants_invalid(case: Case) -> None:
    with rejected_by(case["check"]):
        open_grant_case(case)


# ---------------------------------------------------------------------- codenames


@pytest.mark.parametrize("case", cases("codenames.json", "valid", "normalise"))
def test_codename_normalisation(case: Case) -> None:
    assert codenames.normalise(case["typed"]) == case["normalised"]


def test_codename_vectors_keep_to_two_production_cost_cases() -> None:
    derived = [c for c in load("codenames.json")["valid"] if c["kind"] == "derive"]
    production = [c for c in derived if (c["opslimit"], c["memlimit"]) == (3, 64 * 1024 * 1024)]
    assert len(production) == 2


@pytest.mark.parametrize("case", cases("codenames.json", "valid", "derive"))
def test_codename_derivation(case: Case) -> None:
    cost = Argon2Cost(opslimit=case["opslimit"], memlimit=case["memlimit"])
    salt = h(case["salt"])
    assert codenames.argon2id(case["normalised"], salt, cost).hex() == case["argon2id"]
    keys = codenames.derive_source_keys(case["normalised"], salt, cost)
    assert keys.lookup_hash.hex() == case["lookup_hash"]
    assert codenames.lookup_hash(h(case["lookup"])).hex() == case["lookup_hash"]
    assert keys.seed.hex() == case["seed"]
    assert keys.x25519_private.hex() == case["x25519_secret"]
    assert keys.x25519_public.hex() == case["x25519_public"]


@pytest.mark.parametrize("case", cases("codenames.json", "invalid", "parse"))
def test_codename_invalid(case: Case) -> None:
    with rejected_by(case["check"]):
        codenames.parse_codename(case["typed"])


# --------------------------------------------------------------------- journalist


def journalist_public(case: Case) -> PublicKeys:
    return PublicKeys(Role.JOURNALIST, h(case["x25519_public"]), h(case["ed25519_public"]))


@pytest.mark.parametrize("case", cases("journalist.json", "valid", "passphrase"))
def test_passphrase_keys(case: Case) -> None:
    cost = Argon2Cost(opslimit=case["opslimit"], memlimit=case["memlimit"])
    keys = journalist.derive_passphrase_keys(case["passphrase"], h(case["salt"]), cost)
    assert codenames.normalise(case["passphrase"]) == case["normalised"]
    assert keys.verifier.hex() == case["verifier"]
    assert keys.kek.hex() == case["kek"]
    assert keys.totp_key.hex() == case["totp_key"]


@pytest.mark.parametrize("case", cases("journalist.json", "valid", "seed_box"))
def test_seed_box(case: Case) -> None:
    args = (h(case["kek"]), h(case["journalist_id"]), journalist_public(case))
    box = journalist.box_seed(*args, h(case["seed"]), nonce=h(case["nonce"]))
    assert box.hex() == case["box"]
    assert journalist.open_seed(*args, h(case["box"])).hex() == case["seed"]


@pytest.mark.parametrize("case", cases("journalist.json", "valid", "totp_box"))
def test_totp_box(case: Case) -> None:
    args = (h(case["totp_key"]), h(case["journalist_id"]))
    box = journalist.box_totp(*args, h(case["secret"]), nonce=h(case["nonce"]))
    assert box.hex() == case["box"]
    assert journalist.open_totp(*args, h(case["box"])).hex() == case["secret"]


def unlock_case(case: Case) -> bytes:
    record = journalist.JournalistKeyRecord(
        salt=h(case["salt"]),
        opslimit=case["opslimit"],
        memlimit=case["memlimit"],
        verifier=h(case["verifier"]),
        seed_box=h(case["seed_box"]),
    )
    return journalist.unlock(
        record, h(case["journalist_id"]), journalist_public(case), case["passphrase"]
    )


@pytest.mark.parametrize("case", cases("journalist.json", "valid", "unlock"))
def test_unlock(case: Case) -> None:
    assert unlock_case(case).hex() == case["seed"]


@pytest.mark.parametrize("case", cases("journalist.json", "invalid"))
def test_journalist_invalid(case: Case) -> None:
    with rejected_by(case["check"]):
        if case["kind"] == "seed_box":
            journalist.open_seed(
                h(case["kek"]), h(case["journalist_id"]), journalist_public(case), h(case["box"])
            )
        elif case["kind"] == "totp_box":
            journalist.open_totp(h(case["totp_key"]), h(case["journalist_id"]), h(case["box"]))
        else:
            assert case["kind"] == "unlock"
            unlock_case(case)


# ----------------------------------------------------------------------- recovery


@pytest.mark.parametrize("case", cases("recovery.json", "valid", "secret"))
def test_recovery_secret(case: Case) -> None:
    assert recovery.parse_recovery_secret(case["typed"]) == case["normalised"]
    assert recovery.recovery_seed(case["typed"]).hex() == case["seed"]
    pair = recovery.recovery_keypair(case["typed"])
    assert pair.x25519_private.hex() == case["x25519_secret"]
    assert pair.x25519_public.hex() == case["x25519_public"]
    assert pair.key_id.hex() == case["key_id"]
    assert pair.public.fingerprint == case["fingerprint"]


@pytest.mark.parametrize("case", cases("recovery.json", "valid", "public_file"))
def test_recovery_public_file(case: Case) -> None:
    public = recovery.parse_recovery_public_file(case["text"])
    assert public.x25519.hex() == case["x25519_public"]
    assert public.fingerprint == case["fingerprint"]
    assert recovery.recovery_public_file_text(public) == case["text"]


@pytest.mark.parametrize("case", cases("recovery.json", "invalid"))
def test_recovery_invalid(case: Case) -> None:
    with rejected_by(case["check"]):
        if case["kind"] == "secret":
            recovery.recovery_seed(case["typed"])
        else:
            recovery.parse_recovery_public_file(case["text"])


# ------------------------------------------------------------------- the generator


def test_generator_reproduces_the_deterministic_files() -> None:
    """The committed files are what make_keys.py makes (all but grants.json, whose sealed
    boxes are random); so the generator and the files cannot drift apart unnoticed."""
    spec = importlib.util.spec_from_file_location("make_keys", VECTORS / "make_keys.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in module.DETERMINISTIC:
        expected = module.dump(module.BUILDERS[name]())
        assert (VECTORS / name).read_text(encoding="utf-8") == expected, name
