"""Journalist passphrases: generated diceware, never chosen (docs/envelope.md section 7).

A passphrase is 7 or more words from the EFF large wordlist joined by single spaces, and
what a journalist types is normalised exactly as a codename is (``codenames.normalise``).
"""

from __future__ import annotations

import secrets

from tipbox.crypto import wordlist
from tipbox.crypto.codenames import parse_words

MIN_PASSPHRASE_WORDS = 7


def generate_passphrase(words: int = MIN_PASSPHRASE_WORDS) -> str:
    """Return a new passphrase of ``words`` (at least 7) words drawn with ``secrets``."""
    if words < MIN_PASSPHRASE_WORDS:
        raise ValueError("a passphrase has at least 7 words")
    choices = wordlist.words()
    return " ".join(secrets.choice(choices) for _ in range(words))


def parse_passphrase(text: str) -> str:
    """Return the normalised passphrase, or reject unless it is 7 or more list words.

    Cheap: run it before Argon2id so that malformed input costs nothing.
    """
    return parse_words(text, MIN_PASSPHRASE_WORDS, "passphrase", at_least=True)
