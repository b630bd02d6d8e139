"""Hypothesis settings for the fuzz tests and the strategies they share.

Two profiles (see the package docstring): ``ci`` (the default: fixed examples, derandomized,
no example database, no deadline) and ``deep`` (``TIPBOX_FUZZ_PROFILE=deep``: random draws,
ten times the examples). Tests take their settings from :func:`fuzz`, which scales a
per-test example count by the profile.
"""

from __future__ import annotations

import os
from typing import Final

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

PROFILE_ENV: Final = "TIPBOX_FUZZ_PROFILE"
PG_URL_ENV: Final = "TIPBOX_TEST_DATABASE_URL"
_SUPPRESSED: Final = [
    # The app and its instance are built once per test and shared by its examples on
    # purpose: each example checks the state it left (row and file counts), not a fresh one.
    HealthCheck.function_scoped_fixture,
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
]

settings.register_profile(
    "tipbox-fuzz-ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=_SUPPRESSED,
)
settings.register_profile(
    "tipbox-fuzz-deep",
    derandomize=False,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=_SUPPRESSED,
)


def _profile() -> tuple[settings, int]:
    deep = os.environ.get(PROFILE_ENV) == "deep"
    name = "tipbox-fuzz-deep" if deep else "tipbox-fuzz-ci"
    return settings.get_profile(name), 10 if deep else 1


def fuzz(max_examples: int) -> settings:
    """Settings for one fuzz test: the profile, with ``max_examples`` (scaled by it)."""
    parent, scale = _profile()
    return settings(parent, max_examples=max_examples * scale)


# Pure parsers do not touch the database: they run in the SQLite run only.
pure_parser = pytest.mark.skipif(
    bool(os.environ.get(PG_URL_ENV)), reason="pure parser: fuzzed in the SQLite run"
)


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` with one to four mutations: bit flips, byte sets, truncation,
    extension, deletion, insertion, or a splice of another part of itself."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(
            st.sampled_from(["flip", "set", "truncate", "extend", "delete", "insert", "splice"])
        )
        size = len(data)
        if op in ("flip", "set") and size:
            at = draw(st.integers(0, size - 1))
            if op == "flip":
                data[at] ^= 1 << draw(st.integers(0, 7))
            else:
                data[at] = draw(st.integers(0, 255))
        elif op == "truncate":
            del data[draw(st.integers(0, size)) :]
        elif op == "extend":
            data += draw(st.binary(min_size=1, max_size=64))
        elif op == "delete" and size:
            start = draw(st.integers(0, size - 1))
            del data[start : start + draw(st.integers(1, 32))]
        elif op == "insert":
            at = draw(st.integers(0, size))
            data[at:at] = draw(st.binary(min_size=1, max_size=32))
        elif op == "splice" and size:
            start = draw(st.integers(0, size - 1))
            piece = bytes(data[start : start + draw(st.integers(1, 64))])
            at = draw(st.integers(0, size))
            data[at : at + len(piece)] = piece
    return bytes(data)


def hostile_bytes(max_size: int = 256) -> st.SearchStrategy[bytes]:
    """Random bytes, weighted towards the awkward: empty, NULs, high bytes, lone UTF-8
    continuation and lead bytes, CR/LF."""
    awkward = st.sampled_from(
        [b"\x00", b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\x80", b"\xe2\x80\xae", b"\r\n", b"\n"]
    )
    return st.one_of(
        st.binary(max_size=max_size),
        st.lists(st.one_of(awkward, st.binary(max_size=8)), max_size=max_size // 8).map(b"".join),
    )


def hostile_text(max_size: int = 200) -> st.SearchStrategy[str]:
    """Text with every kind of code point, including surrogates escaped from bad bytes,
    bidirectional controls, NULs, superscript digits and other look-alikes."""
    awkward = st.sampled_from(
        ["\x00", "\u202e", "\u200b", "\ufeff", "²", "\u0661", "\U0001f600", "\r\n", "%", "&", "'"]
    )
    return st.one_of(
        st.text(max_size=max_size),
        st.lists(st.one_of(awkward, st.text(max_size=6)), max_size=max_size // 4).map("".join),
    )
