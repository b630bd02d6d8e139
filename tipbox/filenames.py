"""File names from sources, made safe to show and to offer as downloads (DESIGN 2.8).

A file name in an item's meta is whatever the source's browser sent: it may hold control
characters, bidirectional overrides that make ``cod\u202egpj.exe`` look like
``codexe.jpg``, path separators, quotes or line breaks. ``safe_filename`` keeps a name a
journalist can recognise (non-Latin letters stay) and drops everything that could
mislead a reader or a browser; ``content_disposition`` builds the download header from
it (RFC 6266, with the RFC 5987 ``filename*`` form for the full name).
"""

from __future__ import annotations

import unicodedata
from typing import Final
from urllib.parse import quote

__all__ = ["FALLBACK_NAME", "MAX_NAME_BYTES", "content_disposition", "safe_filename"]

FALLBACK_NAME: Final = "file"
# Most file systems allow 255 bytes a name; leave room for a browser's " (1)".
MAX_NAME_BYTES: Final = 200
_MAX_EXTENSION_CHARS: Final = 16

# Control (C0, DEL, C1), format (every bidi mark, embedding, override and isolate: U+061C,
# U+200E/F, U+202A-E, U+2066-9; zero-width characters; the BOM), surrogates, private use
# and unassigned code points (a future format character is unassigned to us today).
_DROPPED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
# Reserved on Windows or meaningful in a header: replaced, so that the name stays readable.
_RESERVED: Final = frozenset('<>:"|?*')
_SEPARATORS: Final = ("/", "\\")


def _clean_characters(name: str) -> str:
    """NFC; whitespace becomes a space; dropped categories go; reserved become ``_``."""
    kept: list[str] = []
    for char in unicodedata.normalize("NFC", name):
        if char.isspace():
            kept.append(" ")
        elif char in _RESERVED:
            kept.append("_")
        elif unicodedata.category(char) not in _DROPPED_CATEGORIES:
            kept.append(char)
    return "".join(kept)


def _basename(name: str) -> str:
    """The last non-empty part of ``name`` split on ``/`` and ``\\``."""
    for separator in _SEPARATORS[1:]:
        name = name.replace(separator, _SEPARATORS[0])
    parts = [part for part in name.split(_SEPARATORS[0]) if part.strip(" .")]
    return parts[-1] if parts else ""


def _split_extension(name: str) -> tuple[str, str]:
    """``(stem, extension)``: the extension is a final ``.xyz`` of 1 to 15 characters."""
    dot = name.rfind(".")
    if dot <= 0 or not 1 < len(name) - dot <= _MAX_EXTENSION_CHARS:
        return name, ""
    return name[:dot], name[dot:]


def _cut(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes at a character boundary."""
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore")


def _shorten(name: str, limit: int = MAX_NAME_BYTES) -> str:
    """Cut ``name`` to ``limit`` UTF-8 bytes, keeping its extension."""
    if len(name.encode("utf-8")) <= limit:
        return name
    stem, extension = _split_extension(name)
    stem = _cut(stem, limit - len(extension.encode("utf-8"))).rstrip(" .")
    return stem + extension if stem else _cut(name, limit)


def safe_filename(name: str) -> str:
    """A name safe to show and to offer as a download; ``"file"`` if nothing is left.

    Drops control, format (bidirectional) and unassigned characters; keeps only the last
    path component (split on ``/`` and ``\\``); replaces ``<>:"|?*`` with ``_``; collapses
    whitespace (line breaks included) to single spaces; strips leading dots and spaces and
    trailing dots and spaces; shortens to ``MAX_NAME_BYTES`` UTF-8 bytes, keeping the
    extension. Letters of any script stay as they are.
    """
    cleaned = _basename(_clean_characters(name))
    cleaned = " ".join(cleaned.split()).lstrip(" .")
    cleaned = _shorten(cleaned).rstrip(" .")
    return cleaned or FALLBACK_NAME


def _ascii(text: str) -> str:
    """``text`` with accents dropped and anything else outside printable ASCII removed."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if " " <= c <= "~" and c not in '"\\')


def _ascii_fallback(name: str) -> str:
    """An ASCII stand-in for an already safe ``name``, keeping its extension if ASCII."""
    stem, extension = _split_extension(name)
    stem = " ".join(_ascii(stem).split())
    if not stem.strip(" ._-"):  # nothing recognisable is left of it
        stem = FALLBACK_NAME
    return safe_filename(stem + _ascii(extension))


def content_disposition(name: str) -> str:
    """The ``Content-Disposition`` value for downloading a file named ``name``.

    ``attachment; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded>``: the
    full (safe) name in the RFC 5987 form that every current browser reads, and an ASCII
    approximation for the others. Neither part can hold a quote, backslash or line break.
    """
    safe = safe_filename(name)
    encoded = quote(safe, safe="")
    return f"attachment; filename=\"{_ascii_fallback(safe)}\"; filename*=UTF-8''{encoded}"
