"""Grants: seeds sealed to journalists and the recovery key (envelope.md section 5)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.bindings import crypto_box_seal

from tipbox.crypto.directory import Entry, Status, verify_entry
from tipbox.crypto.errors import Rejected
from tipbox.crypto.grants import GRANT_BYTES, grant_plaintext, make_grant, open_grant
from tipbox.crypto.identity import sign_entry, sign_identity_entry
from tipbox.crypto.keys import KeyPair, Role, keypair_from_seed

IDENTITY_SEED = b"\x11" * 32
NEWSROOM_SEED = b"\x22" * 32
OTHER_NEWSROOM_SEED = b"\x33" * 32
IDENTITY = keypair_from_seed(Role.IDENTITY, IDENTITY_SEED)
NEWSROOM = keypair_from_seed(Role.NEWSROOM, NEWSROOM_SEED)
OTHER_NEWSROOM = keypair_from_seed(Role.NEWSROOM, OTHER_NEWSROOM_SEED)
JOURNALIST = keypair_from_seed(Role.JOURNALIST, b"\x44" * 32)
OTHER_JOURNALIST = keypair_from_seed(Role.JOURNALIST, b"\x55" * 32)
RECOVERY = keypair_from_seed(Role.RECOVERY, b"\x66" * 32)


def check_of(exc: pytest.ExceptionInfo[Rejected]) -> str:
    return str(exc.value).split(":", 1)[0]


def verified(entry: Entry) -> Entry:
    """Sign with the identity key and verify, as a reader gets entries from the database."""
    ed = IDENTITY.public.ed25519
    assert ed is not None
    return verify_entry(ed, *sign_entry(IDENTITY, entry))


def entry_of(pair: KeyPair) -> Entry:
    if pair.role == Role.IDENTITY:
        ed = IDENTITY.public.ed25519
        assert ed is not None
        return verify_entry(ed, *sign_identity_entry(IDENTITY, 1))
    if pair.role == Role.NEWSROOM:
        return verified(Entry.for_keys(pair.public, Status.CURRENT, 2))
    subject = pair.key_id if pair.role == Role.JOURNALIST else bytes(16)
    return verified(Entry.for_keys(pair.public, Status.ACTIVE, 3, subject))


def newsroom_grant(grantee: KeyPair = JOURNALIST) -> bytes:
    return make_grant(Role.NEWSROOM, NEWSROOM.key_id, NEWSROOM_SEED, entry_of(grantee))


def open_newsroom(grant: bytes, grantee: KeyPair = JOURNALIST) -> bytes:
    return open_grant(grant, grantee, Role.NEWSROOM, NEWSROOM.key_id, entry_of(NEWSROOM))


@pytest.mark.parametrize("grantee", [JOURNALIST, RECOVERY], ids=["journalist", "recovery"])
@pytest.mark.parametrize(
    ("role", "seed", "pair"),
    [(Role.NEWSROOM, NEWSROOM_SEED, NEWSROOM), (Role.IDENTITY, IDENTITY_SEED, IDENTITY)],
    ids=["newsroom", "identity"],
)
def test_grant_round_trip(grantee: KeyPair, role: Role, seed: bytes, pair: KeyPair) -> None:
    grant = make_grant(role, pair.key_id, seed, entry_of(grantee))
    assert len(grant) == GRANT_BYTES == 129
    assert open_grant(grant, grantee, role, pair.key_id, entry_of(pair)) == seed


def test_grants_are_randomised() -> None:
    assert newsroom_grant() != newsroom_grant()


def test_grant_opens_only_with_its_grantees_key() -> None:
    grant = newsroom_grant(JOURNALIST)
    for stranger in (OTHER_JOURNALIST, RECOVERY):
        with pytest.raises(Rejected) as exc:
            open_newsroom(grant, stranger)
        assert check_of(exc) == "grant.open"


def test_grant_whose_seed_does_not_match_the_directory_is_rejected() -> None:
    # The plaintext names the right key but carries another key's seed.
    plaintext = grant_plaintext(
        Role.NEWSROOM, NEWSROOM.key_id, JOURNALIST.key_id, OTHER_NEWSROOM_SEED
    )
    grant = bytes(crypto_box_seal(plaintext, JOURNALIST.x25519_public))
    with pytest.raises(Rejected) as exc:
        open_newsroom(grant)
    assert check_of(exc) == "grant.seed"


def test_grant_checked_against_another_keys_entry_is_rejected() -> None:
    with pytest.raises(Rejected) as exc:
        open_grant(
            newsroom_grant(), JOURNALIST, Role.NEWSROOM, NEWSROOM.key_id, entry_of(OTHER_NEWSROOM)
        )
    assert check_of(exc) == "grant.directory"


def sealed(plaintext: bytes) -> bytes:
    return bytes(crypto_box_seal(plaintext, JOURNALIST.x25519_public))


GOOD = grant_plaintext(Role.NEWSROOM, NEWSROOM.key_id, JOURNALIST.key_id, NEWSROOM_SEED)


@pytest.mark.parametrize(
    ("grant", "check"),
    [
        (sealed(GOOD[:-1]), "grant.length"),
        (sealed(GOOD + b"\x00"), "grant.length"),
        (sealed(b""), "grant.length"),
        (sealed(b"tipbox.Grant.v1" + GOOD[15:]), "grant.prefix"),
        (sealed(GOOD[:15] + b"\x02" + GOOD[16:]), "grant.separator"),
        (
            sealed(
                grant_plaintext(Role.IDENTITY, NEWSROOM.key_id, JOURNALIST.key_id, NEWSROOM_SEED)
            ),
            "grant.role",
        ),
        (
            sealed(
                grant_plaintext(
                    Role.NEWSROOM, OTHER_NEWSROOM.key_id, JOURNALIST.key_id, OTHER_NEWSROOM_SEED
                )
            ),
            "grant.key_id",
        ),
        (
            sealed(grant_plaintext(Role.NEWSROOM, NEWSROOM.key_id, RECOVERY.key_id, NEWSROOM_SEED)),
            "grant.grantee_id",
        ),
        (b"", "grant.open"),
        (bytes(GRANT_BYTES), "grant.open"),
    ],
)
def test_each_grant_rejection(grant: bytes, check: str) -> None:
    with pytest.raises(Rejected) as exc:
        open_newsroom(grant)
    assert check_of(exc) == check


def test_expected_role_and_entry_role_must_agree() -> None:
    grant = make_grant(Role.IDENTITY, IDENTITY.key_id, IDENTITY_SEED, entry_of(JOURNALIST))
    with pytest.raises(Rejected) as exc:
        open_grant(grant, JOURNALIST, Role.NEWSROOM, IDENTITY.key_id, entry_of(IDENTITY))
    assert check_of(exc) == "grant.role"
    with pytest.raises(Rejected) as exc:
        open_grant(grant, JOURNALIST, Role.JOURNALIST, IDENTITY.key_id, entry_of(IDENTITY))
    assert check_of(exc) == "grant.role"


@settings(max_examples=60)
@given(position=st.integers(0, GRANT_BYTES - 1), delta=st.integers(1, 255))
def test_any_single_byte_change_to_a_grant_is_rejected(position: int, delta: int) -> None:
    tampered = bytearray(newsroom_grant())
    tampered[position] = (tampered[position] + delta) % 256
    with pytest.raises(Rejected) as exc:
        open_newsroom(bytes(tampered))
    assert check_of(exc) == "grant.open"


# ----------------------------------------------------------------- writer-side checks


def test_make_grant_refuses_a_seed_of_another_key() -> None:
    with pytest.raises(Rejected) as exc:
        make_grant(Role.NEWSROOM, NEWSROOM.key_id, OTHER_NEWSROOM_SEED, entry_of(JOURNALIST))
    assert check_of(exc) == "grant.seed"


def test_make_grant_refuses_grantees_that_are_not_journalists_or_recovery() -> None:
    with pytest.raises(Rejected) as exc:
        make_grant(Role.NEWSROOM, NEWSROOM.key_id, NEWSROOM_SEED, entry_of(OTHER_NEWSROOM))
    assert check_of(exc) == "grant.grantee"


def test_make_grant_refuses_ungrantable_roles() -> None:
    seed = b"\x44" * 32
    with pytest.raises(Rejected) as exc:
        make_grant(Role.JOURNALIST, JOURNALIST.key_id, seed, entry_of(RECOVERY))
    assert check_of(exc) == "grant.role"
