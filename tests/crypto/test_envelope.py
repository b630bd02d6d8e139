"""The item envelope (docs/envelope.md, section 8): round trips and every rejection."""

from __future__ import annotations

import io
import os
import random
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import nacl.bindings as sodium
import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tipbox.crypto import envelope as env
from tipbox.crypto.envelope import Kind, Meta
from tipbox.crypto.errors import Rejected
from tipbox.crypto.kdf import CTX_CONTENT, blake2b_256, derive

KIB = 1024
MIB = 1024 * KIB
TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
TAG_PUSH = sodium.crypto_secretstream_xchacha20poly1305_TAG_PUSH
TAG_REKEY = sodium.crypto_secretstream_xchacha20poly1305_TAG_REKEY
TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL

SOURCE_ID = bytes.fromhex("00112233445566778899aabbccddeeff")
ITEM_ID = bytes.fromhex("ffeeddccbbaa99887766554433221100")
OTHER_ID = bytes(range(16))


def keypair() -> tuple[bytes, bytes]:
    """An X25519 (public, secret) pair made the way docs/envelope.md section 2 makes them."""
    secret = os.urandom(32)
    return sodium.crypto_scalarmult_base(secret), secret


def ad_for(kind: Kind = Kind.FILE, source_id: bytes = SOURCE_ID, item_id: bytes = ITEM_ID) -> bytes:
    return env.additional_data(kind, source_id, item_id)


def encrypt(key: bytes, ad: bytes, data: bytes) -> bytes:
    sink = io.BytesIO()
    env.encrypt_body(key, ad, data, sink)
    return sink.getvalue()


def decrypt(key: bytes, ad: bytes, blob: bytes, length: int) -> bytes:
    return b"".join(env.decrypt_body(key, ad, io.BytesIO(blob), length))


def raw_blob(key: bytes, chunks: list[tuple[bytes, bytes | None, int]]) -> bytes:
    """A secretstream made with raw libsodium: (plaintext, additional data, tag) per chunk."""
    body_key = derive(key, 1, CTX_CONTENT)
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    parts = [sodium.crypto_secretstream_xchacha20poly1305_init_push(state, body_key)]
    for message, ad, tag in chunks:
        parts.append(sodium.crypto_secretstream_xchacha20poly1305_push(state, message, ad, tag))
    return b"".join(parts)


def raw_meta(key: bytes, ad: bytes, padded: bytes) -> bytes:
    """A sealed meta around an arbitrary 1024-byte padded record, made with raw libsodium."""
    nonce = os.urandom(24)
    meta_key = derive(key, 2, CTX_CONTENT)
    return nonce + sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(padded, ad, nonce, meta_key)


def record(size: int, name: bytes, media_type: bytes) -> bytes:
    return struct.pack(">QH", size, len(name)) + name + bytes((len(media_type),)) + media_type


# --- padding and lengths ---------------------------------------------------------------

# Worked by hand from the formula of section 8.2: e = floor(log2 n), s = floor(log2 e) + 1,
# mask = 2^(e - s) - 1.
#   n <= 4096 -> 4096 (e = 12, s = 4, mask = 255, and 4096 is a multiple of 256)
#   4097      -> e = 12, mask = 255:    4097 rounded up to a multiple of 256 = 4352
#   65535     -> e = 15, s = 4, mask = 2047: rounded up to a multiple of 2048 = 65536
#   65536     -> e = 16, s = 5, mask = 2047: 65536
#   65537     -> e = 16, mask = 2047: 65536 + 2048 = 67584
#   10 MiB    -> e = 23, s = 5, mask = 2^18 - 1: 10 MiB = 40 * 2^18, unchanged
ROUND_TRIP_SIZES = [
    (0, 4096),
    (1, 4096),
    (4 * KIB - 1, 4096),
    (4 * KIB, 4096),
    (4 * KIB + 1, 4352),
    (64 * KIB - 1, 65536),
    (64 * KIB, 65536),
    (64 * KIB + 1, 67584),
    (10 * MIB, 10 * MIB),
]


