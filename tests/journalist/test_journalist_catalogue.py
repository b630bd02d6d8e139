"""The journalist app's pages speak the language asked for.

Its catalogues are checked with the source app's in tests/test_catalogues.py (every message
translated, placeholders kept, plural forms the language's own, nothing left out of
extraction, ``.mo`` files built). Here the pages: the login page and an error page in each
language, the language links (plain links, no script), and the one page that must not
offer them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from babel.messages.pofile import read_po
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

import journalist_ui
from journalist_ui.state import EXTENSION, JournalistState
from tipbox.config import Config
from tipbox.instance import InitResult, init_instance
from tipbox.web import TipboxFlask
from tipbox.web.i18n import LANGUAGE_NAMES, LANGUAGES

CATALOGUES = Path(__file__).resolve().parents[2] / "journalist_ui" / "translations"
TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')

# The words of the login form, each as the page shows it in every language.
LOGIN_WORDS = ("Log in", "Username", "Passphrase", "Six-digit code")
FAILED = "Login failed. Check your username, passphrase and code, and try again in a little while."


def _translated(language: str, msgid: str) -> str:
    """``msgid`` as the ``language`` catalogue translates it (English: itself)."""
    if language == "en":
        return msgid
    with (CATALOGUES / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        string = read_po(handle, locale=language)[msgid].string
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
