"""Directory entries and their identity signatures (envelope.md section 4)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tipbox.crypto.directory import (
    ENTRY_BYTES,
    NO_SUBJECT,
    Entry,
    Status,
    allowed_statuses,
    public_keys,
    verify_entry,
)
from tipbox.crypto.errors import Rejected
from tipbox.crypto.identity import identity_entry, sign_entry, sign_identity_entry
from tipbox.crypto.kdf import tagged_hash
from tipbox.crypto.keys import KeyPair, Role, keypair_from_seed

IDENTITY = keypair_from_seed(Role.IDENTITY, b"\x01" * 32)
OTHER_IDENTITY = keypair_from_seed(Role.IDENTITY, b"\x02" * 32)
NEWSROOM = keypair_from_seed(Role.NEWSROOM, b"\x03" * 32)
JOURNALIST = keypair_from_seed(Role.JOURNALIST, b"\x04" * 32)
RECOVERY = keypair_from_seed(Role.RECOVERY, b"\x05" * 32)
JOURNALIST_ID = b"\x42" * 16
ZEROS = bytes(32)


def identity_pk(pair: KeyPair = IDENTITY) -> bytes:
    ed = pair.public.ed25519
    assert ed is not None
    return ed


def check_of(exc: pytest.ExceptionInfo[Rejected]) -> str:
    return str(exc.value).split(":", 1)[0]


def raw(
    role: int,
    status: int,
    x25519: bytes,
    ed25519: bytes = ZEROS,
    subject: bytes = NO_SUBJECT,
    key_id: bytes | None = None,
    header: bytes = b"tipbox.directory.v1\x00",
    serial: int = 7,
) -> bytes:
    if key_id is None:
        key_id = tagged_hash(b"tipbox.key-fingerprint.v1", bytes([role]) + x25519 + ed25519)[:16]
    return (
        header
        + bytes([role, status])
        + key_id
        + subject
        + x25519
        + ed25519
        + struct.pack(">Q", serial)
    )


def signed(data: bytes) -> tuple[bytes, bytes]:
    return data, IDENTITY.sign(data)


def valid_entries() -> list[Entry]:
    return [
        identity_entry(IDENTITY, 1),
        Entry.for_keys(NEWSROOM.public, Status.CURRENT, 2),
        Entry.for_keys(NEWSROOM.public, Status.RETIRING, 3),
        Entry.for_keys(NEWSROOM.public, Status.RETIRED, 4),
        Entry.for_keys(JOURNALIST.public, Status.ACTIVE, 5, JOURNALIST_ID),
        Entry.for_keys(RECOVERY.public, Status.ACTIVE, 6),
    ]


@pytest.mark.parametrize("entry", valid_entries(), ids=lambda e: f"{e.role.name}-{e.status.name}")
def test_signed_entries_verify_and_round_trip(entry: Entry) -> None:
    data, signature = sign_entry(IDENTITY, entry)
    assert len(data) == ENTRY_BYTES == 126
    assert len(signature) == 64
    assert data.startswith(b"tipbox.directory.v1\x00")
    assert verify_entry(identity_pk(), data, signature) == entry
    assert Entry.parse(data) == entry
    assert entry.to_bytes() == data
    assert public_keys(entry) == entry.public
    assert public_keys(entry).key_id == entry.key_id


def test_entry_layout_is_byte_exact() -> None:
    entry = Entry.for_keys(JOURNALIST.public, Status.ACTIVE, 0x0102030405060708, JOURNALIST_ID)
    data = entry.to_bytes()
    ed = JOURNALIST.public.ed25519
    assert ed is not None
    assert data == (
        b"tipbox.directory.v1\x00\x03\x04"
        + JOURNALIST.key_id
        + JOURNALIST_ID
        + JOURNALIST.x25519_public
        + ed
        + bytes([1, 2, 3, 4, 5, 6, 7, 8])
    )


def test_identity_self_entry_helper() -> None:
    data, signature = sign_identity_entry(IDENTITY, 9)
    entry = verify_entry(identity_pk(), data, signature)
    assert entry.role == Role.IDENTITY
    assert entry.status == Status.ACTIVE
    assert entry.serial == 9
    assert entry.public == IDENTITY.public


def test_statuses_per_role() -> None:
    assert allowed_statuses(Role.NEWSROOM) == (Status.CURRENT, Status.RETIRING, Status.RETIRED)
    for role in (Role.IDENTITY, Role.JOURNALIST, Role.RECOVERY):
        assert allowed_statuses(role) == (Status.ACTIVE,)


# ------------------------------------------------------------ every rejection of §4


def test_entry_not_signed_by_the_identity_key_is_rejected() -> None:
    data = Entry.for_keys(NEWSROOM.public, Status.CURRENT, 1).to_bytes()
    forged = OTHER_IDENTITY.sign(data)
    with pytest.raises(Rejected) as exc:
        verify_entry(identity_pk(), data, forged)
    assert check_of(exc) == "entry.signature"
    # ... even when the forger also signs its own identity entry.
    own, own_sig = sign_identity_entry(OTHER_IDENTITY, 1)
    with pytest.raises(Rejected):
        verify_entry(identity_pk(), own, own_sig)


NX = NEWSROOM.x25519_public
JX = JOURNALIST.x25519_public
JE = JOURNALIST.public.ed25519 or b""
RX = RECOVERY.x25519_public


@pytest.mark.parametrize(
    ("data", "check"),
    [
        (raw(2, 1, NX)[:-1], "entry.length"),
        (raw(2, 1, NX) + b"\x00", "entry.length"),
        (b"", "entry.length"),
        (raw(2, 1, NX, header=b"tipbox.directorY.v1\x00"), "entry.prefix"),
        (raw(2, 1, NX, header=b"tipbox.directory.v1\xff"), "entry.separator"),
        (raw(0, 4, NX), "entry.role"),
        (raw(5, 4, NX), "entry.role"),
        (raw(7, 4, NX), "entry.role"),
        (raw(2, 0, NX), "entry.status"),
        (raw(2, 4, NX), "entry.status"),
        (raw(2, 5, NX), "entry.status"),
        (raw(3, 1, JX, JE, JOURNALIST_ID), "entry.status"),
        (raw(4, 2, RX), "entry.status"),
        (raw(1, 3, IDENTITY.x25519_public, identity_pk()), "entry.status"),
        (raw(2, 1, NX, JE), "entry.ed25519"),
        (raw(4, 4, RX, JE), "entry.ed25519"),
        (raw(3, 4, JX, ZEROS, JOURNALIST_ID), "entry.ed25519"),
        (raw(1, 4, IDENTITY.x25519_public, ZEROS), "entry.ed25519"),
        (raw(2, 1, NX, subject=JOURNALIST_ID), "entry.subject_id"),
        (raw(4, 4, RX, subject=JOURNALIST_ID), "entry.subject_id"),
        (raw(1, 4, IDENTITY.x25519_public, identity_pk(), JOURNALIST_ID), "entry.subject_id"),
        (raw(2, 1, NX, key_id=b"\x00" * 16), "entry.key_id"),
        (raw(2, 1, NX, key_id=RECOVERY.key_id), "entry.key_id"),
        (raw(3, 4, JX, JE, JOURNALIST_ID, key_id=NEWSROOM.key_id), "entry.key_id"),
        (
            raw(1, 4, OTHER_IDENTITY.x25519_public, identity_pk(OTHER_IDENTITY)),
            "entry.identity",
        ),
    ],
)
def test_each_structural_rejection(data: bytes, check: str) -> None:
    # Signed by the real identity key, so only the named check can fail.
    with pytest.raises(Rejected) as exc:
        verify_entry(identity_pk(), *signed(data))
    assert check_of(exc) == check


def test_signature_rejections() -> None:
    data, signature = signed(raw(2, 1, NX, serial=10))
    verify_entry(identity_pk(), data, signature)
    rolled_back = raw(2, 1, NX, serial=9)
    for bad_data, bad_sig in [
        (rolled_back, signature),
        (data, signature[:63]),
        (data, signature + b"\x00"),
        (data, bytes(64)),
        (data, b""),
    ]:
        with pytest.raises(Rejected) as exc:
            verify_entry(identity_pk(), bad_data, bad_sig)
        assert check_of(exc) == "entry.signature"


def test_verifying_key_must_be_32_bytes() -> None:
    with pytest.raises(Rejected):
        verify_entry(identity_pk()[:31], *signed(raw(2, 1, NX)))


@given(position=st.integers(0, ENTRY_BYTES - 1), delta=st.integers(1, 255))
def test_any_single_byte_change_to_an_entry_is_rejected(position: int, delta: int) -> None:
    data, signature = sign_entry(
        IDENTITY, Entry.for_keys(JOURNALIST.public, Status.ACTIVE, 3, JOURNALIST_ID)
    )
    tampered = bytearray(data)
    tampered[position] = (tampered[position] + delta) % 256
    with pytest.raises(Rejected):
        verify_entry(identity_pk(), bytes(tampered), signature)


@given(position=st.integers(0, 63), delta=st.integers(1, 255))
def test_any_single_byte_change_to_a_signature_is_rejected(position: int, delta: int) -> None:
    data, signature = sign_entry(IDENTITY, Entry.for_keys(NEWSROOM.public, Status.CURRENT, 3))
    tampered = bytearray(signature)
    tampered[position] = (tampered[position] + delta) % 256
    with pytest.raises(Rejected) as exc:
        verify_entry(identity_pk(), data, bytes(tampered))
    assert check_of(exc) == "entry.signature"


# ----------------------------------------------------------------- writer-side checks


def test_entry_constructor_refuses_what_a_reader_would_reject() -> None:
    with pytest.raises(Rejected):
        Entry.for_keys(NEWSROOM.public, Status.ACTIVE, 1)
    with pytest.raises(Rejected):
        Entry.for_keys(JOURNALIST.public, Status.CURRENT, 1, JOURNALIST_ID)
    with pytest.raises(Rejected):
        Entry.for_keys(NEWSROOM.public, Status.CURRENT, 1, JOURNALIST_ID)
    with pytest.raises(Rejected):
        Entry.for_keys(NEWSROOM.public, Status.CURRENT, 2**64)
    with pytest.raises(Rejected):
        Entry.for_keys(NEWSROOM.public, Status.CURRENT, -1)
    with pytest.raises(Rejected):
        Entry.for_keys(keypair_from_seed(Role.SOURCE, ZEROS).public, Status.ACTIVE, 1)
    good = Entry.for_keys(NEWSROOM.public, Status.CURRENT, 1)
    with pytest.raises(Rejected):
        Entry(
            good.role,
            good.status,
            RECOVERY.key_id,
            good.subject_id,
            good.x25519,
            good.ed25519,
            good.serial,
        )


def test_only_the_identity_key_signs_entries() -> None:
    entry = Entry.for_keys(NEWSROOM.public, Status.CURRENT, 1)
    with pytest.raises(Rejected):
        sign_entry(JOURNALIST, entry)
