"""Both apps in real browsers: the CSP lets our own pages work and stops the rest.

Debian's Chromium through Playwright (which never downloads a browser here), and Debian's
Firefox ESR through Marionette, since Tor Browser is a Firefox ESR. Skipped when a browser
is missing, unless ``TIPBOX_REQUIRE_BROWSER=1`` (CI) makes that a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from tipbox.config import Config

from .conftest import FACTORIES

pytestmark = pytest.mark.browser

sync_api = pytest.importorskip("playwright.sync_api")


def _find_browser(label: str, *names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("TIPBOX_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{label} is missing and TIPBOX_REQUIRE_BROWSER=1")
    pytest.skip(f"{label} is missing")


def _chromium() -> str:
    return _find_browser("Chromium", "chromium", "chromium-browser")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module."""
    executable = _chromium()
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def serve_app() -> Iterator[Callable[[Flask], str]]:
    """Serve an app over real HTTP on 127.0.0.1 in a thread; returns its base URL."""
    servers: list[Any] = []

    def start(app: Flask) -> str:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


class PageLog:
    """Console messages and page errors of one page."""

    def __init__(self, page: Any) -> None:
        self.messages: list[str] = []
        page.on("console", lambda msg: self.messages.append(f"{msg.type}: {msg.text}"))
        page.on("pageerror", lambda exc: self.messages.append(f"pageerror: {exc}"))

    def problems(self) -> list[str]:
        return [m for m in self.messages if m.split(":")[0] in {"error", "warning", "pageerror"}]


@pytest.mark.parametrize("kind", sorted(FACTORIES))
def test_placeholder_page_renders_without_csp_or_policy_errors(
    browser: Any, serve_app: Callable[[Flask], str], web_config: Config, kind: str
) -> None:
    base = serve_app(FACTORIES[kind](web_config))
    context = browser.new_context()
    page = context.new_page()
    log = PageLog(page)
    response = page.goto(f"{base}/")
    assert response.status == 200
    # The stylesheet from 'self' applied (the header's background comes from it).
    background = page.eval_on_selector(".site-header", "e => getComputedStyle(e).backgroundColor")
    assert background == "rgb(29, 53, 87)"
    page.goto(f"{base}/missing")
    assert "Not found" in page.inner_text("h1")
    # No CSP violation, no unrecognised Permissions-Policy feature, no script error: only
    # the 404 itself.
    assert [m for m in log.problems() if "status of 404" not in m] == [], log.messages
    context.close()


@pytest.mark.parametrize("kind", ["journalist"])
def test_a_csrf_form_posts_without_referer_in_chromium(
    browser: Any, serve_app: Callable[[Flask], str], web_config: Config, kind: str
) -> None:
    """The Secure, SameSite=Strict cookie is kept on http://127.0.0.1 and CSRF passes
    without a Referer."""
    base = serve_app(FACTORIES[kind](web_config))
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{base}/")
    cookies = {cookie["name"]: cookie for cookie in context.cookies()}
    name = f"tipbox_{kind}"
    assert cookies[name]["secure"] is True
    assert cookies[name]["httpOnly"] is True
    assert cookies[name]["sameSite"] == "Strict"
    # The journalist start page without a session is the login form: a wrong login must
    # get the login page's answer, not "Form expired".
    assert page.url == f"{base}/login"
    for selector in ("#username", "#passphrase", "#code"):
        page.fill(selector, "wrong")
    with page.expect_navigation():
        page.click("form.login button")
    assert page.url == f"{base}/login"
    assert "Log in" in page.inner_text("h1")
    assert "Login failed" in page.inner_text("main")
    context.close()


# -- Firefox ESR (the engine of Tor Browser) -------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def firefox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A headless Firefox ESR driven through Marionette."""
    executable = _find_browser("Firefox ESR", "firefox-esr", "firefox")
    marionette = pytest.importorskip("marionette_driver.marionette")
    profile = tmp_path_factory.mktemp("firefox-profile")
    port = _free_port()
    (profile / "user.js").write_text(f'user_pref("marionette.port", {port});\n')
    process = subprocess.Popen(
        [executable, "--headless", "--marionette", "--no-remote", "--profile", str(profile)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = marionette.Marionette(host="127.0.0.1", port=port, startup_timeout=60)
        client.start_session()
        yield client
        client.delete_session()
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def _firefox_text(client: Any, selector: str, until_not: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text: str = client.find_element("css selector", selector).text
        if text != until_not or time.monotonic() > deadline:
            return text
        time.sleep(0.2)


@pytest.mark.parametrize("kind", ["journalist"])
def test_firefox_keeps_the_secure_cookie_and_posts_a_csrf_form(
    firefox: Any, serve_app: Callable[[Flask], str], web_config: Config, kind: str
) -> None:
    base = serve_app(FACTORIES[kind](web_config))
    firefox.delete_all_cookies()
    firefox.navigate(f"{base}/")
    background = firefox.execute_script(
        "return getComputedStyle(document.querySelector('.site-header')).backgroundColor"
    )
    assert background == "rgb(29, 53, 87)"
    cookies = {cookie["name"]: cookie for cookie in firefox.get_cookies()}
    assert cookies[f"tipbox_{kind}"]["secure"] is True
    assert cookies[f"tipbox_{kind}"]["httpOnly"] is True
    # Mark this page, so that the page after the POST and its redirect is told apart.
    firefox.execute_script("window.tipboxBefore = true;")
    for selector in ("#username", "#passphrase", "#code"):
        firefox.find_element("css selector", selector).send_keys("wrong")
    firefox.find_element("css selector", "form.login button").click()
    deadline = time.monotonic() + 20
    while firefox.execute_script("return window.tipboxBefore === true;"):
        assert time.monotonic() < deadline, "the login form did not navigate"
        time.sleep(0.1)
    # Back on the login page with its answer, not on the "Form expired" error page.
    assert "Log in" in firefox.find_element("css selector", "h1").text
    assert "Login failed" in firefox.find_element("css selector", "main").text
    assert firefox.get_url() == f"{base}/login"
