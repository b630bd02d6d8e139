"""The source app's catalogues are complete and current, and its colours are readable.

Pages rendered in each language are checked in test_source_app.py; here the catalogues
themselves (every message translated, placeholders kept, nothing left out of extraction)
and the stylesheets (WCAG AA contrast of every pair the pages use, nothing wider than a
small phone).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from tipbox.web import errors
from tipbox.web.i18n import ERROR_MSGIDS, LANGUAGE_NAMES, LANGUAGES

REPO = Path(__file__).resolve().parents[2]
CATALOGUES = REPO / "tipbox" / "source" / "translations"
TEMPLATE = CATALOGUES / "messages.pot"
TRANSLATED = [code for code in LANGUAGES if code != "en"]
PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sd]|\{[a-z_]+\}")


def _load_script() -> ModuleType:
    # scripts/ is not a package: load the file the workflow runs.
    spec = importlib.util.spec_from_file_location(
        "tipbox_translations_script", REPO / "scripts" / "translations.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


translations = _load_script()


def _catalogue(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


def _texts(value: object) -> tuple[str, ...]:
    """A message's id or string as a tuple (one text, or a plural's several)."""
    if isinstance(value, str):
        return (value,)
    assert isinstance(value, tuple | list)
    return tuple(str(text) for text in value)


def _po(language: str) -> Path:
    return CATALOGUES / language / "LC_MESSAGES" / "messages.po"


def test_the_languages_are_english_russian_and_kazakh() -> None:
    assert LANGUAGES == ("en", "ru", "kk")
    assert LANGUAGE_NAMES == {"en": "English", "ru": "Русский", "kk": "Қазақша"}


def test_every_message_has_a_translation_in_every_language() -> None:
    missing = translations.untranslated()
    assert set(missing) == set(TRANSLATED)
    assert missing == {language: [] for language in TRANSLATED}


@pytest.mark.parametrize("language", TRANSLATED)
def test_translations_keep_their_placeholders_and_differ_from_english(language: str) -> None:
    catalogue = _catalogue(_po(language), language)
    assert catalogue.fuzzy is False
    for message in catalogue:
        if not message.id:
            continue
        ids, strings = _texts(message.id), _texts(message.string)
        wanted = sorted(set(PLACEHOLDER.findall(ids[-1])))
        for string in strings:
            assert sorted(set(PLACEHOLDER.findall(string))) == wanted, (language, ids[0])
            # Cyrillic letters in every translation: none was left in English by mistake.
            assert re.search("[\u0400-\u04ff]", string), (language, ids[0])


@pytest.mark.parametrize("language", TRANSLATED)
def test_plural_forms_are_the_languages_own(language: str) -> None:
    catalogue = _catalogue(_po(language), language)
    assert catalogue.num_plurals == {"ru": 3, "kk": 2}[language]
    for message in catalogue:
        if isinstance(message.id, tuple):
            assert len(_texts(message.string)) == catalogue.num_plurals


def test_the_template_is_current_with_the_code(tmp_path: Path) -> None:
    fresh = tmp_path / "messages.pot"
    translations.extract(fresh)
    current = {message.id for message in _catalogue(fresh) if message.id}
    committed = {message.id for message in _catalogue(TEMPLATE) if message.id}
    assert current == committed, "run scripts/translations.py extract, update, then translate"
    for language in TRANSLATED:
        in_po = {message.id for message in _catalogue(_po(language), language) if message.id}
        assert in_po == committed, language


@pytest.mark.parametrize("language", TRANSLATED)
def test_compiled_catalogues_are_current(language: str) -> None:
    compiled = _po(language).with_suffix(".mo")
    assert compiled.exists(), "run `make translations`"
    assert compiled.stat().st_mtime >= _po(language).stat().st_mtime, "run `make translations`"


def test_the_shared_error_wording_is_in_the_catalogue() -> None:
    texts = [*errors.ERROR_TEXTS.values(), errors.CSRF_TEXT]
    shared = {text.title for text in texts} | {text.message for text in texts}
    shared.add("The request could not be completed.")  # errors.error_text's fallback
    assert shared == set(ERROR_MSGIDS)
    committed = {message.id for message in _catalogue(TEMPLATE) if message.id}
    assert shared <= committed


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
