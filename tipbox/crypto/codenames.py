"""Codenames: generation, normalisation of what a source types, and the source's keys.

docs/envelope.md section 6. A codename is 7 words from the EFF large wordlist; one Argon2id
run over its normalised form gives a lookup value (the server stores only its hash) and the
seed of the source's X25519 key pair. Normalisation and the Argon2id call are shared with
journalist passphrases and the recovery secret.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass, field

import nacl.pwhash.argon2id
from nacl.exceptions import CryptoError

from tipbox.config import Argon2Cost
from tipbox.crypto.errors import Rejected
from tipbox.crypto.kdf import CTX_CODENAME, derive, tagged_hash
from tipbox.crypto.keys import KeyPair, Role, keypair_from_seed
from tipbox.crypto.wordlist import word_set, words

CODENAME_WORDS = 7
SALT_BYTES = nacl.pwhash.argon2id.SALTBYTES  # 16
ARGON2_OUTPUT_BYTES = 32
LOOKUP_TAG = b"tipbox.codename-lookup.v1"
MAX_TYPED_CHARS = 4096

# Letters that look like Latin ones, as typed on a Russian or Kazakh keyboard (section 6).
# Both cases are listed, so the order "map, then case-fold" loses nothing.
_LOOKALIKES = str.maketrans(
    {
        "\N{CYRILLIC CAPITAL LETTER A}": "a",
        "\N{CYRILLIC SMALL LETTER A}": "a",
        "\N{CYRILLIC CAPITAL LETTER VE}": "b",
        "\N{CYRILLIC SMALL LETTER VE}": "b",
        "\N{CYRILLIC CAPITAL LETTER IE}": "e",
        "\N{CYRILLIC SMALL LETTER IE}": "e",
        "\N{CYRILLIC CAPITAL LETTER KA}": "k",
        "\N{CYRILLIC SMALL LETTER KA}": "k",
        "\N{CYRILLIC CAPITAL LETTER EM}": "m",
        "\N{CYRILLIC SMALL LETTER EM}": "m",
        "\N{CYRILLIC CAPITAL LETTER EN}": "h",
        "\N{CYRILLIC SMALL LETTER EN}": "h",
        "\N{CYRILLIC CAPITAL LETTER O}": "o",
        "\N{CYRILLIC SMALL LETTER O}": "o",
        "\N{CYRILLIC CAPITAL LETTER ER}": "p",
        "\N{CYRILLIC SMALL LETTER ER}": "p",
        "\N{CYRILLIC CAPITAL LETTER ES}": "c",
        "\N{CYRILLIC SMALL LETTER ES}": "c",
        "\N{CYRILLIC CAPITAL LETTER TE}": "t",
        "\N{CYRILLIC SMALL LETTER TE}": "t",
        "\N{CYRILLIC CAPITAL LETTER U}": "y",
        "\N{CYRILLIC SMALL LETTER U}": "y",
        "\N{CYRILLIC CAPITAL LETTER HA}": "x",
        "\N{CYRILLIC SMALL LETTER HA}": "x",
        "\N{CYRILLIC CAPITAL LETTER BYELORUSSIAN-UKRAINIAN I}": "i",
        "\N{CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I}": "i",
        "\N{CYRILLIC CAPITAL LETTER JE}": "j",
        "\N{CYRILLIC SMALL LETTER JE}": "j",
        "\N{CYRILLIC CAPITAL LETTER DZE}": "s",
        "\N{CYRILLIC SMALL LETTER DZE}": "s",
        "\N{CYRILLIC CAPITAL LETTER STRAIGHT U}": "y",
        "\N{CYRILLIC SMALL LETTER STRAIGHT U}": "y",
        "\N{CYRILLIC CAPITAL LETTER SHHA}": "h",
        "\N{CYRILLIC SMALL LETTER SHHA}": "h",
        "\N{CYRILLIC CAPITAL LETTER KOMI DE}": "d",
        "\N{CYRILLIC SMALL LETTER KOMI DE}": "d",
        "\N{CYRILLIC CAPITAL LETTER QA}": "q",
        "\N{CYRILLIC SMALL LETTER QA}": "q",
        "\N{CYRILLIC CAPITAL LETTER WE}": "w",
        "\N{CYRILLIC SMALL LETTER WE}": "w",
    }
)
# Any run of whitespace or of the separators , . ; _ / splits words.
_SEPARATORS = re.compile(r"[\s,.;_/]+")


def lookalike_table() -> dict[int, str]:
    """A copy of the look-alike mapping (code point -> Latin letter), for docs and tests."""
    return {key: str(value) for key, value in _LOOKALIKES.items()}


# Passes of the character steps until nothing changes; real input needs one or two.
_MAX_PASSES = 4


def normalise(text: str) -> str:
    """Normalise typed words (section 6): NFKC, drop format characters, map look-alikes,
    case-fold, repeated until nothing changes; then split on whitespace and
    ``, . ; _ /`` and join with single spaces."""
    for _ in range(_MAX_PASSES):
        # Case-folding can make a look-alike ("ᲀ" folds to "в") or undo NFKC: a second
        # pass maps it, so that normalising twice gives what normalising once did.
        before = text
        text = unicodedata.normalize("NFKC", text)
        text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
        text = text.translate(_LOOKALIKES).casefold()
        if text == before:
            break
    return " ".join(word for word in _SEPARATORS.split(text) if word)


def parse_words(text: str, count: int, check: str, *, at_least: bool = False) -> str:
    """Normalise ``text`` and require ``count`` (or, with ``at_least``, ``count`` or more)
    words of the list. Cheap: callers run it before any Argon2id."""
    # Bound the work a hostile input can cause; real input is a few hundred characters.
    if len(text) > MAX_TYPED_CHARS:
        raise Rejected(f"{check}.length: input too long")
    normalised = normalise(text)
    found = normalised.split(" ") if normalised else []
    if len(found) < count or (not at_least and len(found) != count):
        raise Rejected(f"{check}.words: wrong number of words")
    known = word_set()
    if not all(word in known for word in found):
        raise Rejected(f"{check}.unknown_word: a word is not in the wordlist")
    return normalised


def generate_codename() -> str:
    """Return a new codename: 7 words drawn with ``secrets.choice`` (about 90.5 bits)."""
    wordlist = words()
    return " ".join(secrets.choice(wordlist) for _ in range(CODENAME_WORDS))


def parse_codename(text: str) -> str:
    """Return the normalised codename, or reject unless it is exactly 7 list words."""
    return parse_words(text, CODENAME_WORDS, "codename")


def new_instance_salt() -> bytes:
    """Return a fresh 16-byte per-instance codename salt (fixed at ``tipbox init``)."""
    return secrets.token_bytes(SALT_BYTES)


def argon2id(normalised: str, salt: bytes, cost: Argon2Cost) -> bytes:
    """``crypto_pwhash(32, normalised UTF-8, salt, opslimit, memlimit, Argon2id13)``."""
    if len(salt) != SALT_BYTES:
        raise Rejected("argon2.salt: salt must be 16 bytes")
    if not (
        nacl.pwhash.argon2id.OPSLIMIT_MIN <= cost.opslimit <= nacl.pwhash.argon2id.OPSLIMIT_MAX
        and nacl.pwhash.argon2id.MEMLIMIT_MIN <= cost.memlimit <= nacl.pwhash.argon2id.MEMLIMIT_MAX
    ):
        raise Rejected("argon2.cost: Argon2id parameters out of range")
    try:
        return bytes(
            nacl.pwhash.argon2id.kdf(
                ARGON2_OUTPUT_BYTES,
                normalised.encode("utf-8"),
                salt,
                opslimit=cost.opslimit,
                memlimit=cost.memlimit,
            )
        )
    except (CryptoError, ValueError):
        # Out of memory is the only failure left once the parameters are in range.
        raise Rejected("argon2.failed: Argon2id did not run") from None


@dataclass(frozen=True, eq=False)
class SourceKeys:
    """What a codename gives: the stored lookup hash and the source's X25519 key pair."""

    lookup_hash: bytes
    seed: bytes = field(repr=False)
    x25519_private: bytes = field(repr=False)
    x25519_public: bytes

    @property
    def keypair(self) -> KeyPair:
        """The source's key pair (role 5)."""
        return KeyPair(Role.SOURCE, self.x25519_private, self.x25519_public)


def lookup_hash(lookup: bytes) -> bytes:
    """``TH("tipbox.codename-lookup.v1", lookup)``: what the server stores."""
    return tagged_hash(LOOKUP_TAG, lookup)


def derive_source_keys(normalised: str, instance_salt: bytes, cost: Argon2Cost) -> SourceKeys:
    """Derive a source's lookup hash and key pair from a normalised codename (section 6).

    The codename is checked (7 list words, already normalised) before Argon2id runs, so a
    mistyped or hostile input costs nothing.
    """
    if parse_codename(normalised) != normalised:
        raise Rejected("codename.normalised: codename is not in normalised form")
    stretched = argon2id(normalised, instance_salt, cost)
    seed = derive(stretched, 2, CTX_CODENAME)
    pair = keypair_from_seed(Role.SOURCE, seed)
    return SourceKeys(
        lookup_hash=lookup_hash(derive(stretched, 1, CTX_CODENAME)),
        seed=seed,
        x25519_private=pair.x25519_private,
        x25519_public=pair.x25519_public,
    )
