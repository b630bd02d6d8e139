"""Journalist passphrases, seed boxes and TOTP boxes (envelope.md section 7)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.pwhash.argon2id import kdf

from tipbox.config import JOURNALIST_KDF, TEST_KDF
from tipbox.crypto import wordlist
from tipbox.crypto.errors import Rejected
from tipbox.crypto.journalist import (
    SEED_BOX_BYTES,
    JournalistKeyRecord,
    box_seed,
    box_totp,
    create_journalist_key,
    derive_passphrase_keys,
    open_seed,
    open_totp,
    seal_seed_under_passphrase,
    seed_box_ad,
    unlock,
    unlock_with_keys,
)
from tipbox.crypto.kdf import derive
from tipbox.crypto.keys import Role, keypair_from_seed
from tipbox.crypto.passphrases import generate_passphrase, parse_passphrase

JID = b"\x07" * 16
OTHER_JID = b"\x08" * 16
SALT = bytes(range(16))
PASSPHRASE = "abacus cope taco sheep exact hazy jumbo"
SEED = b"\x09" * 32
PUBLIC = keypair_from_seed(Role.JOURNALIST, SEED).public
KEK = b"\x0a" * 32


def check_of(exc: pytest.ExceptionInfo[Rejected]) -> str:
    return str(exc.value).split(":", 1)[0]


# ---------------------------------------------------------------------- passphrases


def test_generated_passphrases_are_list_words() -> None:
    for n in (7, 8, 12):
        passphrase = generate_passphrase(n)
        words = passphrase.split(" ")
        assert len(words) == n
        assert all(w in wordlist.word_set() for w in words)
        assert parse_passphrase(passphrase) == passphrase
    assert len(generate_passphrase().split(" ")) == 7
    assert len({generate_passphrase() for _ in range(50)}) == 50


@pytest.mark.parametrize("n", [0, 1, 6])
def test_short_passphrases_are_never_generated(n: int) -> None:
    with pytest.raises(ValueError, match="at least 7"):
        generate_passphrase(n)


def test_passphrase_input_is_normalised_like_codenames() -> None:
    typed = "  ABACUS\u200b cope,taco  sheep\texact hazy jumbo "
    assert parse_passphrase(typed) == PASSPHRASE
    with pytest.raises(Rejected) as exc:
        parse_passphrase("abacus cope taco sheep exact hazy")
    assert check_of(exc) == "passphrase.words"
    with pytest.raises(Rejected) as exc:
        parse_passphrase(PASSPHRASE + " hunter2")
    assert check_of(exc) == "passphrase.unknown_word"


def test_passphrase_keys_follow_the_spec() -> None:
    keys = derive_passphrase_keys(PASSPHRASE.upper(), SALT, TEST_KDF)
    stretched = kdf(
        32, PASSPHRASE.encode(), SALT, opslimit=TEST_KDF.opslimit, memlimit=TEST_KDF.memlimit
    )
    assert keys.verifier == derive(stretched, 1, b"tbpassp1")
    assert keys.kek == derive(stretched, 2, b"tbpassp1")
    assert keys.totp_key == derive(stretched, 3, b"tbpassp1")
    assert len({keys.verifier, keys.kek, keys.totp_key}) == 3
    for secret in (keys.verifier, keys.kek, keys.totp_key):
        assert secret.hex() not in repr(keys)


def test_malformed_passphrase_is_refused_before_argon2() -> None:
    impossible = dataclasses.replace(TEST_KDF, memlimit=0)
    with pytest.raises(Rejected) as exc:
        derive_passphrase_keys("abacus cope taco", SALT, impossible)
    assert check_of(exc) == "passphrase.words"


# ------------------------------------------------------------------------ seed boxes


def test_seed_box_round_trip_and_layout() -> None:
    box = box_seed(KEK, JID, PUBLIC, SEED)
    assert len(box) == SEED_BOX_BYTES == 72
    assert open_seed(KEK, JID, PUBLIC, box) == SEED
    assert box != box_seed(KEK, JID, PUBLIC, SEED)  # random nonce
    ed = PUBLIC.ed25519
    assert ed is not None
    assert seed_box_ad(JID, PUBLIC) == (b"tipbox.journalist-seed.v1\x00" + JID + PUBLIC.x25519 + ed)


def test_seed_box_binds_journalist_id_and_public_keys() -> None:
    box = box_seed(KEK, JID, PUBLIC, SEED)
    other_public = keypair_from_seed(Role.JOURNALIST, b"\x10" * 32).public
    for kek, jid, public in [
        (b"\x0b" * 32, JID, PUBLIC),
        (KEK, OTHER_JID, PUBLIC),
        (KEK, JID, other_public),
    ]:
        with pytest.raises(Rejected) as exc:
            open_seed(kek, jid, public, box)
        assert check_of(exc) == "seed_box.open"


def test_seed_box_rejects_wrong_lengths() -> None:
    box = box_seed(KEK, JID, PUBLIC, SEED)
    for bad in (box[:-1], box + b"\x00", b""):
        with pytest.raises(Rejected) as exc:
            open_seed(KEK, JID, PUBLIC, bad)
        assert check_of(exc) == "seed_box.length"


def test_box_seed_refuses_a_seed_of_other_keys() -> None:
    with pytest.raises(Rejected) as exc:
        box_seed(KEK, JID, PUBLIC, b"\x10" * 32)
    assert check_of(exc) == "seed_box.seed"


@settings(max_examples=50)
@given(position=st.integers(0, SEED_BOX_BYTES - 1), delta=st.integers(1, 255))
def test_any_single_byte_change_to_a_seed_box_is_rejected(position: int, delta: int) -> None:
    box = bytearray(box_seed(KEK, JID, PUBLIC, SEED))
    box[position] = (box[position] + delta) % 256
    with pytest.raises(Rejected) as exc:
        open_seed(KEK, JID, PUBLIC, bytes(box))
    assert check_of(exc) == "seed_box.open"


# ------------------------------------------------------------------------ TOTP boxes


def test_totp_box_round_trip_and_binding() -> None:
    secret = b"\x01" * 20
    box = box_totp(KEK, JID, secret)
    assert len(box) == 24 + 20 + 16
    assert open_totp(KEK, JID, box) == secret
    with pytest.raises(Rejected) as exc:
        open_totp(KEK, OTHER_JID, box)
    assert check_of(exc) == "totp_box.open"
    with pytest.raises(Rejected) as exc:
        open_totp(b"\x0b" * 32, JID, box)
    assert check_of(exc) == "totp_box.open"
    for bad in (box[:40], b"", box + bytes(64)):
        with pytest.raises(Rejected) as exc:
            open_totp(KEK, JID, bad)
        assert check_of(exc) == "totp_box.length"


def test_totp_secret_length_is_bounded() -> None:
    for bad in (b"", bytes(65)):
        with pytest.raises(Rejected):
            box_totp(KEK, JID, bad)


# ------------------------------------------------------------- records and unlocking


def test_create_and_unlock() -> None:
    passphrase = generate_passphrase()
    record, seed, pair = create_journalist_key(JID, passphrase, TEST_KDF)
    assert pair.role == Role.JOURNALIST
    assert pair.public == keypair_from_seed(Role.JOURNALIST, seed).public
    assert (record.opslimit, record.memlimit) == (TEST_KDF.opslimit, TEST_KDF.memlimit)
    assert record.cost == TEST_KDF
    assert len(record.salt) == 16
    assert len(record.verifier) == 32
    assert len(record.seed_box) == 72
    assert seed not in record.seed_box
    assert unlock(record, JID, pair.public, passphrase) == seed
    # What a journalist types is normalised.
    assert unlock(record, JID, pair.public, "  " + passphrase.upper() + "\u200b") == seed


def test_wrong_passphrase_cannot_unlock_a_journalist_key() -> None:
    passphrase = generate_passphrase()
    record, _, pair = create_journalist_key(JID, passphrase, TEST_KDF)
    wrong = generate_passphrase()
    with pytest.raises(Rejected) as exc:
        unlock(record, JID, pair.public, wrong)
    assert check_of(exc) == "passphrase.verifier"
    # One word changed is as wrong as any other passphrase.
    words = passphrase.split(" ")
    words[3] = "zoom" if words[3] != "zoom" else "abacus"
    with pytest.raises(Rejected) as exc:
        unlock(record, JID, pair.public, " ".join(words))
    assert check_of(exc) == "passphrase.verifier"
    # Eight words where seven were set is also wrong.
    with pytest.raises(Rejected):
        unlock(record, JID, pair.public, passphrase + " zoom")


def test_a_record_moved_to_another_journalist_does_not_open() -> None:
    passphrase = generate_passphrase()
    record, _, pair = create_journalist_key(JID, passphrase, TEST_KDF)
    with pytest.raises(Rejected) as exc:
        unlock(record, OTHER_JID, pair.public, passphrase)
    assert check_of(exc) == "seed_box.open"


def test_a_swapped_seed_box_does_not_open() -> None:
    # An attacker with database write access swaps in another record's box, keeping the
    # victim's verifier: the key-encryption key differs, so the box does not open.
    passphrase = generate_passphrase()
    record, _, pair = create_journalist_key(JID, passphrase, TEST_KDF)
    other, _, _ = create_journalist_key(JID, generate_passphrase(), TEST_KDF)
    swapped = dataclasses.replace(record, seed_box=other.seed_box)
    with pytest.raises(Rejected) as exc:
        unlock(swapped, JID, pair.public, passphrase)
    assert check_of(exc) == "seed_box.open"


def test_unlock_with_keys_gives_the_totp_key() -> None:
    passphrase = generate_passphrase()
    seed = b"\x0c" * 32
    record, keys = seal_seed_under_passphrase(JID, passphrase, seed, TEST_KDF)
    totp = box_totp(keys.totp_key, JID, b"secret-bytes-twenty!")
    public = keypair_from_seed(Role.JOURNALIST, seed).public
    opened_seed, opened_keys = unlock_with_keys(record, JID, public, passphrase)
    assert opened_seed == seed
    assert open_totp(opened_keys.totp_key, JID, totp) == b"secret-bytes-twenty!"


def test_rewrapping_a_seed_uses_a_fresh_salt() -> None:
    passphrase = generate_passphrase()
    a, _ = seal_seed_under_passphrase(JID, passphrase, SEED, TEST_KDF)
    b, _ = seal_seed_under_passphrase(JID, passphrase, SEED, TEST_KDF)
    assert a.salt != b.salt
    assert a.verifier != b.verifier


def test_create_refuses_a_chosen_passphrase() -> None:
    with pytest.raises(Rejected):
        create_journalist_key(JID, "correct horse battery staple", TEST_KDF)


def test_record_reports_its_cost() -> None:
    record = JournalistKeyRecord(b"s" * 16, 1, 8192, b"v" * 32, b"b" * 72)
    assert record.cost.memlimit == 8192


def test_unlock_at_production_cost() -> None:
    # The real cost (256 MiB, 3 passes), once: the same code path as TEST_KDF.
    passphrase = generate_passphrase()
    record, seed, pair = create_journalist_key(JID, passphrase, JOURNALIST_KDF)
    assert (record.opslimit, record.memlimit) == (3, 256 * 1024 * 1024)
    assert unlock(record, JID, pair.public, passphrase) == seed
