"""Both web apps' catalogues are complete and current.

For the source app and the journalist app alike, through ``scripts/translations.py``'s
per-app API: every message translated in Russian and Kazakh, placeholders kept, plural
forms the language's own, nothing Babel would warn about, nothing left out of extraction
(code, templates and the shared error wording) and nothing of the other app's in, ``.mo``
files built. What each app shows in each language is checked in its own folder
(tests/source/test_source_app.py, tests/journalist/test_journalist_catalogue.py).
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

REPO = Path(__file__).resolve().parents[1]
# Each app's catalogues, where the tests expect them (the script is checked to agree).
CATALOGUES = {
    "source": REPO / "tipbox" / "source" / "translations",
    "journalist": REPO / "journalist_ui" / "translations",
}
APPS = tuple(CATALOGUES)
TRANSLATED = [code for code in LANGUAGES if code != "en"]
PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sd]|\{[a-z_]+\}")
# Files each app's template must draw on, and the folder of the other app it must not.
COVERED = {
    "source": (
        "tipbox/source/texts.py",
        "tipbox/source/templates/source/index.html",
        "tipbox/source/templates/web/error.html",
    ),
    "journalist": (
        "journalist_ui/views.py",
        "journalist_ui/templates/journalist/login.html",
        "journalist_ui/templates/web/error.html",
    ),
}
NOT_COVERED = {"source": "journalist_ui/", "journalist": "tipbox/source/"}


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


def _template(app: str) -> Path:
    return CATALOGUES[app] / "messages.pot"


def _po(app: str, language: str) -> Path:
    return CATALOGUES[app] / language / "LC_MESSAGES" / "messages.po"


def test_the_languages_are_english_russian_and_kazakh() -> None:
    assert LANGUAGES == ("en", "ru", "kk")
    assert LANGUAGE_NAMES == {"en": "English", "ru": "Русский", "kk": "Қазақша"}
    assert set(translations.APPS) == set(APPS)
    assert tuple(translations.LANGUAGES) == tuple(TRANSLATED)


@pytest.mark.parametrize("app", APPS)
def test_the_script_manages_the_apps_catalogues(app: str) -> None:
    managed = translations.APPS[app]
    assert managed.catalogues == CATALOGUES[app]
    assert managed.template == _template(app)
    assert (REPO / managed.mapping).is_file()


@pytest.mark.parametrize("app", APPS)
def test_every_message_has_a_translation_in_every_language(app: str) -> None:
    missing = translations.untranslated(translations.APPS[app])
    assert set(missing) == set(TRANSLATED)
    assert missing == {language: [] for language in TRANSLATED}


@pytest.mark.parametrize("app", APPS)
def test_babel_finds_nothing_wrong_with_any_translation(app: str) -> None:
    # What `pybabel compile` would warn about: placeholders, number of plural forms.
    assert translations.problems(translations.APPS[app]) == {
        language: [] for language in TRANSLATED
    }


@pytest.mark.parametrize("language", TRANSLATED)
@pytest.mark.parametrize("app", APPS)
def test_translations_keep_their_placeholders_and_differ_from_english(
    app: str, language: str
) -> None:
    catalogue = _catalogue(_po(app, language), language)
    assert catalogue.fuzzy is False
    for message in catalogue:
        if not message.id:
            continue
        assert not message.fuzzy, (language, message.id)
        ids, strings = _texts(message.id), _texts(message.string)
        wanted = sorted(set(PLACEHOLDER.findall(ids[-1])))
        for string in strings:
            assert sorted(set(PLACEHOLDER.findall(string))) == wanted, (language, ids[0])
            # Cyrillic letters in every translation: none was left in English by mistake.
            assert re.search("[\u0400-\u04ff]", string), (language, ids[0])


@pytest.mark.parametrize("language", TRANSLATED)
@pytest.mark.parametrize("app", APPS)
def test_plural_forms_are_the_languages_own(app: str, language: str) -> None:
    catalogue = _catalogue(_po(app, language), language)
    assert catalogue.num_plurals == {"ru": 3, "kk": 2}[language]
    for message in catalogue:
        if isinstance(message.id, tuple):
            assert len(_texts(message.string)) == catalogue.num_plurals


@pytest.mark.parametrize("app", APPS)
def test_the_template_is_current_with_the_code(app: str, tmp_path: Path) -> None:
    fresh = tmp_path / "messages.pot"
    translations.extract(fresh, app=translations.APPS[app])
    current = {message.id for message in _catalogue(fresh) if message.id}
    committed = {message.id for message in _catalogue(_template(app)) if message.id}
    assert current == committed, (
        f"run scripts/translations.py --app {app} extract, then update, then translate"
    )
    for language in TRANSLATED:
        in_po = {message.id for message in _catalogue(_po(app, language), language) if message.id}
        assert in_po == committed, language


@pytest.mark.parametrize("app", APPS)
def test_the_template_covers_the_apps_code_and_templates_only(app: str) -> None:
    locations = {
        path for message in _catalogue(_template(app)) for path, _line in message.locations if path
    }
    for path in COVERED[app]:
        assert path in locations, path
    assert not any(path.startswith(NOT_COVERED[app]) for path in locations)


@pytest.mark.parametrize("language", TRANSLATED)
@pytest.mark.parametrize("app", APPS)
def test_compiled_catalogues_are_current(app: str, language: str) -> None:
    po = _po(app, language)
    compiled = po.with_suffix(".mo")
    assert compiled.exists(), "run `make translations`"
    assert compiled.stat().st_mtime >= po.stat().st_mtime, "run `make translations`"


@pytest.mark.parametrize("app", APPS)
def test_the_shared_error_wording_is_in_the_catalogue(app: str) -> None:
    texts = [*errors.ERROR_TEXTS.values(), errors.CSRF_TEXT]
    shared = {text.title for text in texts} | {text.message for text in texts}
    shared.add("The request could not be completed.")  # errors.error_text's fallback
    assert shared == set(ERROR_MSGIDS)
    committed = {message.id for message in _catalogue(_template(app)) if message.id}
    assert shared <= committed
