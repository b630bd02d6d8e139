"""CSRF on every state change, and the cookie flags of both apps."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from tipbox.config import Config
from tipbox.web.cookies import COOKIE_SECURE_SETTING

from .conftest import FACTORIES

COOKIE_NAME = {"source": "tipbox_source", "journalist": "tipbox_journalist"}


def _csrf_token(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match is not None, "the page has no CSRF token"
    return match.group(1)


def _set_cookie_headers(response: TestResponse) -> list[str]:
    return response.headers.getlist("Set-Cookie")


def test_post_without_token_is_refused(app: Flask) -> None:
    client = app.test_client()
    client.get("/", follow_redirects=True)
    response = client.post("/logout")
    assert response.status_code == 400
    assert "Form expired" in response.get_data(as_text=True)


def test_post_with_a_wrong_token_is_refused(app: Flask) -> None:
    client = app.test_client()
    client.get("/", follow_redirects=True)
    response = client.post("/logout", data={"csrf_token": "forged"})
    assert response.status_code == 400


def test_post_with_the_page_token_is_accepted(app: Flask) -> None:
    client = app.test_client()
    token = _csrf_token(client.get("/", follow_redirects=True).get_data(as_text=True))
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 303
    expected = "/logged-out" if app.config["TIPBOX_KIND"] == "source" else "/login"
    assert response.headers["Location"] == expected


def test_token_from_another_browser_is_refused(app: Flask) -> None:
    token = _csrf_token(app.test_client().get("/", follow_redirects=True).get_data(as_text=True))
    other = app.test_client()
    other.get("/", follow_redirects=True)
    assert other.post("/logout", data={"csrf_token": token}).status_code == 400


def test_the_csrf_check_needs_no_referer(app: Flask) -> None:
    # The pages send no Referer, and a request over https must pass all the same.
    client = app.test_client()
    token = _csrf_token(
        client.get("/", base_url="https://localhost", follow_redirects=True).get_data(as_text=True)
    )
    response = client.post("/logout", data={"csrf_token": token}, base_url="https://localhost")
    assert response.status_code == 303


def test_csrf_tokens_live_as_long_as_the_session(
    app: Flask, app_kind: str, web_config: Config
) -> None:
    expected = (
        web_config.source_session_absolute_seconds
        if app_kind == "source"
        else web_config.journalist_session_absolute_seconds
    )
    assert app.config["WTF_CSRF_TIME_LIMIT"] >= expected
    assert app.config["WTF_CSRF_SSL_STRICT"] is False


def test_cookie_flags(app: Flask, app_kind: str) -> None:
    response = app.test_client().get("/", follow_redirects=True)
    cookies = _set_cookie_headers(response)
    assert len(cookies) == 1
    cookie = cookies[0]
    name, _, _ = cookie.partition("=")
    assert name == COOKIE_NAME[app_kind]
    attributes = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")}
    assert "httponly" in attributes
    assert attributes["samesite"] == "SameSite=Strict"
    assert "secure" in attributes
    assert attributes["path"] == "Path=/"
    # Host-only, and gone when the browser closes.
    assert "domain" not in attributes
    assert "expires" not in attributes
    assert "max-age" not in attributes


def test_the_two_apps_use_distinct_cookie_names(web_config: Config) -> None:
    names = set()
    for factory in FACTORIES.values():
        cookie = _set_cookie_headers(
            factory(web_config).test_client().get("/", follow_redirects=True)
        )[0]
        names.add(cookie.partition("=")[0])
    assert names == {"tipbox_source", "tipbox_journalist"}


@pytest.mark.parametrize("demo", [False, True])
def test_secure_is_on_by_default_even_for_the_demo(web_config: Config, demo: bool) -> None:
    for factory in FACTORIES.values():
        app = factory(replace(web_config, demo=demo))
        assert "Secure" in _set_cookie_headers(app.test_client().get("/", follow_redirects=True))[0]


def test_secure_can_be_turned_off_explicitly(web_config: Config) -> None:
    config = replace(web_config, extra={COOKIE_SECURE_SETTING: "0"})
    for factory in FACTORIES.values():
        cookie = _set_cookie_headers(factory(config).test_client().get("/", follow_redirects=True))[
            0
        ]
        assert "Secure" not in cookie
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
