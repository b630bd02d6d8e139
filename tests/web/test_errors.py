"""Error pages: readable HTML, JSON on request, never a traceback or request data."""

from __future__ import annotations

import logging

import pytest
from flask import Flask

# Planted in every request below; none of it may come back in a page or reach a log.
SECRET = "PLAINTEXT-7f3a9c"
JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def _boom_app(app: Flask) -> Flask:
    """Add a view that fails with the secret in its exception message and its locals."""

    def boom() -> str:
        plaintext = SECRET
        raise ValueError(f"could not parse {plaintext}")

    boom.__dict__["tipbox_public"] = True  # the journalist app: no session needed
    app.add_url_rule("/boom", "boom", boom)
    return app


def _trigger(app: Flask, code: int, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    client = _boom_app(app).test_client()
    headers = {**headers, "User-Agent": f"agent-{SECRET}", "X-Secret": SECRET}
    if code == 404:
        return client.get(f"/missing-{SECRET}?q={SECRET}", headers=headers)
    if code == 405:
        return client.put(f"/?q={SECRET}", data={"field": SECRET}, headers=headers)
    if code == 413:
        body = f"field={SECRET}&pad=" + "x" * (2 * 1024 * 1024)
        return client.post(
            "/logout",
            data=body,
            content_type="application/x-www-form-urlencoded",
            headers=headers,
        )
    if code == 500:
        return client.get(f"/boom?q={SECRET}", headers=headers)
    raise AssertionError(code)


CODES = [404, 405, 413, 500]


@pytest.mark.parametrize("code", CODES)
def test_error_page_is_readable_html(app: Flask, code: int) -> None:
    response = _trigger(app, code, HTML)
    assert response.status_code == code
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert page.startswith("<!doctype html>")
    assert f"Error {code}" in page
    assert "<h1" in page
    assert "Traceback" not in page
    assert SECRET not in page
    assert "ValueError" not in page


@pytest.mark.parametrize("code", CODES)
def test_error_is_json_when_asked(app: Flask, code: int) -> None:
    response = _trigger(app, code, JSON)
    assert response.status_code == code
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["title"]
    assert body["error"]["message"]
    assert SECRET not in response.get_data(as_text=True)


def test_405_keeps_the_allow_header(app: Flask) -> None:
    response = app.test_client().put("/")
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "HEAD"}


@pytest.mark.parametrize("code", CODES)
def test_errors_leave_no_request_data_in_the_log(
    app: Flask, code: int, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        _trigger(app, code, HTML)
    text = "\n".join(
        f"{record.name} {record.getMessage()} {record.exc_text or ''} {record.exc_info or ''}"
        for record in caplog.records
    )
    assert SECRET not in text
    assert "/missing" not in text
    assert "agent-" not in text
    assert "Traceback" not in text
    for record in caplog.records:
        assert record.exc_info is None


def test_a_500_is_logged_as_type_and_place_only(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        _trigger(app, 500, HTML)
    messages = [record.getMessage() for record in caplog.records]
    assert any(
        "builtins.ValueError" in message and "test_errors.py" in message for message in messages
    ), messages
    assert not any(SECRET in message for message in messages)


def test_the_source_app_logs_nothing_for_a_normal_visit(
    web_config: object, caplog: pytest.LogCaptureFixture
) -> None:
    import tipbox.source
    from tipbox.config import Config

    assert isinstance(web_config, Config)
    app = tipbox.source.create_app(web_config)
    with caplog.at_level(logging.DEBUG):
        client = app.test_client()
        client.get("/")
        client.get("/healthz")
        client.get("/static-web/tipbox.css")
    assert caplog.records == []
