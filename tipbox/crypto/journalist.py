"""Journalist key seeds and TOTP secrets, boxed under a passphrase (docs/envelope.md section 7).

One Argon2id run over the normalised passphrase is split by derivation into a verifier (the
server compares it in constant time), a key-encryption key (opens the seed box) and a TOTP
box key. A copy of the database therefore gives neither the key seed nor the second factor.
Private side: only the journalist app, the keyring and the CLI import this module.
Rejections name their check (``passphrase.verifier``, ``seed_box.open``, …) first.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

import nacl.utils
from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_decrypt as aead_decrypt
from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_encrypt as aead_encrypt
from nacl.exceptions import CryptoError

from tipbox.config import Argon2Cost
from tipbox.crypto.codenames import SALT_BYTES, argon2id
from tipbox.crypto.errors import Rejected
from tipbox.crypto.kdf import CTX_PASSPHRASE, KEY_BYTES, derive
from tipbox.crypto.keys import SEED_BYTES, KeyPair, PublicKeys, Role, keypair_from_seed, new_seed
from tipbox.crypto.passphrases import parse_passphrase

JOURNALIST_ID_BYTES = 16
NONCE_BYTES = 24
MAC_BYTES = 16
SEED_BOX_BYTES = NONCE_BYTES + SEED_BYTES + MAC_BYTES  # 72
SEED_BOX_TAG = b"tipbox.journalist-seed.v1"
TOTP_BOX_TAG = b"tipbox.journalist-totp.v1"
# RFC 4226 asks for at least 16 bytes and recommends 20; 64 is far beyond any real secret.
TOTP_SECRET_MAX_BYTES = 64


@dataclass(frozen=True, eq=False)
class PassphraseKeys:
    """The three derivations of a passphrase's Argon2id output (section 7)."""

    verifier: bytes = field(repr=False)
    kek: bytes = field(repr=False)
    totp_key: bytes = field(repr=False)


@dataclass(frozen=True)
class JournalistKeyRecord:
    """What the database stores for a journalist key: Argon2id salt and costs, the
    passphrase verifier and the seed box. Nothing here opens without the passphrase."""

    salt: bytes
    opslimit: int
    memlimit: int
    verifier: bytes
    seed_box: bytes

    @property
    def cost(self) -> Argon2Cost:
        """The Argon2id cost this record was made with."""
        return Argon2Cost(opslimit=self.opslimit, memlimit=self.memlimit)


def _check_key(key: bytes, check: str) -> None:
    if len(key) != KEY_BYTES:
        raise Rejected(f"{check}.key: key must be 32 bytes")


def _check_journalist_id(journalist_id: bytes, check: str) -> None:
    if len(journalist_id) != JOURNALIST_ID_BYTES:
        raise Rejected(f"{check}.journalist_id: journalist id must be 16 bytes")


def _nonce(nonce: bytes | None) -> bytes:
    if nonce is None:
        return bytes(nacl.utils.random(NONCE_BYTES))
    if len(nonce) != NONCE_BYTES:
        raise ValueError("nonce must be 24 bytes")
    return nonce


def derive_passphrase_keys(passphrase: str, salt: bytes, cost: Argon2Cost) -> PassphraseKeys:
    """Normalise ``passphrase``, run Argon2id once and derive verifier, KEK and TOTP key.

    Malformed input (fewer than 7 list words) is rejected before Argon2id runs.
    """
    stretched = argon2id(parse_passphrase(passphrase), salt, cost)
    return PassphraseKeys(
        verifier=derive(stretched, 1, CTX_PASSPHRASE),
        kek=derive(stretched, 2, CTX_PASSPHRASE),
        totp_key=derive(stretched, 3, CTX_PASSPHRASE),
    )


def seed_box_ad(journalist_id: bytes, public: PublicKeys) -> bytes:
    """``"tipbox.journalist-seed.v1" ‖ 0x00 ‖ journalist_id ‖ x25519_pk ‖ ed25519_pk``."""
    if public.role != Role.JOURNALIST or public.ed25519 is None:
        raise Rejected("seed_box.role: not a journalist key")
    return SEED_BOX_TAG + b"\x00" + journalist_id + public.x25519 + public.ed25519


def box_seed(
    kek: bytes,
    journalist_id: bytes,
    public: PublicKeys,
    seed: bytes,
    *,
    nonce: bytes | None = None,
) -> bytes:
    """Box a journalist seed under ``kek``, bound to the journalist id and public keys.

    ``nonce`` exists for known-answer vectors only; leave it None to draw a random one.
    """
    _check_key(kek, "seed_box")
    _check_journalist_id(journalist_id, "seed_box")
    if keypair_from_seed(Role.JOURNALIST, seed).public != public:
        raise Rejected("seed_box.seed: seed does not derive the bound public keys")
    n = _nonce(nonce)
    sealed = aead_encrypt(seed, seed_box_ad(journalist_id, public), n, kek)
    return n + bytes(sealed)


