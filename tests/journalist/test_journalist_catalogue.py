"""The journalist app's catalogues are complete and current, and its pages use them.

As for the source app (tests/source/test_source_catalogue.py): every message translated in
Russian and Kazakh, placeholders kept, plural forms the language's own, nothing left out of
extraction (code, templates and the shared error wording), ``.mo`` files built. Then the
pages: the login page and an error page in each language, the language links (plain links,
no script), and the one page that must not offer them.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pyotp
import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

import journalist_ui
from journalist_ui.state import EXTENSION, JournalistState
from tipbox.config import Config
from tipbox.instance import InitResult, init_instance
from tipbox.web import TipboxFlask, errors
from tipbox.web.i18n import ERROR_MSGIDS, LANGUAGE_NAMES, LANGUAGES

REPO = Path(__file__).resolve().parents[2]
CATALOGUES = REPO / "journalist_ui" / "translations"
TEMPLATE = CATALOGUES / "messages.pot"
TRANSLATED = [code for code in LANGUAGES if code != "en"]
PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sd]|\{[a-z_]+\}")
TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


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
APP = translations.JOURNALIST


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


# --- the catalogues ------------------------------------------------------------------------


def test_the_script_manages_this_apps_catalogues() -> None:
    assert APP.catalogues == CATALOGUES
    assert APP.template == TEMPLATE
    assert (REPO / APP.mapping).is_file()
    assert set(translations.APPS) == {"source", "journalist"}
    assert tuple(translations.LANGUAGES) == tuple(TRANSLATED)


def test_every_message_has_a_translation_in_every_language() -> None:
    missing = translations.untranslated(APP)
    assert set(missing) == set(TRANSLATED)
    assert missing == {language: [] for language in TRANSLATED}


def test_babel_finds_nothing_wrong_with_any_translation() -> None:
    # What `pybabel compile` would warn about: placeholders, number of plural forms.
    assert translations.problems(APP) == {language: [] for language in TRANSLATED}


@pytest.mark.parametrize("language", TRANSLATED)
def test_translations_keep_their_placeholders_and_differ_from_english(language: str) -> None:
    catalogue = _catalogue(_po(language), language)
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
def test_plural_forms_are_the_languages_own(language: str) -> None:
    catalogue = _catalogue(_po(language), language)
    assert catalogue.num_plurals == {"ru": 3, "kk": 2}[language]
    for message in catalogue:
        if isinstance(message.id, tuple):
            assert len(_texts(message.string)) == catalogue.num_plurals


def test_the_template_is_current_with_the_code(tmp_path: Path) -> None:
    fresh = tmp_path / "messages.pot"
    translations.extract(fresh, app=APP)
    current = {message.id for message in _catalogue(fresh) if message.id}
    committed = {message.id for message in _catalogue(TEMPLATE) if message.id}
    assert current == committed, (
        "run scripts/translations.py --app journalist extract, then update, then translate"
    )
    for language in TRANSLATED:
        in_po = {message.id for message in _catalogue(_po(language), language) if message.id}
        assert in_po == committed, language


def test_the_template_covers_the_journalist_code_and_templates() -> None:
    locations = {
        path for message in _catalogue(TEMPLATE) for path, _line in message.locations if path
    }
    assert "journalist_ui/views.py" in locations
    assert "journalist_ui/templates/journalist/login.html" in locations
    assert "journalist_ui/templates/web/error.html" in locations
    assert not any(path.startswith("tipbox/source/") for path in locations)


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


# --- the pages -----------------------------------------------------------------------------

# The words of the login form, each as the page shows it in every language.
LOGIN_WORDS = ("Log in", "Username", "Passphrase", "Six-digit code")
FAILED = "Login failed. Check your username, passphrase and code, and try again in a little while."


def _translated(language: str, msgid: str) -> str:
    """``msgid`` as the ``language`` catalogue translates it (English: itself)."""
    if language == "en":
        return msgid
    string = _catalogue(_po(language), language)[msgid].string
    assert isinstance(string, str)
    assert string
    return string


@pytest.fixture
def instance(db: Session, config: Config) -> InitResult:
    """A fresh instance in the test's database; its first admin is ``admin``."""
    result = init_instance(db, config, name="Web Times", admin_username="admin")
    db.commit()
    return result


