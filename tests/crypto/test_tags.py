"""Tags (docs/envelope.md 12): known-answer vectors, the reader's rejections, the writer's rules."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tipbox.crypto import tags
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import Role

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
CASES: dict[str, Any] = json.loads((VECTORS / "tags.json").read_text(encoding="utf-8"))
KEYS = tags.metadata_keys(bytes.fromhex(CASES["metadata_seed"]))
SOURCE = bytes.fromhex(CASES["valid"][0]["source_id"])


def test_vectors_are_what_the_generator_makes() -> None:
    spec = importlib.util.spec_from_file_location("make_tags", VECTORS / "make_tags.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.render() == (VECTORS / "tags.json").read_text(encoding="utf-8")


def test_derived_keys() -> None:
    assert KEYS.keypair.role == Role.METADATA
    assert KEYS.keypair.x25519_public.hex() == CASES["x25519_public"]
    assert KEYS.key_id.hex() == CASES["key_id"]
    assert KEYS.tag_key.hex() == CASES["tag_key"]
    assert KEYS.index_key.hex() == CASES["index_key"]


@pytest.mark.parametrize("case", CASES["valid"], ids=[c["comment"] for c in CASES["valid"]])
def test_valid(case: dict[str, Any]) -> None:
    source = bytes.fromhex(case["source_id"])
    shown = tags.normalise_tag(case["text"])
    assert shown == case["display"]
    assert tags.tag_index(KEYS, shown).hex() == case["index"]
    sealed = tags.seal_tag(KEYS, source, shown, nonce=bytes.fromhex(case["nonce"]))
    assert sealed.hex() == case["sealed"]
    assert tags.open_tag(KEYS, source, bytes.fromhex(case["sealed"])) == shown


@pytest.mark.parametrize("case", CASES["invalid"], ids=[c["comment"] for c in CASES["invalid"]])
def test_invalid(case: dict[str, Any]) -> None:
    with pytest.raises(Rejected) as caught:
        tags.open_tag(KEYS, bytes.fromhex(case["source_id"]), bytes.fromhex(case["sealed"]))
    assert str(caught.value).split(":")[0] == case["check"]


def test_case_variants_share_an_index_and_other_instances_do_not() -> None:
    assert tags.tag_index(KEYS, "Ministry") == tags.tag_index(KEYS, "MINISTRY")
    assert tags.tag_index(KEYS, "Straße") == tags.tag_index(KEYS, "STRASSE")
    other = tags.metadata_keys(bytes(32))
    assert tags.tag_index(other, "ministry") != tags.tag_index(KEYS, "ministry")


@pytest.mark.parametrize(
    "text", ["", "   ", "a" * 49, "ab\u202ecd", "bell\x07", "nul\x00", "zero\u200bwidth"]
)
def test_writer_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="tag"):
        tags.normalise_tag(text)


def test_seal_refuses_text_not_in_display_form() -> None:
    with pytest.raises(ValueError, match="display form"):
        tags.seal_tag(KEYS, SOURCE, " padded ")


def test_sealed_tags_have_one_length_and_fresh_nonces() -> None:
    short = tags.seal_tag(KEYS, SOURCE, "a")
    long = tags.seal_tag(KEYS, SOURCE, "😀" * 48)
    assert len(short) == len(long) == tags.SEALED_TAG_BYTES
    assert tags.seal_tag(KEYS, SOURCE, "a") != short


@settings(max_examples=80, deadline=None)
@given(st.text(min_size=1, max_size=60))
def test_any_text_is_refused_or_round_trips(text: str) -> None:
    try:
        shown = tags.normalise_tag(text)
    except ValueError:
        return
    assert tags.open_tag(KEYS, SOURCE, tags.seal_tag(KEYS, SOURCE, shown)) == shown
