"""The admin pages: what an admin sees, and that a journalist reaches none of them.

The refusal test walks the app's URL map, so every admin route is tried the day it lands.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from journalist_ui.admin import URL_PREFIX
from tipbox.config import Config
from tipbox.instance import InitResult
from tipbox.models import Journalist
from tipbox.web import TipboxFlask

from .test_auth_web import Browser, app, fresh_code, instance, logged_in, make_bob  # noqa: F401

# Any value fits a converter in an admin URL: a refused request never reaches the view.
SAMPLE_ARGS = {"pid": "ab" * 16, "int": "1", "default": "x", "string": "x"}


@pytest.fixture
def journalist(
    app: TipboxFlask,  # noqa: F811
    db: Session,
    config: Config,
    instance: InitResult,  # noqa: F811
) -> Browser:
    """A browser in which a journalist who is not an admin has logged in."""
    bob = make_bob(db, config, instance)
    db.execute(
        update(Journalist).where(Journalist.username == "bob").values(must_change_passphrase=False)
    )
    db.commit()
    browser = Browser(app, db)
    code = fresh_code(db, "bob", bob.credentials.totp_secret)
    assert browser.login("bob", bob.credentials.passphrase, code).status_code == 303
    return browser


def admin_routes(flask_app: TipboxFlask) -> list[tuple[str, str]]:
    """(method, path) of every admin route, with sample values for its arguments."""
    found = []
    for rule in flask_app.url_map.iter_rules():
        if not rule.rule.startswith(URL_PREFIX + "/") and rule.rule != URL_PREFIX:
            continue
        path = rule.rule
        for name, converter in rule._converters.items():
            kind = type(converter).__name__.removesuffix("Converter").lower()
            value = SAMPLE_ARGS.get("pid" if kind == "publicid" else kind, "x")
            path = re.sub(rf"<[^>]*\b{name}>", value, path)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method, path))
    return found


def test_there_are_admin_routes(app: TipboxFlask) -> None:  # noqa: F811
    assert ("GET", "/admin/audit") in admin_routes(app)


def test_a_journalist_reaches_no_admin_route(
    app: TipboxFlask,  # noqa: F811
    journalist: Browser,
) -> None:
    journalist.get("/")
    routes = admin_routes(app)
    assert routes
    for method, path in routes:
        response = journalist.get(path) if method == "GET" else journalist.post(path, {})
        assert response.status_code == 403, (method, path, response.status_code)
    assert "/admin/" not in journalist.get("/").get_data(as_text=True)


def test_an_admin_reads_the_audit_log(
    app: TipboxFlask,  # noqa: F811
    db: Session,
    instance: InitResult,  # noqa: F811
    journalist: Browser,
) -> None:
    admin = logged_in(app, db, instance)
    html = admin.get("/").get_data(as_text=True)
    assert 'href="/admin/journalists"' in html
    page = admin.get("/admin/audit").get_data(as_text=True)
    assert "<code>login.success</code>" in page
    assert "via=web" in page
    only_bob = admin.get("/admin/audit?actor=bob&kind=login.").get_data(as_text=True)
    assert "<td>bob</td>" in only_bob
    assert "<td>admin</td>" not in only_bob
    for bad in ("kind=evil", "actor=nobody", "since=yesterday", "page=0"):
        assert admin.get(f"/admin/audit?{bad}").status_code == 400