@pytest.fixture
def app(config: Config, instance: InitResult) -> Iterator[TipboxFlask]:
    """The journalist app on the instance."""
    made = journalist_ui.create_app(config)
    yield made
    state: JournalistState = made.extensions[EXTENSION]
    state.engine.dispose()


def _page(client: FlaskClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, path
    return response.get_data(as_text=True)


def _language_links(page: str, path: str, current: str) -> None:
    """The page links to itself (``path``) in every language, marking ``current``."""
    assert '<nav class="languages"' in page
    for code in LANGUAGES:
        link = f'<a href="{path}?l={code}" lang="{code}" hreflang="{code}"'
        assert link in page, code
        marked = f'{link} aria-current="page">{LANGUAGE_NAMES[code]}</a>'
        assert (marked in page) == (code == current), code


@pytest.mark.parametrize("language", ["ru", "kk"])
def test_the_login_page_speaks_the_language_asked_for(app: TipboxFlask, language: str) -> None:
    client = app.test_client()
    page = _page(client, f"/login?l={language}")
    assert f'<html lang="{language}">' in page
    assert f"<h1>{_translated(language, 'Log in')}</h1>" in page
    for msgid in LOGIN_WORDS:
        assert _translated(language, msgid) in page
    assert "Username" not in page
    _language_links(page, "/login", language)
    # The choice is remembered: the next page comes in the same language without ?l=.
    assert f'<html lang="{language}">' in _page(client, "/login")
    assert "Username" in _page(client, "/login?l=en")


def test_the_login_page_is_english_by_default(app: TipboxFlask) -> None:
    page = _page(app.test_client(), "/login")
    assert '<html lang="en">' in page
    assert "<h1>Log in</h1>" in page
    for msgid in LOGIN_WORDS:
        assert msgid in page
    _language_links(page, "/login", "en")


@pytest.mark.parametrize("language", ["ru", "kk"])
def test_error_pages_are_translated(app: TipboxFlask, language: str) -> None:
    response = app.test_client().get(f"/no-such-page?l={language}")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    for msgid in ("Not found", "There is nothing at this address."):
        assert _translated(language, msgid) in page
    assert _translated(language, "Error %(code)s") % {"code": 404} in page
    assert "Error 404" not in page
    # No language links where no page matched: a link would echo the path sent.
    assert 'class="languages"' not in page


def test_a_failed_login_offers_the_login_page_in_each_language(app: TipboxFlask) -> None:
    client = app.test_client()
    page = _page(client, "/login?l=kk")
    token = TOKEN_RE.search(page)
    assert token is not None
    fields = {"username": "nobody", "passphrase": "wrong", "code": "000000"}
    response = client.post("/login", data={"csrf_token": token.group(1), **fields})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert _translated("kk", FAILED) in page
    _language_links(page, "/login", "kk")


def test_the_new_passphrase_page_offers_no_way_away(
    app: TipboxFlask, db: Session, instance: InitResult
) -> None:
    # The new passphrase is shown once: a language link would lose it.
    client = app.test_client()
    token = TOKEN_RE.search(_page(client, "/login?l=ru"))
    assert token is not None
    admin = instance.admin
    login = {
        "csrf_token": token.group(1),
        "username": "admin",
        "passphrase": admin.passphrase,
        "code": pyotp.TOTP(admin.totp_secret).now(),
    }
    assert client.post("/login", data=login).status_code == 303
    account = _page(client, "/account")
    assert "Смена парольной фразы" in account
    _language_links(account, "/account", "ru")
    token = TOKEN_RE.search(account)
    assert token is not None
    fields = {"csrf_token": token.group(1), "passphrase": admin.passphrase}
    response = client.post("/account/passphrase", data=fields)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Ваша новая парольная фраза" in page
    assert 'class="languages"' not in page
