"""Codenames: generation, normalisation and source keys (envelope.md section 6)."""

from __future__ import annotations

import re
import time
import unicodedata
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from nacl.bindings import crypto_scalarmult_base

from tipbox.config import CODENAME_KDF, TEST_KDF, Argon2Cost
from tipbox.crypto import wordlist
from tipbox.crypto.codenames import (
    derive_source_keys,
    generate_codename,
    lookalike_table,
    lookup_hash,
    new_instance_salt,
    normalise,
    parse_codename,
)
from tipbox.crypto.errors import Rejected
from tipbox.crypto.kdf import derive
from tipbox.crypto.keys import Role, keypair_from_seed

SALT = bytes(range(16))
# Argon2id refuses these parameters: a test that gets "argon2.cost" instead of the
# expected check would prove that Argon2id was reached.
IMPOSSIBLE_COST = Argon2Cost(opslimit=0, memlimit=0)


def check_of(exc: pytest.ExceptionInfo[Rejected]) -> str:
    return str(exc.value).split(":", 1)[0]


def test_wordlist_is_the_eff_large_list() -> None:
    words = wordlist.words()
    assert len(words) == 7776
    assert len(wordlist.word_set()) == 7776
    assert words[0] == "abacus"
    assert words[-1] == "zoom"
    assert wordlist.words() is words  # cached


def test_wordlist_license_is_shipped() -> None:
    text = (Path(wordlist.__file__).parent / "wordlists" / "LICENSE").read_text()
    assert "EFF Large Wordlist for Passphrases" in text
    assert "CC BY 3.0 US" in text


def test_generated_codenames_are_seven_list_words() -> None:
    seen = set()
    for _ in range(200):
        codename = generate_codename()
        words = codename.split(" ")
        assert len(words) == 7
        assert all(w in wordlist.word_set() for w in words)
        assert parse_codename(codename) == codename
        seen.add(codename)
    assert len(seen) == 200


def test_generation_covers_the_whole_list() -> None:
    # 7,000 words drawn: each of the first and last 100 list words is likely to appear in a
    # uniform draw, and a draw limited to part of the list would miss one end entirely.
    drawn = {w for _ in range(1000) for w in generate_codename().split()}
    words = wordlist.words()
    assert drawn & set(words[:500])
    assert drawn & set(words[-500:])


def test_lookalike_table_is_the_one_in_the_spec() -> None:
    spec = (
        "А/а→a, В/в→b, Е/е→e, К/к→k, М/м→m, Н/н→h, О/о→o, Р/р→p, С/с→c, Т/т→t, "  # noqa: RUF001
        "У/у→y, Х/х→x, І/і→i, Ј/ј→j, Ѕ/ѕ→s, Ү/ү→y, Һ/һ→h, Ԁ/ԁ→d, Ԛ/ԛ→q, Ԝ/ԝ→w"  # noqa: RUF001
    )
    expected: dict[int, str] = {}
    for item in spec.split(", "):
        letters, latin = item.split("→")
        for letter in letters.split("/"):
            expected[ord(letter)] = latin
    assert lookalike_table() == expected
    docs = Path(__file__).resolve().parents[2] / "docs" / "envelope.md"
    flat = re.sub(r"\s+", " ", docs.read_text(encoding="utf-8"))
    assert spec in flat


CODENAME = "abacus cope taco sheep exact hazy jumbo"


@pytest.mark.parametrize(
    "typed",
    [
        CODENAME,
        CODENAME.upper(),
        "аbасus соре tасо shеер ехасt hаzу jumbо",  # noqa: RUF001 - Cyrillic look-alikes
        "АВАСUS СОРЕ ТАСО SНЕЕР ЕХАСТ НАZY JUМВО",  # noqa: RUF001 - Cyrillic capitals
        "ａｂａｃｕｓ　ｃｏｐｅ　ｔａｃｏ　ｓｈｅｅｐ　ｅｘａｃｔ　ｈａｚｙ　ｊｕｍｂｏ",  # noqa: RUF001
        "aba\u200bcus\u200c cope\u200d taco\u2060 sheep\ufeff exact hazy jumbo",
        "  abacus\t\tcope \u00a0taco\n\nsheep  exact\u3000hazy\r\njumbo  ",
        "abacus, cope; taco. sheep/ exact_hazy ,jumbo.",
        "Abacus-less".replace("-less", "") + " Cope Taco Sheep Exact Hazy Jumbo",
        "ab\u00adacus cope taco sheep exact hazy jumbo",  # soft hyphen (Cf)
    ],
)
def test_typed_variants_normalise_to_the_codename(typed: str) -> None:
    assert normalise(typed) == CODENAME
    assert parse_codename(typed) == CODENAME


def test_codename_typed_with_look_alikes_caps_spacing_and_wide_letters_gives_the_same_keys() -> (
    None
):
    codename = generate_codename()
    cyrillic = str.maketrans("aceopxyABCEHKMOPTX", "асеорхуАВСЕНКМОРТХ")  # noqa: RUF001
    fullwidth = "".join(chr(ord(c) + 0xFEE0) if "a" <= c <= "z" else c for c in codename)
    words = codename.split(" ")
    mangled = [
        codename.translate(cyrillic),
        codename.upper().translate(cyrillic),
        "\u200b " + "\t\u00a0 ,".join(words) + " \u200b\n",
        "\u200b".join(fullwidth),
        "  ".join(w.title() for w in words).translate(cyrillic),
    ]
    expected = derive_source_keys(codename, SALT, TEST_KDF)
    for typed in mangled:
        keys = derive_source_keys(parse_codename(typed), SALT, TEST_KDF)
        assert keys.lookup_hash == expected.lookup_hash
        assert keys.x25519_public == expected.x25519_public


