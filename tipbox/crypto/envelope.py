"""The item envelope: body, meta, wraps and signatures (docs/envelope.md, section 8).

Messages, files, replies and notes share one format. A random content key ``K`` per item
gives a body key and a meta key. The body is a ``crypto_secretstream_xchacha20poly1305``
stream of 64 KiB chunks over the content zero-padded to a Padmé bucket; the meta (name,
media type, true size) is a fixed 1 KiB record sealed with XChaCha20-Poly1305; ``K`` is
wrapped to each recipient with ``crypto_box_seal``; replies and notes carry an Ed25519
signature. Both body and meta are bound to the item by the additional data ``AD``.

Streaming primitives (``BodyEncryptor``, ``decrypt_body``) keep memory constant whatever the
size of the content; ``seal_item``/``open_item`` are thin conveniences over them for items
held in memory (messages, replies, notes).

This module is on the public side of ``tipbox.crypto``: the source app imports it. The
private keys it takes (to unwrap, to sign) are always passed in by the caller.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Final, Protocol

import nacl.exceptions
import nacl.signing
import nacl.utils
from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
    crypto_box_seal,
    crypto_box_seal_open,
    crypto_generichash_blake2b_final,
    crypto_generichash_blake2b_init,
    crypto_generichash_blake2b_update,
    crypto_scalarmult_base,
    crypto_secretstream_xchacha20poly1305_init_pull,
    crypto_secretstream_xchacha20poly1305_init_push,
    crypto_secretstream_xchacha20poly1305_pull,
    crypto_secretstream_xchacha20poly1305_push,
    crypto_secretstream_xchacha20poly1305_state,
    crypto_secretstream_xchacha20poly1305_TAG_FINAL,
    crypto_secretstream_xchacha20poly1305_TAG_MESSAGE,
    sodium_pad,
    sodium_unpad,
)

from tipbox.crypto.errors import Rejected
from tipbox.crypto.kdf import CTX_CONTENT, blake2b_256, derive

__all__ = [
    "AD_BYTES",
    "CHUNK_BYTES",
    "ID_BYTES",
    "KEY_BYTES",
    "MAX_CONTENT_BYTES",
    "META_NAME_MAX",
    "MIN_PADDED_BYTES",
    "SEALED_CHUNK_BYTES",
    "SEALED_META_BYTES",
    "SIGNATURE_BYTES",
    "TEXT_MEDIA_TYPE",
    "VERSION",
    "WRAP_ALGORITHM",
    "WRAP_BYTES",
    "BodyEncryptor",
    "BodyInfo",
    "BodyReader",
    "Kind",
    "Meta",
    "OpenedItem",
    "SealedItem",
    "Sink",
    "Source",
    "additional_data",
    "blob_length",
    "content_subkeys",
    "decrypt_body",
    "encrypt_body",
    "new_content_key",
    "open_item",
    "open_meta",
    "open_text",
    "padded_length",
    "padded_length_of_blob",
    "padme",
    "seal_item",
    "seal_meta",
    "seal_text",
    "sign_item",
    "signature_message",
    "unwrap_key",
    "verify_item",
    "wrap_key",
]

VERSION: Final = 1
KEY_BYTES: Final = 32
ID_BYTES: Final = 16

AD_PREFIX: Final = b"tipbox.envelope\x00"
AD_BYTES: Final = len(AD_PREFIX) + 2 + 2 * ID_BYTES  # 50

CHUNK_BYTES: Final = 65536
HEADER_BYTES: Final = 24  # crypto_secretstream_xchacha20poly1305_HEADERBYTES
ABYTES: Final = 17  # crypto_secretstream_xchacha20poly1305_ABYTES
SEALED_CHUNK_BYTES: Final = CHUNK_BYTES + ABYTES  # 65,553
MIN_PADDED_BYTES: Final = 4096
# Sizes travel as JavaScript numbers in the browser implementation: keep them exact there.
MAX_CONTENT_BYTES: Final = 2**53 - 1

TEXT_MEDIA_TYPE: Final = "text/plain; charset=utf-8"
META_BLOCK_BYTES: Final = 1024
META_RECORD_MAX: Final = META_BLOCK_BYTES - 1  # sodium_pad always adds at least one byte
META_FIXED_BYTES: Final = 8 + 2 + 1  # u64be L, u16be |name|, u8 |type|
META_TYPE_MAX: Final = 255
META_NAME_MAX: Final = META_RECORD_MAX - META_FIXED_BYTES  # with an empty type; 1012
META_NONCE_BYTES: Final = 24
SEALED_META_BYTES: Final = META_NONCE_BYTES + META_BLOCK_BYTES + 16  # 1064

WRAP_ALGORITHM: Final = "x25519-sealedbox-v1"
WRAP_BYTES: Final = KEY_BYTES + 48  # 80

SIGNATURE_PREFIX: Final = b"tipbox.signature.v1\x00"
SIGNATURE_BYTES: Final = 64

_TAG_MESSAGE: Final[int] = crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
_TAG_FINAL: Final[int] = crypto_secretstream_xchacha20poly1305_TAG_FINAL
_ZEROS: Final = bytes(CHUNK_BYTES)
# How far an over-long file name's extension is kept: longer "extensions" are just text.
_EXTENSION_MAX: Final = 32


class Kind(IntEnum):
    """What an item is; authenticated in ``AD``."""

    MESSAGE = 1
    FILE = 2
    REPLY = 3
    NOTE = 4


_SIGNED_KINDS: Final = frozenset({Kind.REPLY, Kind.NOTE})


class Sink(Protocol):
    """Where a blob is written: a file, a storage writer, a socket wrapper."""

    def write(self, data: bytes, /) -> Any: ...


class Source(Protocol):
    """Where a blob is read from. ``read(n)`` returns fewer than ``n`` bytes only at the end
    (short reads of raw streams are tolerated: the reader asks again)."""

    def read(self, size: int, /) -> bytes: ...


# --- additional data and lengths -------------------------------------------------------


def additional_data(kind: Kind | int, source_id: bytes, item_id: bytes) -> bytes:
    """Return ``AD`` (section 8.1): 50 bytes binding version, kind, source id and item id."""
    kind = _kind(kind)
    for what, value in (("source id", source_id), ("item id", item_id)):
        if not isinstance(value, bytes) or len(value) != ID_BYTES:
            raise Rejected(f"additional data: {what} must be 16 bytes")
    return AD_PREFIX + bytes((VERSION, kind)) + source_id + item_id


def _kind(kind: Kind | int) -> Kind:
    try:
        return Kind(kind)
    except ValueError:
        raise Rejected("additional data: unknown kind") from None


def _check_ad(ad: bytes) -> Kind:
    """Check that ``ad`` is a version-1 ``AD`` with a known kind; return the kind."""
    if not isinstance(ad, bytes) or len(ad) != AD_BYTES or not ad.startswith(AD_PREFIX):
        raise Rejected("additional data: malformed")
    if ad[len(AD_PREFIX)] != VERSION:
        raise Rejected("additional data: unsupported version")
    return _kind(ad[len(AD_PREFIX) + 1])


def padme(n: int) -> int:
    """Padmé (section 8.2) of ``n >= 2``: round up so that only O(log log n) bits remain."""
    if n < 2:
        raise Rejected("padme: length must be at least 2")
    e = n.bit_length() - 1  # floor(log2 n)
    s = e.bit_length()  # floor(log2 e) + 1
    mask = (1 << (e - s)) - 1
    return (n + mask) & ~mask


def padded_length(n: int) -> int:
    """Return the padded body length ``P = padme(max(n, 4096))`` for content length ``n``."""
    if not 0 <= n <= MAX_CONTENT_BYTES:
        raise Rejected("body: content length out of range")
    return padme(max(n, MIN_PADDED_BYTES))


def blob_length(n: int) -> int:
    """Return the blob size for content length ``n``: ``24 + P + 17·ceil(P / 65536)``."""
    return _blob_size(padded_length(n))


def _blob_size(padded: int) -> int:
    return HEADER_BYTES + padded + ABYTES * -(-padded // CHUNK_BYTES)


def padded_length_of_blob(size: int) -> int:
    """Return the bucket ``P`` that a blob of ``size`` bytes carries, or reject the size.

    Lets a server check a browser-made blob before it has any key: the size must be exactly
    the size of a valid bucket.
    """
    chunks = -(-(size - HEADER_BYTES) // SEALED_CHUNK_BYTES)
    p = size - HEADER_BYTES - ABYTES * chunks
    if chunks < 1 or p < MIN_PADDED_BYTES or padme(p) != p or _blob_size(p) != size:
        raise Rejected("body: blob size is not a valid bucket")
    return p


# --- content keys ----------------------------------------------------------------------


def new_content_key() -> bytes:
    """Return a fresh random 32-byte content key ``K`` (one per item, never reused)."""
    return bytes(nacl.utils.random(KEY_BYTES))


def content_subkeys(content_key: bytes) -> tuple[bytes, bytes]:
    """Return ``(body_key, meta_key)`` = ``KDF(K,1,tbcontn1)``, ``KDF(K,2,tbcontn1)``."""
    return derive(content_key, 1, CTX_CONTENT), derive(content_key, 2, CTX_CONTENT)


def _body_key(content_key: bytes) -> bytes:
    return derive(content_key, 1, CTX_CONTENT)


def _meta_key(content_key: bytes) -> bytes:
    return derive(content_key, 2, CTX_CONTENT)


# --- body ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BodyInfo:
    """What ``BodyEncryptor.finish`` reports about the blob it wrote."""

    plain_length: int  # L, the content length: goes into the meta
    padded_length: int  # P
    blob_length: int  # bytes written to the sink
    digest: bytes | None  # H(blob) when asked for (replies and notes are signed over it)


class _Hasher:
    """BLAKE2b-256 computed incrementally (``H`` of section 1)."""

    def __init__(self) -> None:
        self._state = crypto_generichash_blake2b_init(digest_size=32)

    def update(self, data: bytes) -> None:
        crypto_generichash_blake2b_update(self._state, data)

    def digest(self) -> bytes:
        return bytes(crypto_generichash_blake2b_final(self._state))


class BodyEncryptor:
    """Encrypt a body of unknown length as it arrives, in constant memory.

    ``write`` takes pieces of any size; at most one 64 KiB chunk is held back, because a
    full chunk may turn out to be the last one (tagged ``TAG_FINAL``) only when the content
    ends. ``finish`` pads with zeros to the bucket ``P`` and writes the final chunk.
    Nothing but ciphertext ever reaches the sink.
    """

    def __init__(self, content_key: bytes, ad: bytes, sink: Sink, *, digest: bool = False) -> None:
        """Start a blob for the item with additional data ``ad``; write its header to ``sink``.

        With ``digest=True``, ``finish`` also returns ``H(blob)`` (replies and notes need it
        for their signature). It is off by default because hashing costs as much as the
        encryption itself, and messages and files are not signed.
        """
        _check_ad(ad)
        self._sink = sink
        self._hasher = _Hasher() if digest else None
        self._state = crypto_secretstream_xchacha20poly1305_state()
        self._first_ad: bytes | None = ad  # AD goes on the first chunk only
        self._buffer = bytearray(CHUNK_BYTES)
        self._filled = 0
        self._length = 0
        self._written = 0
        self._finished = False
        header = crypto_secretstream_xchacha20poly1305_init_push(
            self._state, _body_key(content_key)
        )
        self._emit(header)

    def _emit(self, data: bytes) -> None:
        self._sink.write(data)
        if self._hasher is not None:
            self._hasher.update(data)
        self._written += len(data)

    def _push(self, chunk: bytes, tag: int) -> None:
        sealed = crypto_secretstream_xchacha20poly1305_push(self._state, chunk, self._first_ad, tag)
        self._first_ad = None
        self._emit(sealed)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Encrypt the next piece of content (any size, including empty)."""
        if self._finished:
            raise ValueError("BodyEncryptor: write after finish")
        view = memoryview(data).cast("B")
        size = len(view)
        if self._length + size > MAX_CONTENT_BYTES:
            raise Rejected("body: content length out of range")
        pos = 0
        while pos < size:
            if self._filled == CHUNK_BYTES:
                # More content follows a full buffered chunk, so it is not the last one.
                self._push(bytes(self._buffer), _TAG_MESSAGE)
                self._filled = 0
            if self._filled == 0 and size - pos > CHUNK_BYTES:
                # A whole chunk with content after it: push it without buffering.
                self._push(bytes(view[pos : pos + CHUNK_BYTES]), _TAG_MESSAGE)
                pos += CHUNK_BYTES
                continue
            take = min(CHUNK_BYTES - self._filled, size - pos)
            self._buffer[self._filled : self._filled + take] = view[pos : pos + take]
            self._filled += take
            pos += take
        self._length += size

    def finish(self) -> BodyInfo:
        """Pad to ``P``, write the remaining chunks (the last with ``TAG_FINAL``), report."""
        if self._finished:
            raise ValueError("BodyEncryptor: finish called twice")
        self._finished = True
        length = self._length
        padded = padded_length(length)
        # Bytes from the start of the buffered chunk to the end of the padding (>= 1, as
        # the buffer holds at least one byte whenever some content was written).
        remaining = padded - (length - self._filled)
        # The buffer may still hold bytes of an earlier chunk beyond the filled part.
        self._buffer[self._filled :] = memoryview(_ZEROS)[self._filled :]
        chunk = bytes(self._buffer)
        while remaining > CHUNK_BYTES:
            self._push(chunk, _TAG_MESSAGE)
            chunk = _ZEROS  # everything after the buffered chunk is padding
            remaining -= CHUNK_BYTES
        self._push(chunk[:remaining], _TAG_FINAL)
        return BodyInfo(
            plain_length=length,
            padded_length=padded,
            blob_length=self._written,
            digest=self._hasher.digest() if self._hasher is not None else None,
        )


