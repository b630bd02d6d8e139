"""The recovery key: secret words, public key file, and recovering every seed (section 10)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tipbox.crypto import wordlist
from tipbox.crypto.directory import Entry, Status, verify_entry
from tipbox.crypto.errors import Rejected
from tipbox.crypto.grants import make_grant, open_grant
from tipbox.crypto.identity import sign_entry, sign_identity_entry
from tipbox.crypto.kdf import tagged_hash
from tipbox.crypto.keys import Role, keypair_from_seed, new_seed
from tipbox.crypto.recovery import (
    generate_recovery_secret,
    parse_recovery_public_file,
    parse_recovery_secret,
    recovery_keypair,
    recovery_public_file_text,
    recovery_seed,
)


def check_of(exc: pytest.ExceptionInfo[Rejected]) -> str:
    return str(exc.value).split(":", 1)[0]


def test_recovery_secret_is_twenty_list_words() -> None:
    secret = generate_recovery_secret()
    words = secret.split(" ")
    assert len(words) == 20
    assert all(w in wordlist.word_set() for w in words)
    assert generate_recovery_secret() != secret


def test_recovery_seed_is_the_tagged_hash_of_the_normalised_words() -> None:
    secret = generate_recovery_secret()
    expected = tagged_hash(b"tipbox.recovery-secret.v1", secret.encode())
    assert recovery_seed(secret) == expected
    typed = "\n".join(w.upper() for w in secret.split(" ")) + "\n"
    assert parse_recovery_secret(typed) == secret
    assert recovery_seed(typed) == expected
    assert recovery_keypair(typed).public == keypair_from_seed(Role.RECOVERY, expected).public


@pytest.mark.parametrize(
    ("mangle", "check"),
    [
        (lambda w: w[:19], "recovery.words"),
        (lambda w: [*w, w[0]], "recovery.words"),
        (lambda w: [*w[:19], "tipbox"], "recovery.unknown_word"),
    ],
)
def test_bad_recovery_secrets_are_refused(
    mangle: Callable[[list[str]], list[str]], check: str
) -> None:
    words = generate_recovery_secret().split(" ")
    with pytest.raises(Rejected) as exc:
        recovery_seed(" ".join(mangle(words)))
    assert check_of(exc) == check


def test_public_key_file_round_trip() -> None:
    public = recovery_keypair(generate_recovery_secret()).public
    text = recovery_public_file_text(public)
    data = json.loads(text)
    assert list(data) == ["format", "version", "x25519", "fingerprint"]
    assert data["format"] == "tipbox-recovery-public-key"
    assert data["x25519"] == public.x25519.hex()
    assert data["fingerprint"] == public.fingerprint
    assert parse_recovery_public_file(text) == public
    # The file holds nothing secret.
    assert "seed" not in text


def test_public_key_file_rejects_a_fingerprint_mismatch() -> None:
    public = recovery_keypair(generate_recovery_secret()).public
    other = recovery_keypair(generate_recovery_secret()).public
    data = json.loads(recovery_public_file_text(public))
    data["x25519"] = other.x25519.hex()
    with pytest.raises(Rejected) as exc:
        parse_recovery_public_file(json.dumps(data))
    assert check_of(exc) == "recovery_file.fingerprint"


@pytest.mark.parametrize(
    ("change", "check"),
    [
        ({"version": True}, "recovery_file.version"),
        ({"version": 1.0}, "recovery_file.version"),
        ({"format": "tipbox-identity-public-key"}, "recovery_file.format"),
        ({"x25519": "AB" * 32}, "recovery_file.x25519"),
        ({"x25519": 5}, "recovery_file.x25519"),
        ({"ed25519": "00" * 32}, "recovery_file.fields"),
    ],
)
def test_public_key_file_rejects_malformed_input(change: dict[str, object], check: str) -> None:
    public = recovery_keypair(generate_recovery_secret()).public
    data = json.loads(recovery_public_file_text(public)) | change
    with pytest.raises(Rejected) as exc:
        parse_recovery_public_file(json.dumps(data))
    assert check_of(exc) == check


def test_public_key_file_text_refuses_other_roles() -> None:
    with pytest.raises(Rejected):
        recovery_public_file_text(keypair_from_seed(Role.NEWSROOM, new_seed()).public)


def test_recovery_key_opens_every_newsroom_grant_and_the_identity_grant() -> None:
    # An instance: identity, two newsroom keys (one current, one retiring).
    identity_seed = new_seed()
    identity = keypair_from_seed(Role.IDENTITY, identity_seed)
    identity_pk = identity.public.ed25519
    assert identity_pk is not None
    newsroom_seeds = [new_seed(), new_seed()]
    newsrooms = [keypair_from_seed(Role.NEWSROOM, s) for s in newsroom_seeds]
    directory = {identity.key_id: sign_identity_entry(identity, 1)}
    for serial, (pair, status) in enumerate(
        zip(newsrooms, (Status.CURRENT, Status.RETIRING), strict=True), start=2
    ):
        directory[pair.key_id] = sign_entry(identity, Entry.for_keys(pair.public, status, serial))

    # Offline: `tipbox keys recovery-new` makes the secret and exports the public key file.
    secret = generate_recovery_secret()
    public_file = recovery_public_file_text(recovery_keypair(secret).public)

    # Server: `tipbox init --recovery-public-key FILE` signs its entry and grants it seeds.
    recovery_public = parse_recovery_public_file(public_file)
    recovery_entry = verify_entry(
        identity_pk, *sign_entry(identity, Entry.for_keys(recovery_public, Status.ACTIVE, 4))
    )
    grants = {
        identity.key_id: make_grant(Role.IDENTITY, identity.key_id, identity_seed, recovery_entry)
    }
    for pair, seed in zip(newsrooms, newsroom_seeds, strict=True):
        grants[pair.key_id] = make_grant(Role.NEWSROOM, pair.key_id, seed, recovery_entry)

    # Recovery: the written-down words alone (typed differently) give back every seed.
    typed = "\n".join(w.upper() for w in secret.split(" "))
    recovered_key = recovery_keypair(typed)
    recovered = {
        key_id: open_grant(
            grant,
            recovered_key,
            Role.IDENTITY if key_id == identity.key_id else Role.NEWSROOM,
            key_id,
            verify_entry(identity_pk, *directory[key_id]),
        )
        for key_id, grant in grants.items()
    }
    assert recovered[identity.key_id] == identity_seed
    for pair, seed in zip(newsrooms, newsroom_seeds, strict=True):
        assert recovered[pair.key_id] == seed

    # Another secret opens none of them.
    stranger = recovery_keypair(generate_recovery_secret())
    for key_id, grant in grants.items():
        with pytest.raises(Rejected):
            open_grant(
                grant,
                stranger,
                Role.IDENTITY if key_id == identity.key_id else Role.NEWSROOM,
                key_id,
                verify_entry(identity_pk, *directory[key_id]),
            )
