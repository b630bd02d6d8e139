"""File names from sources: safe to show and to download (DESIGN 2.8, ``tipbox.filenames``)."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tipbox.filenames import MAX_NAME_BYTES, content_disposition, safe_filename

BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# Names built from dangerous pieces as well as arbitrary text.
PIECES = st.sampled_from(
    [
        *BIDI,
        "/",
        "\\",
        '"',
        "\r",
        "\n",
        "\t",
        "\x00",
        "\x7f",
        "\x85",
        "\x9b",
        ".",
        " ",
        "\u2028",
        "\ufeff",
        "\u200b",
        "a",
        "я",
        "ә",
        ".exe",
        "..",
        "%",
        ";",
        "'",
        ":",
    ]
)
NAMES = st.one_of(st.text(), st.lists(st.one_of(PIECES, st.text(max_size=3))).map("".join))


def _bad(char: str) -> bool:
    """A character no safe name may contain."""
    return (
        unicodedata.category(char) in {"Cc", "Cf", "Cs", "Co", "Cn"}
        or char in BIDI
        or char in '/\\"\r\n'
    )


@given(NAMES)
def test_safe_filename_has_no_dangerous_character(name: str) -> None:
    safe = safe_filename(name)
    assert safe
    assert not any(_bad(char) for char in safe)
    assert not safe.startswith((".", " "))
    assert safe == safe.strip()
    assert "  " not in safe
    assert len(safe.encode("utf-8")) <= MAX_NAME_BYTES
    assert safe_filename(safe) == safe  # idempotent


@given(NAMES)
def test_content_disposition_is_one_safe_header_value(name: str) -> None:
    value = content_disposition(name)
    match = re.fullmatch(r"attachment; filename=\"([ -~]+)\"; filename\*=UTF-8''([!-~]+)", value)
    assert match is not None, value
    fallback, encoded = match.groups()
    assert not any(char in fallback for char in '"\\')
    assert re.fullmatch(r"[A-Za-z0-9%._~-]+", encoded)
    assert unquote(encoded, errors="strict") == safe_filename(name)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cod\u202egpj.exe", "codgpj.exe"),
        ("x\u202elmth.html", "xlmth.html"),
        ("\u2067evil\u2069.pdf\u200f", "evil.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\report.docx", "report.docx"),
        ("...hidden", "hidden"),
        ("  spaced \t\r\n out  .txt", "spaced out .txt"),
        ('say "hi"<script>.txt', "say _hi__script_.txt"),
        ("отчёт за 2024.pdf", "отчёт за 2024.pdf"),
        ("Қазақстан.jpg", "Қазақстан.jpg"),
        ("", "file"),
        ("\u202e/..\\.", "file"),
        ("trailing dots...", "trailing dots"),
    ],
)
def test_safe_filename_examples(name: str, expected: str) -> None:
    assert safe_filename(name) == expected


def test_long_name_keeps_its_extension() -> None:
    safe = safe_filename("ж" * 300 + ".pdf")
    assert safe.endswith("ж.pdf")
    assert len(safe.encode("utf-8")) <= MAX_NAME_BYTES


def test_content_disposition_examples() -> None:
    assert content_disposition("x\u202elmth.html") == (
        "attachment; filename=\"xlmth.html\"; filename*=UTF-8''xlmth.html"
    )
    assert content_disposition("отчёт.pdf") == (
        "attachment; filename=\"file.pdf\"; filename*=UTF-8''%D0%BE%D1%82%D1%87%D1%91%D1%82.pdf"
    )
    assert content_disposition('Café "menu".txt').startswith(
        'attachment; filename="Cafe _menu_.txt"; '
    )