def encrypt_body(
    content_key: bytes,
    ad: bytes,
    data: bytes | bytearray | memoryview | Iterable[bytes],
    sink: Sink,
    *,
    digest: bool = False,
) -> BodyInfo:
    """Encrypt ``data`` (one buffer, or an iterable of pieces) into a blob written to ``sink``."""
    encryptor = BodyEncryptor(content_key, ad, sink, digest=digest)
    if isinstance(data, bytes | bytearray | memoryview):
        encryptor.write(data)
    else:
        for piece in data:
            encryptor.write(piece)
    return encryptor.finish()


def _read_up_to(source: Source, size: int) -> bytes:
    """Read ``size`` bytes, fewer only at the end of ``source``."""
    data = source.read(size)
    if len(data) == size or not data:
        return data
    parts = [data]
    got = len(data)
    while got < size:
        more = source.read(size - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


class BodyReader(Iterator[bytes]):
    """Decrypt a blob as it is read, yielding the first ``plain_length`` bytes in pieces.

    Every rule of section 8.2 is checked, and a failure raises ``Rejected``. Chunks are
    framed by the layout that ``plain_length`` (from the opened meta) gives the blob. A
    chunk's plaintext is yielded only once that chunk has passed every check, but the
    stream as a whole is good only when iteration ends normally: until then, treat what
    was yielded as incomplete (a download must abort its connection on failure).

    With ``digest=True`` the reader also computes ``H(blob)``, read from ``digest`` once
    iteration has ended, to verify a reply's or note's signature.
    """

    def __init__(
        self,
        content_key: bytes,
        ad: bytes,
        blob: Source,
        plain_length: int,
        *,
        digest: bool = False,
    ) -> None:
        """Prepare to read ``blob``; nothing is read until the first piece is asked for."""
        _check_ad(ad)
        self._ad = ad
        self._padded = padded_length(plain_length)
        self._length = plain_length
        self._body_key = _body_key(content_key)
        self._blob = blob
        self._hasher = _Hasher() if digest else None
        self._digest: bytes | None = None
        self._pieces = self._run()

    def __iter__(self) -> BodyReader:
        return self

    def __next__(self) -> bytes:
        return next(self._pieces)

    @property
    def digest(self) -> bytes:
        """``H(blob)``; only after iteration ended normally, and only if asked for."""
        if self._digest is None:
            raise ValueError("BodyReader: digest not requested or blob not fully read")
        return self._digest

    def _run(self) -> Iterator[bytes]:
        hasher = self._hasher
        header = _read_up_to(self._blob, HEADER_BYTES)
        if len(header) < HEADER_BYTES:
            raise Rejected("body: blob too short")
        if hasher is not None:
            hasher.update(header)
        state = crypto_secretstream_xchacha20poly1305_state()
        crypto_secretstream_xchacha20poly1305_init_pull(state, header, self._body_key)
        chunk_ad: bytes | None = self._ad
        produced = 0  # padded plaintext bytes authenticated so far
        while True:
            remaining = self._padded - produced
            if remaining == 0:
                # All of P has been read, yet no chunk was final.
                if self._blob.read(1):
                    raise Rejected("body: padded length does not match the meta")
                raise Rejected("body: stream ends without TAG_FINAL")
            # L, from the authenticated meta, fixes the layout: read no further than the
            # chunk that should be the last, so that any byte after it is noticed as such.
            wanted = min(SEALED_CHUNK_BYTES, remaining + ABYTES)
            sealed = _read_up_to(self._blob, wanted)
            if len(sealed) < ABYTES:
                if chunk_ad is not None:
                    raise Rejected("body: blob too short")
                raise Rejected("body: stream ends without TAG_FINAL")
            try:
                plain, tag = crypto_secretstream_xchacha20poly1305_pull(state, sealed, chunk_ad)
            except nacl.exceptions.CryptoError:
                raise Rejected("body: chunk fails to authenticate") from None
            chunk_ad = None
            if hasher is not None:
                hasher.update(sealed)
            if tag == _TAG_FINAL:
                if self._blob.read(1):
                    raise Rejected("body: bytes after TAG_FINAL")
                if produced + len(plain) != self._padded:
                    raise Rejected("body: padded length does not match the meta")
            elif tag != _TAG_MESSAGE:
                raise Rejected("body: chunk tag not allowed")
            elif len(sealed) != SEALED_CHUNK_BYTES:
                # A short chunk that is not final: the stream ends here, or it goes on
                # past the chunk that P makes the last.
                if len(sealed) < wanted or not self._blob.read(1):
                    raise Rejected("body: stream ends without TAG_FINAL")
                raise Rejected("body: padded length does not match the meta")
            keep = min(len(plain), max(0, self._length - produced))
            if plain.count(0, keep) != len(plain) - keep:
                raise Rejected("body: non-zero padding")
            produced += len(plain)
            if tag == _TAG_FINAL and hasher is not None:
                self._digest = hasher.digest()
            if keep:
                yield plain if keep == len(plain) else plain[:keep]
            if tag == _TAG_FINAL:
                return


def decrypt_body(
    content_key: bytes,
    ad: bytes,
    blob: Source,
    plain_length: int,
    *,
    digest: bool = False,
) -> BodyReader:
    """Decrypt and check a blob, yielding its content in pieces (see ``BodyReader``).

    ``plain_length`` is ``L`` from the item's opened (authenticated) meta.
    """
    return BodyReader(content_key, ad, blob, plain_length, digest=digest)


# --- meta ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Meta:
    """An item's meta record: file name (empty for text), media type and true size."""

    name: str
    media_type: str
    size: int


def _check_media_type(media_type: str) -> bytes:
    if not isinstance(media_type, str) or not all(" " <= c <= "~" for c in media_type):
        raise Rejected("meta: media type must be printable ASCII")
    if len(media_type) > META_TYPE_MAX:
        raise Rejected("meta: media type longer than 255 bytes")
    return media_type.encode("ascii")


def _shorten_name(name: bytes, limit: int) -> bytes:
    """Cut a UTF-8 name to at most ``limit`` bytes at a character boundary, keeping its
    extension (a final ``.xyz`` of at most 32 bytes) when the stem keeps a character."""
    if len(name) <= limit:
        return name
    dot = name.rfind(b".")
    extension = name[dot:] if dot > 0 else b""
    if not 1 < len(extension) <= min(_EXTENSION_MAX, limit - 1):
        extension = b""
    stem = name[: len(name) - len(extension)]
    # A cut inside a multi-byte character leaves an incomplete tail; "ignore" drops it
    # (the name came from a str, so no other byte can be invalid).
    kept = stem[: limit - len(extension)].decode("utf-8", "ignore").encode("utf-8")
    if not kept:
        kept, extension = name[:limit].decode("utf-8", "ignore").encode("utf-8"), b""
    return kept + extension


def seal_meta(content_key: bytes, ad: bytes, meta: Meta, nonce: bytes | None = None) -> bytes:
    """Seal ``meta`` into the 1064-byte ``sealed_meta`` (section 8.3).

    A name too long for the record is shortened at a UTF-8 character boundary, keeping its
    extension when it can. ``nonce`` is for known-answer vectors only; leave it ``None``.
    """
    _check_ad(ad)
    media_type = _check_media_type(meta.media_type)
    if not isinstance(meta.size, int) or not 0 <= meta.size <= MAX_CONTENT_BYTES:
        raise Rejected("meta: size out of range")
    try:
        name = meta.name.encode("utf-8")
    except UnicodeEncodeError:
        raise Rejected("meta: name is not valid Unicode") from None
    name = _shorten_name(name, META_RECORD_MAX - META_FIXED_BYTES - len(media_type))
    record = (
        struct.pack(">QH", meta.size, len(name)) + name + bytes((len(media_type),)) + media_type
    )
    padded = sodium_pad(record, META_BLOCK_BYTES)
    if nonce is None:
        nonce = bytes(nacl.utils.random(META_NONCE_BYTES))
    elif len(nonce) != META_NONCE_BYTES:
        raise Rejected("meta: nonce must be 24 bytes")
    sealed = crypto_aead_xchacha20poly1305_ietf_encrypt(padded, ad, nonce, _meta_key(content_key))
    return nonce + sealed


def open_meta(content_key: bytes, ad: bytes, sealed_meta: bytes) -> Meta:
    """Open and check a ``sealed_meta``; raise ``Rejected`` on any rule of section 8.3."""
    _check_ad(ad)
    if not isinstance(sealed_meta, bytes) or len(sealed_meta) != SEALED_META_BYTES:
        raise Rejected("meta: wrong length")
    nonce, sealed = sealed_meta[:META_NONCE_BYTES], sealed_meta[META_NONCE_BYTES:]
    try:
        padded = crypto_aead_xchacha20poly1305_ietf_decrypt(
            sealed, ad, nonce, _meta_key(content_key)
        )
    except nacl.exceptions.CryptoError:
        raise Rejected("meta: fails to authenticate") from None
    try:
        record = sodium_unpad(padded, META_BLOCK_BYTES)
    except nacl.exceptions.CryptoError:
        raise Rejected("meta: bad padding") from None
    if len(record) < 8 + 2:
        raise Rejected("meta: lengths overrun the record")
    size, name_length = struct.unpack_from(">QH", record)
    type_at = 10 + name_length
    if type_at >= len(record):
        raise Rejected("meta: lengths overrun the record")
    type_end = type_at + 1 + record[type_at]
    if type_end > len(record):
        raise Rejected("meta: lengths overrun the record")
    if type_end != len(record):
        raise Rejected("meta: bytes after the type")
    try:
        name = record[10:type_at].decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected("meta: name is not valid UTF-8") from None
    media_type = record[type_at + 1 : type_end]
    if not all(0x20 <= b <= 0x7E for b in media_type):
        raise Rejected("meta: media type is not printable ASCII")
    if size > MAX_CONTENT_BYTES:
        raise Rejected("meta: size out of range")
    return Meta(name=name, media_type=media_type.decode("ascii"), size=size)


# --- wraps -----------------------------------------------------------------------------


def wrap_key(content_key: bytes, recipient_public: bytes) -> bytes:
    """Wrap ``K`` to a recipient's X25519 public key: ``crypto_box_seal``, 80 bytes.

    The caller must have verified the recipient's directory entry (DESIGN 2.7).
    """
    if not isinstance(content_key, bytes) or len(content_key) != KEY_BYTES:
        raise Rejected("wrap: content key must be 32 bytes")
    if not isinstance(recipient_public, bytes) or len(recipient_public) != 32:
        raise Rejected("wrap: recipient public key must be 32 bytes")
    return bytes(crypto_box_seal(content_key, recipient_public))


def unwrap_key(
    wrap: bytes, recipient_private: bytes, recipient_public: bytes | None = None
) -> bytes:
    """Open a wrap with the recipient's X25519 secret key and return ``K``.

    The sealed box needs the public key too. It is derived from the secret unless given:
    a batch that opens many wraps with one key (a re-wrap) passes it to save one scalar
    multiplication per wrap. A wrong public key only makes the wrap fail to open.
    """
    if not isinstance(recipient_private, bytes) or len(recipient_private) != 32:
        raise Rejected("wrap: recipient secret key must be 32 bytes")
    if not isinstance(wrap, bytes) or len(wrap) != WRAP_BYTES:
        raise Rejected("wrap: wrong length")
    if recipient_public is None:
        public = crypto_scalarmult_base(recipient_private)
    elif isinstance(recipient_public, bytes) and len(recipient_public) == 32:
        public = recipient_public
    else:
        raise Rejected("wrap: recipient public key must be 32 bytes")
    try:
        content_key = crypto_box_seal_open(wrap, public, recipient_private)
    except nacl.exceptions.CryptoError:
        raise Rejected("wrap: does not open") from None
    if len(content_key) != KEY_BYTES:  # unreachable at 80 bytes; kept as the spec's rule
        raise Rejected("wrap: content is not 32 bytes")
    return bytes(content_key)


# --- signatures ------------------------------------------------------------------------


def signature_message(ad: bytes, sealed_meta: bytes, body_digest: bytes) -> bytes:
    """Return the signed message of section 8.5: prefix ‖ AD ‖ H(sealed_meta) ‖ H(blob)."""
    _check_ad(ad)
    if not isinstance(sealed_meta, bytes) or len(sealed_meta) != SEALED_META_BYTES:
        raise Rejected("signature: meta has the wrong length")
    if not isinstance(body_digest, bytes) or len(body_digest) != 32:
        raise Rejected("signature: body digest must be 32 bytes")
    return SIGNATURE_PREFIX + ad + blake2b_256(sealed_meta) + body_digest


def sign_item(
    signing_key: bytes | nacl.signing.SigningKey,
    ad: bytes,
    sealed_meta: bytes,
    body_digest: bytes,
) -> bytes:
    """Sign a reply or note with the journalist's Ed25519 key (a 32-byte seed or a key)."""
    if isinstance(signing_key, bytes):
        if len(signing_key) != 32:
            raise Rejected("signature: Ed25519 seed must be 32 bytes")
        signing_key = nacl.signing.SigningKey(signing_key)
    message = signature_message(ad, sealed_meta, body_digest)
    return bytes(signing_key.sign(message).signature)


def verify_item(
    signer_public: bytes,
    ad: bytes,
    sealed_meta: bytes,
    body_digest: bytes,
    signature: bytes,
) -> None:
    """Verify a reply's or note's signature against the signer's Ed25519 public key.

    The key must come from the signer's verified directory entry (DESIGN 2.7).
    """
    if not isinstance(signer_public, bytes) or len(signer_public) != 32:
        raise Rejected("signature: signer public key must be 32 bytes")
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_BYTES:
        raise Rejected("signature: wrong length")
    message = signature_message(ad, sealed_meta, body_digest)
    try:
        nacl.signing.VerifyKey(signer_public).verify(message, signature)
    except nacl.exceptions.CryptoError:
        raise Rejected("signature: does not verify") from None


# --- items held in memory --------------------------------------------------------------


@dataclass(frozen=True)
class SealedItem:
    """Everything stored for one item: the row's fields, its wraps and the blob.

    ``wraps`` maps a recipient's key id (16 bytes, docs/envelope.md section 3) to its wrap.
    To open an item, only the wrap for the opener's key is needed.
    """

    kind: Kind
    source_id: bytes
    item_id: bytes
    sealed_meta: bytes
    blob: bytes
    wraps: Mapping[bytes, bytes] = field(default_factory=dict)
    signature: bytes | None = None  # replies and notes only

    @property
    def ad(self) -> bytes:
        """The item's additional data."""
        return additional_data(self.kind, self.source_id, self.item_id)


@dataclass(frozen=True)
class OpenedItem:
    """An opened item: its meta and its whole content."""

    meta: Meta
    content: bytes

    @property
    def text(self) -> str:
        """The content as text; rejects anything but a text item in valid UTF-8."""
        if self.meta.media_type != TEXT_MEDIA_TYPE or self.meta.name:
            raise Rejected("item: not a text item")
        try:
            return self.content.decode("utf-8")
        except UnicodeDecodeError:
            raise Rejected("item: text is not valid UTF-8") from None


def seal_item(
    kind: Kind,
    source_id: bytes,
    item_id: bytes,
    content: bytes,
    recipients: Mapping[bytes, bytes],
    *,
    name: str = "",
    media_type: str = TEXT_MEDIA_TYPE,
    signing_key: bytes | nacl.signing.SigningKey | None = None,
) -> SealedItem:
    """Seal a whole in-memory item to every recipient (key id -> verified X25519 key).

    Replies and notes must be signed (``signing_key``: the journalist's Ed25519 seed or
    key); messages and files must not be.
    """
    kind = _kind(kind)
    if (kind in _SIGNED_KINDS) != (signing_key is not None):
        raise Rejected("signature: replies and notes are signed, messages and files are not")
    if not recipients:
        raise Rejected("wrap: an item needs at least one recipient")
    ad = additional_data(kind, source_id, item_id)
    content_key = new_content_key()
    blob = io.BytesIO()
    info = encrypt_body(content_key, ad, content, blob, digest=signing_key is not None)
    sealed_meta = seal_meta(content_key, ad, Meta(name, media_type, info.plain_length))
    wraps = {key_id: wrap_key(content_key, public) for key_id, public in recipients.items()}
    signature = None
    if signing_key is not None:
        assert info.digest is not None  # asked for above
        signature = sign_item(signing_key, ad, sealed_meta, info.digest)
    return SealedItem(kind, source_id, item_id, sealed_meta, blob.getvalue(), wraps, signature)


def seal_text(
    kind: Kind,
    source_id: bytes,
    item_id: bytes,
    text: str,
    recipients: Mapping[bytes, bytes],
    *,
    signing_key: bytes | nacl.signing.SigningKey | None = None,
) -> SealedItem:
    """Seal a text item (message, reply or note): empty name, ``TEXT_MEDIA_TYPE``."""
    try:
        content = text.encode("utf-8")
    except UnicodeEncodeError:
        raise Rejected("item: text is not valid Unicode") from None
    return seal_item(kind, source_id, item_id, content, recipients, signing_key=signing_key)


def open_item(
    item: SealedItem,
    key_id: bytes,
    recipient_private: bytes,
    *,
    signer_public: bytes | None = None,
) -> OpenedItem:
    """Open an in-memory item with the wrap for ``key_id`` and that key's X25519 secret.

    A reply or note must carry a signature that verifies against ``signer_public`` (from
    the signer's verified directory entry); a message or file must carry none. The
    signature is checked before the body is decrypted.
    """
    ad = item.ad
    wrap = item.wraps.get(key_id)
    if wrap is None:
        raise Rejected("wrap: none for this key")
    content_key = unwrap_key(wrap, recipient_private)
    meta = open_meta(content_key, ad, item.sealed_meta)
    if item.kind in _SIGNED_KINDS:
        if item.signature is None or signer_public is None:
            raise Rejected("signature: replies and notes must be signed")
        verify_item(signer_public, ad, item.sealed_meta, blake2b_256(item.blob), item.signature)
    elif item.signature is not None or signer_public is not None:
        raise Rejected("signature: messages and files carry no signature")
    reader = decrypt_body(content_key, ad, io.BytesIO(item.blob), meta.size)
    return OpenedItem(meta, b"".join(reader))


def open_text(
    item: SealedItem,
    key_id: bytes,
    recipient_private: bytes,
    *,
    signer_public: bytes | None = None,
) -> str:
    """Open a text item (see ``open_item``) and return its text."""
    return open_item(item, key_id, recipient_private, signer_public=signer_public).text