@pytest.mark.parametrize(("length", "bucket"), ROUND_TRIP_SIZES)
def test_round_trip_and_bucket(length: int, bucket: int) -> None:
    key = env.new_content_key()
    ad = ad_for()
    data = os.urandom(length)
    sink = io.BytesIO()
    info = env.encrypt_body(key, ad, data, sink, digest=True)
    blob = sink.getvalue()
    chunks = -(-bucket // 65536)
    assert info.plain_length == length
    assert info.padded_length == env.padded_length(length) == bucket
    assert len(blob) == info.blob_length == 24 + bucket + 17 * chunks
    assert len(blob) == env.blob_length(length)
    assert info.digest == blake2b_256(blob)
    assert env.padded_length_of_blob(len(blob)) == bucket
    reader = env.decrypt_body(key, ad, io.BytesIO(blob), length, digest=True)
    assert b"".join(reader) == data
    assert reader.digest == info.digest


@given(st.integers(min_value=2, max_value=2**60))
def test_padme_properties(n: int) -> None:
    p = env.padme(n)
    assert n <= p <= n + n // 8  # at most 12.5 %, and 12 % on any practical size
    assert env.padme(p) == p
    e = n.bit_length() - 1
    assert p % (1 << (e - e.bit_length())) == 0  # low bits cleared, as the formula says


def test_padme_small_and_out_of_range() -> None:
    # n = 9: e = 3, s = 2, mask = 1, so 9 rounds to 10; below 8 nothing is rounded.
    assert [env.padme(n) for n in (2, 3, 4, 5, 7, 8, 9)] == [2, 3, 4, 5, 7, 8, 10]
    with pytest.raises(Rejected):
        env.padme(1)
    with pytest.raises(Rejected):
        env.padded_length(-1)
    with pytest.raises(Rejected):
        env.padded_length(2**53)
    assert env.padded_length(2**53 - 1) >= 2**53 - 1


@given(st.integers(min_value=0, max_value=2**53 - 1))
def test_blob_size_gives_back_its_bucket(length: int) -> None:
    size = env.blob_length(length)
    assert env.padded_length_of_blob(size) == env.padded_length(length)
    for neighbour in (size - 1, size + 1):  # buckets are at least 256 bytes apart
        with pytest.raises(Rejected, match="not a valid bucket"):
            env.padded_length_of_blob(neighbour)


@pytest.mark.parametrize("size", [0, 23, 24, 41, 4136, 4138, 4393 + 1, 65577 - 1, 67642 + 17])
def test_blob_size_not_a_bucket(size: int) -> None:
    with pytest.raises(Rejected, match="not a valid bucket"):
        env.padded_length_of_blob(size)


# --- additional data -------------------------------------------------------------------


def test_additional_data_layout() -> None:
    ad = env.additional_data(Kind.REPLY, SOURCE_ID, ITEM_ID)
    assert ad == b"tipbox.envelope\x00" + b"\x01\x03" + SOURCE_ID + ITEM_ID
    assert len(ad) == 50


@pytest.mark.parametrize(
    ("kind", "source_id", "item_id"),
    [
        (0, SOURCE_ID, ITEM_ID),
        (5, SOURCE_ID, ITEM_ID),
        (Kind.FILE, SOURCE_ID[:15], ITEM_ID),
        (Kind.FILE, SOURCE_ID, ITEM_ID + b"\x00"),
    ],
)
def test_additional_data_rejects(kind: int, source_id: bytes, item_id: bytes) -> None:
    with pytest.raises(Rejected):
        env.additional_data(kind, source_id, item_id)


def test_content_subkeys() -> None:
    key = env.new_content_key()
    body_key, meta_key = env.content_subkeys(key)
    assert body_key == derive(key, 1, b"tbcontn1")
    assert meta_key == derive(key, 2, b"tbcontn1")
    assert body_key != meta_key
    with pytest.raises(Rejected):
        env.content_subkeys(key[:31])


# --- streaming -------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    length=st.integers(min_value=0, max_value=300_000),
    pieces=st.lists(st.integers(min_value=0, max_value=100_000), max_size=30),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_streaming_in_random_pieces(length: int, pieces: list[int], seed: int) -> None:
    data = random.Random(seed).randbytes(length)
    key = env.new_content_key()
    ad = ad_for()
    sink = io.BytesIO()
    encryptor = env.BodyEncryptor(key, ad, sink, digest=True)
    pos = 0
    for size in pieces:
        encryptor.write(memoryview(data)[pos : pos + size])
        pos = min(length, pos + size)
    encryptor.write(data[pos:])
    info = encryptor.finish()
    blob = sink.getvalue()
    assert info.blob_length == len(blob) == env.blob_length(length)
    assert info.digest == blake2b_256(blob)
    assert decrypt(key, ad, blob, length) == data


def test_streaming_full_chunks_then_more() -> None:
    # A full chunk is held back until more content shows it is not the last one.
    key = env.new_content_key()
    ad = ad_for()
    data = os.urandom(65536 * 2)
    sink = io.BytesIO()
    env.encrypt_body(key, ad, [data[:10], data[10:65536], data[65536:]], sink)
    assert len(sink.getvalue()) == env.blob_length(len(data))
    assert decrypt(key, ad, sink.getvalue(), len(data)) == data


def test_encrypt_body_accepts_iterable_and_buffers() -> None:
    key = env.new_content_key()
    ad = ad_for()
    for data in (bytearray(b"abc"), memoryview(b"abc")):
        sink = io.BytesIO()
        env.encrypt_body(key, ad, data, sink)
        assert decrypt(key, ad, sink.getvalue(), 3) == b"abc"
    sink = io.BytesIO()
    env.encrypt_body(key, ad, (b"a", b"", b"bc"), sink)
    assert decrypt(key, ad, sink.getvalue(), 3) == b"abc"


def test_encryptor_misuse() -> None:
    encryptor = env.BodyEncryptor(env.new_content_key(), ad_for(), io.BytesIO())
    encryptor.finish()
    with pytest.raises(ValueError, match="after finish"):
        encryptor.write(b"x")
    with pytest.raises(ValueError, match="twice"):
        encryptor.finish()
    with pytest.raises(Rejected):
        env.BodyEncryptor(env.new_content_key(), b"\x00" * 50, io.BytesIO())
    with pytest.raises(Rejected):
        env.BodyEncryptor(b"short", ad_for(), io.BytesIO())


def test_reader_digest_only_when_complete() -> None:
    key = env.new_content_key()
    ad = ad_for()
    blob = encrypt(key, ad, b"hello")
    reader = env.decrypt_body(key, ad, io.BytesIO(blob), 5, digest=True)
    with pytest.raises(ValueError, match="digest"):
        _ = reader.digest
    assert list(reader) == [b"hello"]
    assert reader.digest == blake2b_256(blob)
    plain_reader = env.decrypt_body(key, ad, io.BytesIO(blob), 5)
    assert list(plain_reader) == [b"hello"]
    with pytest.raises(ValueError, match="digest"):
        _ = plain_reader.digest


class TrickleReader(io.RawIOBase):
    """A raw stream that returns at most 1000 bytes per read, as a socket may."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._data.read(min(size, 1000) if size >= 0 else 1000)


def test_reader_tolerates_short_reads() -> None:
    key = env.new_content_key()
    ad = ad_for()
    data = os.urandom(200_000)
    blob = encrypt(key, ad, data)
    assert b"".join(env.decrypt_body(key, ad, TrickleReader(blob), len(data))) == data


MEMORY_SCRIPT = textwrap.dedent(
    """
    import io, os, sys
    from tipbox.crypto import envelope as env

    def peak_kib():
        # VmHWM is this process's own peak: ru_maxrss would include the parent's size,
        # which Linux carries over a fork and exec.
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])

    total = int(sys.argv[1])
    path = sys.argv[2]
    piece = os.urandom(100_000)  # not a multiple of the chunk size, on purpose
    key = env.new_content_key()
    ad = env.additional_data(env.Kind.FILE, bytes(16), bytes(16))
    baseline = peak_kib()
    with open(path, "wb") as sink:
        encryptor = env.BodyEncryptor(key, ad, sink, digest=True)
        for _ in range(total // len(piece)):
            encryptor.write(piece)
        info = encryptor.finish()
    after_encrypt = peak_kib()
    with open(path, "rb") as blob:
        reader = env.decrypt_body(key, ad, blob, info.plain_length, digest=True)
        for _ in reader:
            pass
    assert reader.digest == info.digest
    after_decrypt = peak_kib()
    print(baseline, after_encrypt, after_decrypt)
    """
)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_constant_memory(tmp_path: Path) -> None:
    total = 256 * MIB
    env_vars = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, str(total), str(tmp_path / "blob")],
        capture_output=True,
        text=True,
        check=True,
        env=env_vars,
    )
    baseline, after_encrypt, after_decrypt = (int(v) for v in result.stdout.split())
    # In KiB: a 256 MiB stream may grow the peak by a few chunks only.
    assert after_encrypt - baseline < 8 * KIB
    assert after_decrypt - baseline < 8 * KIB
    assert after_decrypt < 64 * KIB


# --- body rejections -------------------------------------------------------------------

BODY_KEY = env.new_content_key()
BODY_AD = ad_for()
BODY_DATA = os.urandom(65536 + 100)  # two chunks: P = 67584
BODY_BLOB = encrypt(BODY_KEY, BODY_AD, BODY_DATA)


def assert_body_rejected(
    blob: bytes, *, length: int = len(BODY_DATA), match: str = "body: "
) -> None:
    with pytest.raises(Rejected, match=match):
        decrypt(BODY_KEY, BODY_AD, blob, length)


@settings(max_examples=200, deadline=None)
@given(position=st.integers(min_value=0, max_value=len(BODY_BLOB) - 1), flip=st.integers(1, 255))
def test_body_any_byte_change_rejected(position: int, flip: int) -> None:
    blob = bytearray(BODY_BLOB)
    blob[position] ^= flip
    assert_body_rejected(bytes(blob))


@settings(max_examples=200, deadline=None)
@given(cut=st.integers(min_value=0, max_value=len(BODY_BLOB) - 1))
def test_body_any_truncation_rejected(cut: int) -> None:
    assert_body_rejected(BODY_BLOB[:cut])


def test_body_dropped_final_chunk_rejected() -> None:
    assert_body_rejected(BODY_BLOB[: 24 + 65553], match="without TAG_FINAL")


def test_body_all_message_tags_rejected() -> None:
    padded = BODY_DATA + bytes(67584 - len(BODY_DATA))
    blob = raw_blob(
        BODY_KEY, [(padded[:65536], BODY_AD, TAG_MESSAGE), (padded[65536:], None, TAG_MESSAGE)]
    )
    assert_body_rejected(blob, match="without TAG_FINAL")
    single = raw_blob(BODY_KEY, [(b"hi" + bytes(4094), BODY_AD, TAG_MESSAGE)])
    assert_body_rejected(single, length=2, match="without TAG_FINAL")


@pytest.mark.parametrize("extra", [b"\x00", os.urandom(17), os.urandom(65553)])
def test_body_bytes_after_final_rejected(extra: bytes) -> None:
    assert_body_rejected(BODY_BLOB + extra, match="bytes after TAG_FINAL")


def test_body_chunk_after_final_rejected() -> None:
    blob = raw_blob(
        BODY_KEY, [(b"hi" + bytes(4094), BODY_AD, TAG_FINAL), (bytes(10), None, TAG_FINAL)]
    )
    assert_body_rejected(blob, length=2, match="bytes after TAG_FINAL")


@pytest.mark.parametrize("where", [2, 1000, 4095])
def test_body_non_zero_padding_rejected(where: int) -> None:
    padded = bytearray(b"hi" + bytes(4094))
    padded[where] = 1
    blob = raw_blob(BODY_KEY, [(bytes(padded), BODY_AD, TAG_FINAL)])
    assert_body_rejected(blob, length=2, match="non-zero padding")


def test_body_non_zero_padding_in_a_later_chunk_rejected() -> None:
    padded = bytearray(BODY_DATA + bytes(67584 - len(BODY_DATA)))
    padded[-1] = 0x80
    blob = raw_blob(
        BODY_KEY, [(bytes(padded[:65536]), BODY_AD, TAG_MESSAGE), (bytes(padded[65536:]), None, 3)]
    )
    assert_body_rejected(blob, match="non-zero padding")


@pytest.mark.parametrize(
    ("length", "check"),
    [
        # A smaller bucket makes the reader expect a shorter first chunk: it cannot open.
        (0, "fails to authenticate"),
        # 65536 is a bucket of its own: all of it is read, and more follows.
        (65536, "padded length"),
        # Larger buckets: the stream ends final, but short of P.
        (67584 + 1, "padded length"),
        (2**40, "padded length"),
    ],
)
def test_body_length_from_another_bucket_rejected(length: int, check: str) -> None:
    # 65537..67584 share this blob's bucket P = 67584; any other L does not.
    assert_body_rejected(BODY_BLOB, length=length, match=check)


def test_body_padded_length_not_a_bucket_rejected() -> None:
    # An unpadded stream is well-formed for libsodium, but 4500 is no bucket.
    blob = raw_blob(BODY_KEY, [(os.urandom(4500), BODY_AD, TAG_FINAL)])
    assert_body_rejected(blob, length=4500, match="padded length")


@pytest.mark.parametrize("tag", [TAG_PUSH, TAG_REKEY])
def test_body_push_and_rekey_tags_rejected(tag: int) -> None:
    padded = BODY_DATA + bytes(67584 - len(BODY_DATA))
    blob = raw_blob(BODY_KEY, [(padded[:65536], BODY_AD, tag), (padded[65536:], None, TAG_FINAL)])
    assert_body_rejected(blob, match="tag not allowed")


def test_body_short_non_final_chunk_rejected() -> None:
    blob = raw_blob(
        BODY_KEY, [(b"hi" + bytes(2046), BODY_AD, TAG_MESSAGE), (bytes(2048), None, TAG_FINAL)]
    )
    # The reader takes 4,113 bytes as the first chunk, so it spans both and fails.
    assert_body_rejected(blob, length=2, match="fails to authenticate")
    # A chunk of the size the last should have, not final, with more after it: the
    # stream is longer than P.
    blob = raw_blob(
        BODY_KEY, [(b"hi" + bytes(4094), BODY_AD, TAG_MESSAGE), (bytes(10), None, TAG_FINAL)]
    )
    assert_body_rejected(blob, length=2, match="padded length")


def test_body_additional_data_placement_rejected() -> None:
    padded = BODY_DATA + bytes(67584 - len(BODY_DATA))
    no_ad_first = raw_blob(
        BODY_KEY, [(padded[:65536], None, TAG_MESSAGE), (padded[65536:], None, TAG_FINAL)]
    )
    assert_body_rejected(no_ad_first, match="fails to authenticate")
    ad_on_both = raw_blob(
        BODY_KEY, [(padded[:65536], BODY_AD, TAG_MESSAGE), (padded[65536:], BODY_AD, TAG_FINAL)]
    )
    assert_body_rejected(ad_on_both, match="fails to authenticate")
    # The same layout with AD on the first chunk only is exactly what the writer does.
    good = raw_blob(
        BODY_KEY, [(padded[:65536], BODY_AD, TAG_MESSAGE), (padded[65536:], None, TAG_FINAL)]
    )
    assert decrypt(BODY_KEY, BODY_AD, good, len(BODY_DATA)) == BODY_DATA


def test_body_empty_final_chunk_rejected() -> None:
    data = os.urandom(65536)  # P = 65536: one full chunk, the writer tags it final
    blob = raw_blob(BODY_KEY, [(data, BODY_AD, TAG_MESSAGE), (b"", None, TAG_FINAL)])
    # All of P is read before the empty chunk, so it is a byte too many.
    with pytest.raises(Rejected, match="padded length"):
        decrypt(BODY_KEY, BODY_AD, blob, len(data))


@pytest.mark.parametrize("size", [0, 10, 24, 40])
def test_body_too_short_rejected(size: int) -> None:
    assert_body_rejected(BODY_BLOB[:size], match="too short")


def test_body_wrong_key_rejected() -> None:
    with pytest.raises(Rejected, match="fails to authenticate"):
        decrypt(env.new_content_key(), BODY_AD, BODY_BLOB, len(BODY_DATA))


@pytest.mark.parametrize(
    "other_ad",
    [
        ad_for(source_id=OTHER_ID),
        ad_for(item_id=OTHER_ID),
        ad_for(kind=Kind.MESSAGE),
        ad_for(kind=Kind.REPLY),
    ],
    ids=["moved-source", "moved-item", "kind-message", "kind-reply"],
)
def test_body_moved_or_relabelled_rejected(other_ad: bytes) -> None:
    with pytest.raises(Rejected, match="fails to authenticate"):
        decrypt(BODY_KEY, other_ad, BODY_BLOB, len(BODY_DATA))


def version_2_ad(kind: Kind = Kind.FILE) -> bytes:
    return b"tipbox.envelope\x00" + bytes((2, kind)) + SOURCE_ID + ITEM_ID


def test_wrong_version_rejected() -> None:
    # A version-2 writer (made here with raw libsodium) is not opened as version 1.
    v2 = version_2_ad()
    blob = raw_blob(BODY_KEY, [(b"hi" + bytes(4094), v2, TAG_FINAL)])
    with pytest.raises(Rejected, match="fails to authenticate"):
        decrypt(BODY_KEY, BODY_AD, blob, 2)
    sealed = raw_meta(BODY_KEY, v2, sodium.sodium_pad(record(2, b"", b"text/plain"), 1024))
    with pytest.raises(Rejected, match="fails to authenticate"):
        env.open_meta(BODY_KEY, BODY_AD, sealed)
    # And a version-2 AD is refused outright by every entry point.
    with pytest.raises(Rejected, match="unsupported version"):
        decrypt(BODY_KEY, v2, blob, 2)
    with pytest.raises(Rejected, match="unsupported version"):
        env.open_meta(BODY_KEY, v2, sealed)


def test_reader_rejects_malformed_ad_and_length() -> None:
    for bad_ad in (BODY_AD[:49], b"x" * 50, BODY_AD[:17] + b"\x09" + BODY_AD[18:]):
        with pytest.raises(Rejected, match="additional data"):
            env.decrypt_body(BODY_KEY, bad_ad, io.BytesIO(BODY_BLOB), len(BODY_DATA))
    with pytest.raises(Rejected, match="content length"):
        env.decrypt_body(BODY_KEY, BODY_AD, io.BytesIO(BODY_BLOB), -1)


# --- meta ------------------------------------------------------------------------------

META_KEY = env.new_content_key()
META_AD = ad_for()
META = Meta(name="report.pdf", media_type="application/pdf", size=123_456)
SEALED_META = env.seal_meta(META_KEY, META_AD, META)


def test_meta_round_trip() -> None:
    assert len(SEALED_META) == 1064
    assert env.open_meta(META_KEY, META_AD, SEALED_META) == META
    text = Meta("", env.TEXT_MEDIA_TYPE, 0)
    assert env.open_meta(META_KEY, META_AD, env.seal_meta(META_KEY, META_AD, text)) == text
    unicode_name = Meta("Отчёт — қазақша 📎.docx", "application/octet-stream", 2**53 - 1)
    sealed = env.seal_meta(META_KEY, META_AD, unicode_name)
    assert env.open_meta(META_KEY, META_AD, sealed) == unicode_name


def test_meta_deterministic_with_nonce() -> None:
    nonce = bytes(24)
    one = env.seal_meta(META_KEY, META_AD, META, nonce)
    assert one == env.seal_meta(META_KEY, META_AD, META, nonce)
    assert one[:24] == nonce
    assert SEALED_META[:24] != nonce  # a random nonce otherwise
    with pytest.raises(Rejected, match="nonce"):
        env.seal_meta(META_KEY, META_AD, META, bytes(12))


def test_meta_hides_name_length() -> None:
    short = env.seal_meta(META_KEY, META_AD, Meta("a", "x/y", 1))
    long = env.seal_meta(META_KEY, META_AD, Meta("a" * 900, "x/y", 1))
    assert len(short) == len(long) == 1064


def name_after_sealing(name: str, media_type: str = "application/pdf") -> str:
    sealed = env.seal_meta(META_KEY, META_AD, Meta(name, media_type, 1))
    return env.open_meta(META_KEY, META_AD, sealed).name


def test_meta_long_name_keeps_extension() -> None:
    limit = 1012 - len("application/pdf")  # 997 bytes of name
    name = name_after_sealing("x" * 2000 + ".pdf")
    assert name == "x" * (limit - 4) + ".pdf"
    assert len(name.encode()) == limit


def test_meta_long_name_cut_at_character_boundary() -> None:
    limit = 1012 - len("application/pdf")
    # "ж" is 2 bytes and "📎" 4 bytes: the cut lands inside a character and drops it.
    for char in ("ж", "📎", "€"):
        name = name_after_sealing("a" + char * 1000 + ".pdf")
        assert name.endswith(".pdf")
        stem = name[:-4]
        assert set(stem[1:]) == {char}
        assert limit - len(char.encode()) < len(name.encode()) <= limit


def test_meta_long_name_without_usable_extension() -> None:
    limit = 1012 - len("application/pdf")
    assert name_after_sealing("y" * 1500) == "y" * limit
    long_extension = "z" * 1000 + "." + "e" * 100  # "extension" of 101 bytes: just text
    assert name_after_sealing(long_extension) == long_extension[:limit]
    assert name_after_sealing("." + "h" * 1200) == ("." + "h" * 1200)[:limit]


def test_meta_long_type_leaves_less_name() -> None:
    media_type = "t" * 255
    name = name_after_sealing("n" * 1000, media_type)
    assert len(name) == 1012 - 255


@pytest.mark.parametrize(
    "meta",
    [
        Meta("a", "text/plain\n", 1),
        Meta("a", "тип", 1),
        Meta("a", "t" * 256, 1),
        Meta("a", "x/y", -1),
        Meta("a", "x/y", 2**53),
        Meta("\ud800", "x/y", 1),
    ],
    ids=["control-in-type", "non-ascii-type", "type-too-long", "negative", "huge", "surrogate"],
)
def test_meta_writer_refuses(meta: Meta) -> None:
    with pytest.raises(Rejected):
        env.seal_meta(META_KEY, META_AD, meta)


@settings(max_examples=200, deadline=None)
@given(position=st.integers(min_value=0, max_value=1063), flip=st.integers(1, 255))
def test_meta_any_byte_change_rejected(position: int, flip: int) -> None:
    sealed = bytearray(SEALED_META)
    sealed[position] ^= flip
    with pytest.raises(Rejected):
        env.open_meta(META_KEY, META_AD, bytes(sealed))


@settings(max_examples=100, deadline=None)
@given(cut=st.integers(min_value=0, max_value=1063))
def test_meta_any_truncation_rejected(cut: int) -> None:
    with pytest.raises(Rejected, match="wrong length"):
        env.open_meta(META_KEY, META_AD, SEALED_META[:cut])


def test_meta_too_long_rejected() -> None:
    with pytest.raises(Rejected, match="wrong length"):
        env.open_meta(META_KEY, META_AD, SEALED_META + b"\x00")


@pytest.mark.parametrize(
    "other_ad",
    [
        ad_for(source_id=OTHER_ID),
        ad_for(item_id=OTHER_ID),
        ad_for(kind=Kind.MESSAGE),
        ad_for(kind=Kind.NOTE),
    ],
    ids=["moved-source", "moved-item", "kind-message", "kind-note"],
)
def test_meta_moved_or_relabelled_rejected(other_ad: bytes) -> None:
    with pytest.raises(Rejected, match="fails to authenticate"):
        env.open_meta(META_KEY, other_ad, SEALED_META)


def test_meta_wrong_key_rejected() -> None:
    with pytest.raises(Rejected, match="fails to authenticate"):
        env.open_meta(env.new_content_key(), META_AD, SEALED_META)


def padded_record(rec: bytes) -> bytes:
    return sodium.sodium_pad(rec, 1024)


@pytest.mark.parametrize(
    ("padded", "check"),
    [
        (bytes(1024), "bad padding"),
        (b"\x80" + bytes(1023), "overrun"),  # an empty record
        (padded_record(struct.pack(">Q", 1)), "overrun"),
        (padded_record(struct.pack(">QH", 1, 5) + b"abc"), "overrun"),
        (padded_record(struct.pack(">QH", 1, 3) + b"abc"), "overrun"),  # no type length
        (padded_record(record(1, b"abc", b"x/y")[:-1]), "overrun"),
        (padded_record(record(1, b"abc", b"x/y") + b"\x00"), "bytes after the type"),
        (padded_record(record(1, b"\xff\xfe", b"x/y")), "not valid UTF-8"),
        (padded_record(record(1, b"\xed\xa0\x80", b"x/y")), "not valid UTF-8"),  # surrogate
        (padded_record(record(1, b"a", b"x/\x7f")), "not printable"),
        (padded_record(record(1, b"a", b"x/\x1f")), "not printable"),
        (padded_record(record(1, b"a", b"x/\xc3\xa9")), "not printable"),
        (padded_record(record(2**53, b"a", b"x/y")), "size out of range"),
        (padded_record(record(2**64 - 1, b"a", b"x/y")), "size out of range"),
    ],
)
def test_meta_reader_rejects(padded: bytes, check: str) -> None:
    sealed = raw_meta(META_KEY, META_AD, padded)
    with pytest.raises(Rejected, match=check):
        env.open_meta(META_KEY, META_AD, sealed)


def test_meta_reader_accepts_edges() -> None:
    # Printable ASCII edges, an empty type and the largest size are all acceptable.
    for rec, expected in [
        (record(2**53 - 1, b"", b" ~"), Meta("", " ~", 2**53 - 1)),
        (record(0, b"n", b""), Meta("n", "", 0)),
        (record(5, b"a" * 1012, b""), Meta("a" * 1012, "", 5)),
    ]:
        sealed = raw_meta(META_KEY, META_AD, padded_record(rec))
        assert env.open_meta(META_KEY, META_AD, sealed) == expected


# --- wraps -----------------------------------------------------------------------------

RECIPIENT_PUBLIC, RECIPIENT_SECRET = keypair()
WRAPPED_KEY = env.new_content_key()
WRAP = env.wrap_key(WRAPPED_KEY, RECIPIENT_PUBLIC)


def test_wrap_round_trip() -> None:
    assert len(WRAP) == 80
    assert env.unwrap_key(WRAP, RECIPIENT_SECRET) == WRAPPED_KEY
    assert env.WRAP_ALGORITHM == "x25519-sealedbox-v1"


def test_unwrap_with_public_key_given() -> None:
    assert env.unwrap_key(WRAP, RECIPIENT_SECRET, RECIPIENT_PUBLIC) == WRAPPED_KEY
    other_public, _ = keypair()
    with pytest.raises(Rejected, match="does not open"):
        env.unwrap_key(WRAP, RECIPIENT_SECRET, other_public)
    with pytest.raises(Rejected, match="public key"):
        env.unwrap_key(WRAP, RECIPIENT_SECRET, RECIPIENT_PUBLIC[:31])


def test_wrap_other_recipient_rejected() -> None:
    _, other_secret = keypair()
    with pytest.raises(Rejected, match="does not open"):
        env.unwrap_key(WRAP, other_secret)


@settings(max_examples=200, deadline=None)
@given(position=st.integers(min_value=0, max_value=79), flip=st.integers(1, 255))
def test_wrap_any_byte_change_rejected(position: int, flip: int) -> None:
    wrap = bytearray(WRAP)
    wrap[position] ^= flip
    with pytest.raises(Rejected):
        env.unwrap_key(bytes(wrap), RECIPIENT_SECRET)


@given(cut=st.integers(min_value=0, max_value=79))
def test_wrap_any_truncation_rejected(cut: int) -> None:
    with pytest.raises(Rejected, match="wrong length"):
        env.unwrap_key(WRAP[:cut], RECIPIENT_SECRET)


def test_wrap_wrong_sizes_rejected() -> None:
    # A sealed box of a 33-byte "key" opens, but is not a wrap.
    with pytest.raises(Rejected, match="wrong length"):
        env.unwrap_key(sodium.crypto_box_seal(bytes(33), RECIPIENT_PUBLIC), RECIPIENT_SECRET)
    with pytest.raises(Rejected, match="secret key"):
        env.unwrap_key(WRAP, RECIPIENT_SECRET[:31])
    with pytest.raises(Rejected, match="content key"):
        env.wrap_key(WRAPPED_KEY[:31], RECIPIENT_PUBLIC)
    with pytest.raises(Rejected, match="public key"):
        env.wrap_key(WRAPPED_KEY, RECIPIENT_PUBLIC + b"\x00")


# --- signatures and in-memory items ----------------------------------------------------

JOURNALIST_SEED = os.urandom(32)
JOURNALIST = nacl.signing.SigningKey(JOURNALIST_SEED)
JOURNALIST_PUBLIC = bytes(JOURNALIST.verify_key)
OTHER_JOURNALIST = nacl.signing.SigningKey.generate()
NEWSROOM_KEY_ID = bytes.fromhex("aa" * 16)
SOURCE_KEY_ID = bytes.fromhex("bb" * 16)
NEWSROOM_PUBLIC, NEWSROOM_SECRET = keypair()
SOURCE_PUBLIC, SOURCE_SECRET = keypair()
RECIPIENTS = {NEWSROOM_KEY_ID: NEWSROOM_PUBLIC, SOURCE_KEY_ID: SOURCE_PUBLIC}

REPLY = env.seal_text(
    Kind.REPLY, SOURCE_ID, ITEM_ID, "Спасибо, we read it.", RECIPIENTS, signing_key=JOURNALIST
)


def test_signature_message_layout() -> None:
    digest = blake2b_256(REPLY.blob)
    message = env.signature_message(REPLY.ad, REPLY.sealed_meta, digest)
    assert message == (
        b"tipbox.signature.v1\x00" + REPLY.ad + blake2b_256(REPLY.sealed_meta) + digest
    )
    assert len(message) == 20 + 50 + 32 + 32


def test_sign_with_seed_or_key_and_verify() -> None:
    digest = blake2b_256(REPLY.blob)
    by_seed = env.sign_item(JOURNALIST_SEED, REPLY.ad, REPLY.sealed_meta, digest)
    assert by_seed == REPLY.signature  # Ed25519 is deterministic
    env.verify_item(JOURNALIST_PUBLIC, REPLY.ad, REPLY.sealed_meta, digest, by_seed)
    with pytest.raises(Rejected, match="seed"):
        env.sign_item(JOURNALIST_SEED[:16], REPLY.ad, REPLY.sealed_meta, digest)


def test_reply_round_trip_for_both_recipients() -> None:
    for key_id, secret in ((NEWSROOM_KEY_ID, NEWSROOM_SECRET), (SOURCE_KEY_ID, SOURCE_SECRET)):
        text = env.open_text(REPLY, key_id, secret, signer_public=JOURNALIST_PUBLIC)
        assert text == "Спасибо, we read it."
    opened = env.open_item(REPLY, SOURCE_KEY_ID, SOURCE_SECRET, signer_public=JOURNALIST_PUBLIC)
    assert opened.meta == Meta("", env.TEXT_MEDIA_TYPE, len("Спасибо, we read it.".encode()))


def test_reply_signed_by_another_journalist_rejected() -> None:
    forged = env.seal_text(
        Kind.REPLY, SOURCE_ID, ITEM_ID, "pretend", RECIPIENTS, signing_key=OTHER_JOURNALIST
    )
    with pytest.raises(Rejected, match="does not verify"):
        env.open_text(forged, SOURCE_KEY_ID, SOURCE_SECRET, signer_public=JOURNALIST_PUBLIC)
    # Also when only the signature is swapped onto a genuine reply.
    digest = blake2b_256(REPLY.blob)
    other = env.sign_item(OTHER_JOURNALIST, REPLY.ad, REPLY.sealed_meta, digest)
    with pytest.raises(Rejected, match="does not verify"):
        env.verify_item(JOURNALIST_PUBLIC, REPLY.ad, REPLY.sealed_meta, digest, other)


def test_reply_without_signature_rejected() -> None:
    unsigned = env.SealedItem(
        REPLY.kind, REPLY.source_id, REPLY.item_id, REPLY.sealed_meta, REPLY.blob, REPLY.wraps
    )
    with pytest.raises(Rejected, match="must be signed"):
        env.open_text(unsigned, SOURCE_KEY_ID, SOURCE_SECRET, signer_public=JOURNALIST_PUBLIC)
    with pytest.raises(Rejected, match="must be signed"):
        env.open_text(REPLY, SOURCE_KEY_ID, SOURCE_SECRET)


@settings(max_examples=100, deadline=None)
@given(position=st.integers(min_value=0, max_value=63), flip=st.integers(1, 255))
def test_signature_any_byte_change_rejected(position: int, flip: int) -> None:
    assert REPLY.signature is not None
    signature = bytearray(REPLY.signature)
    signature[position] ^= flip
    with pytest.raises(Rejected, match="does not verify"):
        env.verify_item(
            JOURNALIST_PUBLIC,
            REPLY.ad,
            REPLY.sealed_meta,
            blake2b_256(REPLY.blob),
            bytes(signature),
        )


@given(cut=st.integers(min_value=0, max_value=63))
def test_signature_any_truncation_rejected(cut: int) -> None:
    assert REPLY.signature is not None
    with pytest.raises(Rejected, match="wrong length"):
        env.verify_item(
            JOURNALIST_PUBLIC,
            REPLY.ad,
            REPLY.sealed_meta,
            blake2b_256(REPLY.blob),
            REPLY.signature[:cut],
        )


def replace(item: env.SealedItem, **changes: object) -> env.SealedItem:
    fields = {
        "kind": item.kind,
        "source_id": item.source_id,
        "item_id": item.item_id,
        "sealed_meta": item.sealed_meta,
        "blob": item.blob,
        "wraps": item.wraps,
        "signature": item.signature,
    }
    fields.update(changes)
    return env.SealedItem(**fields)  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_reply_any_change_to_a_part_rejected(data: st.DataObject) -> None:
    """A byte changed or cut anywhere in a signed reply's meta, blob or wrap is rejected."""
    part = data.draw(st.sampled_from(["sealed_meta", "blob", "wrap"]))
    value = REPLY.wraps[SOURCE_KEY_ID] if part == "wrap" else getattr(REPLY, part)
    if data.draw(st.booleans()):
        position = data.draw(st.integers(0, len(value) - 1))
        changed = bytearray(value)
        changed[position] ^= data.draw(st.integers(1, 255))
        new = bytes(changed)
    else:
        new = value[: data.draw(st.integers(0, len(value) - 1))]
    item = (
        replace(REPLY, wraps={SOURCE_KEY_ID: new})
        if part == "wrap"
        else replace(REPLY, **{part: new})
    )
    with pytest.raises(Rejected):
        env.open_text(item, SOURCE_KEY_ID, SOURCE_SECRET, signer_public=JOURNALIST_PUBLIC)


@pytest.mark.parametrize(
    "changes",
    [
        {"source_id": OTHER_ID},
        {"item_id": OTHER_ID},
        {"kind": Kind.NOTE},
        {"kind": Kind.MESSAGE, "signature": None},
    ],
    ids=["moved-source", "moved-item", "reply-as-note", "reply-as-message"],
)
def test_item_moved_or_relabelled_rejected(changes: dict[str, object]) -> None:
    item = replace(REPLY, **changes)
    signer = JOURNALIST_PUBLIC if item.kind in (Kind.REPLY, Kind.NOTE) else None
    with pytest.raises(Rejected):
        env.open_text(item, SOURCE_KEY_ID, SOURCE_SECRET, signer_public=signer)


def test_message_round_trip_and_no_signature() -> None:
    message = env.seal_text(
        Kind.MESSAGE, SOURCE_ID, ITEM_ID, "", {NEWSROOM_KEY_ID: NEWSROOM_PUBLIC}
    )
    assert message.signature is None
    assert set(message.wraps) == {NEWSROOM_KEY_ID}
    assert env.open_text(message, NEWSROOM_KEY_ID, NEWSROOM_SECRET) == ""
    with pytest.raises(Rejected, match="none for this key"):
        env.open_text(message, SOURCE_KEY_ID, SOURCE_SECRET)
    with pytest.raises(Rejected, match="carry no signature"):
        env.open_text(message, NEWSROOM_KEY_ID, NEWSROOM_SECRET, signer_public=JOURNALIST_PUBLIC)
    with pytest.raises(Rejected, match="carry no signature"):
        env.open_text(replace(message, signature=bytes(64)), NEWSROOM_KEY_ID, NEWSROOM_SECRET)


def test_note_round_trip() -> None:
    note = env.seal_text(
        Kind.NOTE,
        SOURCE_ID,
        ITEM_ID,
        "check with legal",
        {NEWSROOM_KEY_ID: NEWSROOM_PUBLIC},
        signing_key=JOURNALIST_SEED,
    )
    assert (
        env.open_text(note, NEWSROOM_KEY_ID, NEWSROOM_SECRET, signer_public=JOURNALIST_PUBLIC)
        == "check with legal"
    )


def test_seal_item_file_and_open_text_refuses_it() -> None:
    content = os.urandom(70_000)
    item = env.seal_item(
        Kind.FILE,
        SOURCE_ID,
        ITEM_ID,
        content,
        {NEWSROOM_KEY_ID: NEWSROOM_PUBLIC},
        name="photo.jpg",
        media_type="image/jpeg",
    )
    assert len(item.blob) == env.blob_length(70_000)
    opened = env.open_item(item, NEWSROOM_KEY_ID, NEWSROOM_SECRET)
    assert opened.content == content
    assert opened.meta == Meta("photo.jpg", "image/jpeg", 70_000)
    with pytest.raises(Rejected, match="not a text item"):
        env.open_text(item, NEWSROOM_KEY_ID, NEWSROOM_SECRET)


def test_open_text_rejects_invalid_utf8() -> None:
    item = env.seal_item(
        Kind.MESSAGE, SOURCE_ID, ITEM_ID, b"\xff\xfe", {NEWSROOM_KEY_ID: NEWSROOM_PUBLIC}
    )
    with pytest.raises(Rejected, match="not valid UTF-8"):
        env.open_text(item, NEWSROOM_KEY_ID, NEWSROOM_SECRET)


def test_seal_item_refuses_misuse() -> None:
    with pytest.raises(Rejected, match="signed"):
        env.seal_text(Kind.REPLY, SOURCE_ID, ITEM_ID, "x", RECIPIENTS)
    with pytest.raises(Rejected, match="signed"):
        env.seal_text(Kind.MESSAGE, SOURCE_ID, ITEM_ID, "x", RECIPIENTS, signing_key=JOURNALIST)
    with pytest.raises(Rejected, match="recipient"):
        env.seal_text(Kind.MESSAGE, SOURCE_ID, ITEM_ID, "x", {})
    with pytest.raises(Rejected, match="Unicode"):
        env.seal_text(Kind.MESSAGE, SOURCE_ID, ITEM_ID, "\udc80", RECIPIENTS)
    with pytest.raises(Rejected, match="kind"):
        env.seal_text(7, SOURCE_ID, ITEM_ID, "x", RECIPIENTS)  # type: ignore[arg-type]


def test_streaming_server_path_composes() -> None:
    """The server path: stream the body, then seal the meta once the size is known."""
    ad = env.additional_data(Kind.FILE, SOURCE_ID, ITEM_ID)
    key = env.new_content_key()
    sink = io.BytesIO()
    encryptor = env.BodyEncryptor(key, ad, sink)
    for piece in (b"%PDF-1.7\n", os.urandom(5000), b"%%EOF"):
        encryptor.write(piece)
    info = encryptor.finish()
    sealed_meta = env.seal_meta(key, ad, Meta("leak.pdf", "application/pdf", info.plain_length))
    item = env.SealedItem(
        Kind.FILE,
        SOURCE_ID,
        ITEM_ID,
        sealed_meta,
        sink.getvalue(),
        {NEWSROOM_KEY_ID: env.wrap_key(key, NEWSROOM_PUBLIC)},
    )
    opened = env.open_item(item, NEWSROOM_KEY_ID, NEWSROOM_SECRET)
    assert opened.content.startswith(b"%PDF-1.7\n")
    assert opened.content.endswith(b"%%EOF")
    assert opened.meta.size == info.plain_length == 5014
