"""The EFF large wordlist (7,776 words) used for codenames, passphrases and recovery secrets.

The list ships as package data (``wordlists/eff_large.txt``, see ``wordlists/LICENSE``). It
is read once per process through a cached loader rather than a module-level global.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

WORD_COUNT = 7776

_WORD_SHAPE = re.compile(r"[a-z]+(?:-[a-z]+)*")


@functools.cache
def words() -> tuple[str, ...]:
    """Return the 7,776 words of the EFF large wordlist, in file order."""
    text = (resources.files("tipbox.crypto") / "wordlists" / "eff_large.txt").read_text(
        encoding="utf-8"
    )
    loaded = tuple(line.strip() for line in text.splitlines() if line.strip())
    # A damaged or substituted list would silently weaken every codename: refuse it.
    if len(loaded) != WORD_COUNT or len(set(loaded)) != WORD_COUNT:
        raise RuntimeError("wordlist must hold 7776 distinct words")
    if not all(_WORD_SHAPE.fullmatch(word) for word in loaded):
        raise RuntimeError("wordlist words must be lowercase ASCII letters and hyphens")
    return loaded


@functools.cache
def word_set() -> frozenset[str]:
    """Return the wordlist as a set, for membership checks."""
    return frozenset(words())
