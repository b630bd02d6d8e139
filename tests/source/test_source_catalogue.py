"""The source app's colours are readable, and its stylesheet fits a small phone.

Its catalogues are checked with the journalist app's in tests/test_catalogues.py, and the
pages rendered in each language in test_source_app.py; here the stylesheets (WCAG AA
contrast of every pair the pages use, nothing wider than a small phone).
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# --- colours and layout --------------------------------------------------------------------

STYLESHEETS = [
    REPO / "tipbox" / "web" / "static" / "tipbox.css",
    REPO / "tipbox" / "source" / "static" / "css" / "source.css",
]
# (foreground, background, minimum): text needs 4.5:1, focus rings and borders 3:1.
PAIRS = [
    ("#1b1b1b", "#fdfdfb", 4.5),  # body text on the page
    ("#1b1b1b", "#eef2f7", 4.5),  # text in a notice
    ("#1b1b1b", "#fff4d6", 4.5),  # text in a warning
    ("#5a5a5a", "#fdfdfb", 4.5),  # hints and the footer
    ("#5a5a5a", "#ffffff", 4.5),  # hints inside a reply
    ("#1d3557", "#fdfdfb", 4.5),  # links, button text
    ("#1d3557", "#eef2f7", 4.5),  # links in a notice
    ("#1d3557", "#ffffff", 4.5),  # button text, skip link
    ("#ffffff", "#1d3557", 4.5),  # the header, primary and hovered buttons
    ("#8b1e1e", "#fbeeee", 4.5),  # an error notice
    ("#8b1e1e", "#fdfdfb", 4.5),  # error titles
    ("#1e5b2e", "#edf6ef", 4.5),  # the receipt
    ("#b34700", "#fdfdfb", 3.0),  # focus ring on the page
    ("#b34700", "#ffffff", 3.0),  # focus ring on a white control
    ("#ffd166", "#1d3557", 3.0),  # focus ring in the header
    ("#5a5a5a", "#ffffff", 3.0),  # input borders
]


def _luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(foreground: str, background: str) -> float:
    """The WCAG 2 contrast ratio of two ``#rrggbb`` colours."""
    lighter, darker = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_contrast_is_wcag_aa_for_every_pair_the_pages_use() -> None:
    css = "\n".join(path.read_text(encoding="utf-8").lower() for path in STYLESHEETS)
    for foreground, background, minimum in PAIRS:
        for colour in (foreground, background):
            assert colour in css or colour == "#ffffff", colour
        ratio = contrast(foreground, background)
        assert ratio >= minimum, (foreground, background, round(ratio, 2))


def test_the_contrast_computation_matches_known_values() -> None:
    assert round(contrast("#000000", "#ffffff"), 1) == 21.0
    assert round(contrast("#777777", "#ffffff"), 2) == 4.48


def test_the_source_stylesheet_fits_a_320_pixel_screen() -> None:
    css = STYLESHEETS[1].read_text(encoding="utf-8")
    for number in re.findall(r"(?<![-\w])(\d+(?:\.\d+)?)px", css):
        assert float(number) <= 16, f"{number}px: use relative units"
    assert "nowrap" not in css
    assert re.search(r"\.codename\s*\{[^}]*overflow-wrap:\s*anywhere", css)
    assert re.search(r":focus-visible\s*\{[^}]*outline:\s*3px", css)
    assert "[hidden] { display: none !important; }" in css