@pytest.mark.parametrize(
    ("typed", "check"),
    [
        ("abacus cope taco sheep exact hazy", "codename.words"),
        ("abacus cope taco sheep exact hazy jumbo jumbo", "codename.words"),
        ("", "codename.words"),
        ("\u200b \u200b", "codename.words"),
        ("abacus cope taco sheep exact hazy tipbox", "codename.unknown_word"),
        ("abacus cope taco sheep exact hazy jumbó", "codename.unknown_word"),
        ("abacus cope taco sheep exact hazy дumbo", "codename.unknown_word"),
        ("abacus-cope taco sheep exact hazy jumbo x", "codename.unknown_word"),
        (CODENAME + " " * 5000, "codename.length"),
    ],
)
def test_bad_codenames_are_refused_before_argon2(typed: str, check: str) -> None:
    with pytest.raises(Rejected) as exc:
        parse_codename(typed)
    assert check_of(exc) == check
    # derive_source_keys checks first too: the impossible cost is never reached.
    with pytest.raises(Rejected) as exc:
        derive_source_keys(typed, SALT, IMPOSSIBLE_COST)
    assert check_of(exc) == check


def test_six_word_codename_is_refused_quickly_even_at_production_cost() -> None:
    start = time.perf_counter()
    with pytest.raises(Rejected):
        derive_source_keys("abacus cope taco sheep exact hazy", SALT, CODENAME_KDF)
    assert time.perf_counter() - start < 0.05


def test_derive_requires_the_normalised_form() -> None:
    with pytest.raises(Rejected) as exc:
        derive_source_keys(CODENAME.upper(), SALT, IMPOSSIBLE_COST)
    assert check_of(exc) == "codename.normalised"


def test_argon2_parameters_are_checked() -> None:
    with pytest.raises(Rejected) as exc:
        derive_source_keys(CODENAME, SALT, IMPOSSIBLE_COST)
    assert check_of(exc) == "argon2.cost"
    with pytest.raises(Rejected) as exc:
        derive_source_keys(CODENAME, SALT[:15], TEST_KDF)
    assert check_of(exc) == "argon2.salt"


def test_source_keys_follow_the_spec() -> None:
    from nacl.pwhash.argon2id import kdf

    keys = derive_source_keys(CODENAME, SALT, TEST_KDF)
    stretched = kdf(
        32, CODENAME.encode(), SALT, opslimit=TEST_KDF.opslimit, memlimit=TEST_KDF.memlimit
    )
    assert keys.lookup_hash == lookup_hash(derive(stretched, 1, b"tbcoden1"))
    assert keys.seed == derive(stretched, 2, b"tbcoden1")
    pair = keypair_from_seed(Role.SOURCE, keys.seed)
    assert keys.x25519_private == pair.x25519_private
    assert keys.x25519_public == pair.x25519_public == crypto_scalarmult_base(pair.x25519_private)
    assert keys.keypair.public == pair.public
    assert keys.seed.hex() not in repr(keys)
    assert keys.x25519_private.hex() not in repr(keys)


def test_salt_and_codename_both_matter() -> None:
    a = derive_source_keys(CODENAME, SALT, TEST_KDF)
    b = derive_source_keys(CODENAME, new_instance_salt(), TEST_KDF)
    c = derive_source_keys(generate_codename(), SALT, TEST_KDF)
    assert len({a.lookup_hash, b.lookup_hash, c.lookup_hash}) == 3
    assert len({a.x25519_public, b.x25519_public, c.x25519_public}) == 3
    # The stored lookup hash reveals nothing usable about the key.
    assert a.lookup_hash not in (a.seed, a.x25519_private, a.x25519_public)


def test_instance_salt_is_random_16_bytes() -> None:
    salts = {new_instance_salt() for _ in range(8)}
    assert len(salts) == 8
    assert all(len(s) == 16 for s in salts)


def test_derivation_at_production_cost() -> None:
    # The real cost (64 MiB, 3 passes); values are also pinned in tests/vectors/codenames.json.
    keys = derive_source_keys(CODENAME, SALT, CODENAME_KDF)
    again = derive_source_keys(parse_codename(CODENAME.upper()), SALT, CODENAME_KDF)
    assert keys.lookup_hash == again.lookup_hash
    assert keys.x25519_public == again.x25519_public
    assert keys.lookup_hash != derive_source_keys(CODENAME, SALT, TEST_KDF).lookup_hash


separators = st.sampled_from([" ", "  ", "\t", "\n", ",", ", ", ";", ".", "_", "/", "\u3000"])


@given(
    words=st.lists(st.sampled_from(wordlist.words()), min_size=7, max_size=7),
    seps=st.lists(separators, min_size=8, max_size=8),
    upper=st.lists(st.booleans(), min_size=7, max_size=7),
)
def test_any_spacing_and_case_normalises_to_the_same_codename(
    words: list[str], seps: list[str], upper: list[bool]
) -> None:
    typed = seps[0] + "".join(
        (w.upper() if u else w) + s for w, u, s in zip(words, upper, seps[1:], strict=True)
    )
    assert parse_codename(typed) == " ".join(words)


@given(st.text(max_size=200))
@example("\N{CYRILLIC SMALL LETTER ROUNDED VE}")  # folds to "в", a look-alike of "b"
def test_normalise_is_idempotent_and_canonical(text: str) -> None:
    once = normalise(text)
    assert normalise(once) == once
    assert "  " not in once
    assert once == once.strip()
    assert not any(unicodedata.category(ch) == "Cf" for ch in once)
