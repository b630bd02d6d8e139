"""Journalists' tags on sources: sealed under the metadata key, found by a blind index.

docs/envelope.md section 12. A tag is a short label a journalist puts on a source
("ministry", "needs lawyer"). Its text is sealed with XChaCha20-Poly1305 under a key
derived from the instance's metadata seed, bound to that key and to the source; equal
tags are found by a keyed BLAKE2b of their case-folded text (the blind index), so the
database can filter by tag without holding it in clear. The index reveals which sources
share a tag, never the tag: docs/journalist-app.md lists it.

Private side: the metadata seed is granted to journalists like a newsroom seed, so only
the journalist app, the CLI and private-side domain code import this module.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Final

import nacl.utils
from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
    crypto_generichash_blake2b_salt_personal,
    sodium_pad,
    sodium_unpad,
)
from nacl.exceptions import CryptoError

from tipbox.crypto.errors import Rejected
from tipbox.crypto.kdf import CTX_METADATA, derive
from tipbox.crypto.keys import KEY_ID_BYTES, KeyPair, Role, keypair_from_seed

TAG_AD_PREFIX: Final = b"tipbox.tag.v1"
INDEX_PREFIX: Final = b"tipbox.tag-index.v1"
MAX_TAG_CHARS: Final = 48
PADDED_BYTES: Final = 256
NONCE_BYTES: Final = 24
SEALED_TAG_BYTES: Final = NONCE_BYTES + PADDED_BYTES + 16  # 296
INDEX_BYTES: Final = 32
SOURCE_ID_BYTES: Final = 16

# Unicode categories a tag may not contain: controls, format characters (bidi overrides
# among them), separators other than the space, private use, surrogates, unassigned.
_REFUSED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"})


@dataclass(frozen=True)
class MetadataKeys:
    """The keys derived from a metadata seed (section 2: ``tbmetad1``)."""

    keypair: KeyPair
    tag_key: bytes = field(repr=False)
    index_key: bytes = field(repr=False)

    @property
    def key_id(self) -> bytes:
        """The metadata key's id, as its directory entry names it."""
        return self.keypair.key_id


def metadata_keys(seed: bytes) -> MetadataKeys:
    """Derive the metadata key pair (for its directory entry and grants), tag and index keys."""
    return MetadataKeys(
        keypair_from_seed(Role.METADATA, seed),
        derive(seed, 2, CTX_METADATA),
        derive(seed, 3, CTX_METADATA),
    )


def normalise_tag(text: str) -> str:
    """The display form of a tag: NFKC, whitespace runs made one space, trimmed.

    ``ValueError`` if the result is empty, longer than 48 characters, or holds a control,
    format (bidirectional) or other refused character.
    """
    display = " ".join(unicodedata.normalize("NFKC", text).split())
    if not display:
        raise ValueError("a tag cannot be empty")
    if len(display) > MAX_TAG_CHARS:
        raise ValueError(f"a tag has at most {MAX_TAG_CHARS} characters")
    if any(unicodedata.category(char) in _REFUSED_CATEGORIES for char in display):
        raise ValueError("a tag cannot hold control or direction characters")
    return display


def _ad(key_id: bytes, source_id: bytes) -> bytes:
    if len(key_id) != KEY_ID_BYTES or len(source_id) != SOURCE_ID_BYTES:
        raise Rejected("tag.ids: key id and source id must be 16 bytes")
    return TAG_AD_PREFIX + b"\x00" + key_id + source_id


def tag_index(keys: MetadataKeys, display: str) -> bytes:
    """The blind index of a tag in display form: keyed BLAKE2b-256 of its case-folded text."""
    folded = display.casefold().encode("utf-8")
    return bytes(
        crypto_generichash_blake2b_salt_personal(
            INDEX_PREFIX + b"\x00" + folded, digest_size=INDEX_BYTES, key=keys.index_key
        )
    )


def seal_tag(
    keys: MetadataKeys, source_id: bytes, display: str, nonce: bytes | None = None
) -> bytes:
    """Seal a tag (already normalised) for ``source_id``: 296 bytes.

    ``nonce`` is for the known-answer vectors only; a writer leaves it to the CSPRNG.
    """
    if normalise_tag(display) != display:
        raise ValueError("seal_tag takes a tag in display form (normalise_tag)")
    text = display.encode("utf-8")
    record = bytes([len(text)]) + text
    padded = sodium_pad(record, PADDED_BYTES)
    nonce = nacl.utils.random(NONCE_BYTES) if nonce is None else nonce
    sealed = crypto_aead_xchacha20poly1305_ietf_encrypt(
        padded, _ad(keys.key_id, source_id), nonce, keys.tag_key
    )
    return nonce + bytes(sealed)


def open_tag(keys: MetadataKeys, source_id: bytes, sealed: bytes) -> str:
    """Open a sealed tag of ``source_id``; ``Rejected`` naming the failed check."""
    if len(sealed) != SEALED_TAG_BYTES:
        raise Rejected("tag.length: a sealed tag is 296 bytes")
    ad = _ad(keys.key_id, source_id)
    try:
        padded = crypto_aead_xchacha20poly1305_ietf_decrypt(
            sealed[NONCE_BYTES:], ad, sealed[:NONCE_BYTES], keys.tag_key
        )
    except CryptoError:
        raise Rejected("tag.authenticate: the tag does not open with this key") from None
    try:
        record = sodium_unpad(padded, PADDED_BYTES)
    except (CryptoError, ValueError):
        raise Rejected("tag.padding: bad padding") from None
    if not record or record[0] != len(record) - 1:
        raise Rejected("tag.overrun: the length byte does not match the record")
    try:
        display = record[1:].decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected("tag.utf8: the tag is not valid UTF-8") from None
    try:
        canonical: str | None = normalise_tag(display)
    except ValueError:
        canonical = None
    if canonical != display:
        raise Rejected("tag.text: the tag is not in display form")
    return display