def open_seed(kek: bytes, journalist_id: bytes, public: PublicKeys, box: bytes) -> bytes:
    """Open a seed box; reject a wrong length, a failed AEAD or a seed that does not
    derive the bound public keys."""
    _check_key(kek, "seed_box")
    _check_journalist_id(journalist_id, "seed_box")
    ad = seed_box_ad(journalist_id, public)
    if len(box) != SEED_BOX_BYTES:
        raise Rejected("seed_box.length: seed box must be 72 bytes")
    try:
        seed = bytes(aead_decrypt(box[NONCE_BYTES:], ad, box[:NONCE_BYTES], kek))
    except CryptoError:
        raise Rejected("seed_box.open: seed box does not open") from None
    if keypair_from_seed(Role.JOURNALIST, seed).public != public:
        raise Rejected("seed_box.seed: seed does not derive the bound public keys")
    return seed


def _totp_ad(journalist_id: bytes) -> bytes:
    return TOTP_BOX_TAG + b"\x00" + journalist_id


def box_totp(
    totp_key: bytes, journalist_id: bytes, secret: bytes, *, nonce: bytes | None = None
) -> bytes:
    """Box a TOTP secret (raw bytes) under the TOTP box key, bound to the journalist id.

    ``nonce`` exists for known-answer vectors only; leave it None to draw a random one.
    """
    _check_key(totp_key, "totp_box")
    _check_journalist_id(journalist_id, "totp_box")
    if not 1 <= len(secret) <= TOTP_SECRET_MAX_BYTES:
        raise Rejected("totp_box.length: TOTP secret must be 1 to 64 bytes")
    n = _nonce(nonce)
    sealed = aead_encrypt(secret, _totp_ad(journalist_id), n, totp_key)
    return n + bytes(sealed)


def open_totp(totp_key: bytes, journalist_id: bytes, box: bytes) -> bytes:
    """Open a TOTP box; reject a wrong length or a failed AEAD."""
    _check_key(totp_key, "totp_box")
    _check_journalist_id(journalist_id, "totp_box")
    overhead = NONCE_BYTES + MAC_BYTES
    if not overhead + 1 <= len(box) <= overhead + TOTP_SECRET_MAX_BYTES:
        raise Rejected("totp_box.length: TOTP box has an impossible length")
    try:
        return bytes(
            aead_decrypt(box[NONCE_BYTES:], _totp_ad(journalist_id), box[:NONCE_BYTES], totp_key)
        )
    except CryptoError:
        raise Rejected("totp_box.open: TOTP box does not open") from None


def seal_seed_under_passphrase(
    journalist_id: bytes, passphrase: str, seed: bytes, cost: Argon2Cost
) -> tuple[JournalistKeyRecord, PassphraseKeys]:
    """Box an existing journalist seed under a passphrase with a fresh salt.

    Returns the record to store and the passphrase keys (the caller needs ``totp_key`` to
    box the TOTP secret without a second Argon2id run).
    """
    salt = bytes(nacl.utils.random(SALT_BYTES))
    keys = derive_passphrase_keys(passphrase, salt, cost)
    public = keypair_from_seed(Role.JOURNALIST, seed).public
    record = JournalistKeyRecord(
        salt=salt,
        opslimit=cost.opslimit,
        memlimit=cost.memlimit,
        verifier=keys.verifier,
        seed_box=box_seed(keys.kek, journalist_id, public, seed),
    )
    return record, keys


def create_journalist_key(
    journalist_id: bytes, passphrase: str, cost: Argon2Cost
) -> tuple[JournalistKeyRecord, bytes, KeyPair]:
    """Make a fresh journalist key and box its seed under ``passphrase``.

    Returns ``(record to store, seed, key pair)``; the passphrase must be a generated one
    (7 or more list words).
    """
    seed = new_seed()
    record, _ = seal_seed_under_passphrase(journalist_id, passphrase, seed, cost)
    return record, seed, keypair_from_seed(Role.JOURNALIST, seed)


def unlock_with_keys(
    record: JournalistKeyRecord, journalist_id: bytes, public: PublicKeys, passphrase: str
) -> tuple[bytes, PassphraseKeys]:
    """Check the passphrase against the record and open the seed box.

    Returns ``(seed, passphrase keys)`` so that a login can also open the TOTP box. A wrong
    passphrase is rejected with ``passphrase.verifier`` (constant-time comparison).
    """
    keys = derive_passphrase_keys(passphrase, record.salt, record.cost)
    if not hmac.compare_digest(keys.verifier, record.verifier):
        raise Rejected("passphrase.verifier: wrong passphrase")
    return open_seed(keys.kek, journalist_id, public, record.seed_box), keys


def unlock(
    record: JournalistKeyRecord, journalist_id: bytes, public: PublicKeys, passphrase: str
) -> bytes:
    """Return the journalist's seed, or reject a wrong passphrase or a tampered record."""
    seed, _ = unlock_with_keys(record, journalist_id, public, passphrase)
    return seed
