"""Both apps in real browsers: the CSP lets our own pages work and stops the rest.

Debian's Chromium through Playwright (which never downloads a browser here), and Debian's
Firefox ESR through Marionette, since Tor Browser is a Firefox ESR. Skipped when a browser
is missing, unless ``TIPBOX_REQUIRE_BROWSER=1`` (CI) makes that a failure.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response
from werkzeug.serving import make_server

from tipbox.config import Config

from .conftest import FACTORIES
from .test_static_vendor import NODE_MODULES, vendor

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


@pytest.mark.parametrize("kind", sorted(FACTORIES))
def test_logout_form_works_in_the_browser(
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
    with page.expect_navigation():
        page.click("form.logout button")
    assert page.url == f"{base}/"
    assert "coming soon" in page.inner_text("h1")
    context.close()


def _libsodium_app(app: Flask, vendor_dir: Path, manifest: dict[str, Any]) -> Flask:
    """Test-only routes: a page that loads the vendored libsodium.js the way templates will."""
    files = manifest["files"]

    def integrity(name: str) -> str:
        value: str = files[name]["integrity"]
        return value

    def page() -> str:
        preloads = "".join(
            f'<link rel="modulepreload" href="/_t/vendor/{name}" integrity="{integrity(name)}">'
            for name in ("libsodium.mjs", "libsodium-wrappers.mjs")
        )
        return (
            f'<!doctype html><html><head><meta charset="utf-8">{preloads}'
            '<script type="module" src="/_t/check.mjs"></script></head>'
            '<body><p id="out">pending</p></body></html>'
        )

    def check() -> Response:
        script = """
const out = document.getElementById("out");
try {
  const { default: sodium } = await import("/_t/vendor/libsodium-wrappers.mjs");
  await sodium.ready;
  out.textContent = sodium.to_hex(sodium.crypto_generichash(32, sodium.from_string("tipbox")));
} catch (error) {
  out.textContent = "failed";
}
"""
        return Response(script, mimetype="text/javascript")

    def vendored(name: str) -> Response:
        return Response((vendor_dir / name).read_bytes(), mimetype="text/javascript")

    app.add_url_rule("/_t/page", "t_page", page)
    app.add_url_rule("/_t/check.mjs", "t_check", check)
    app.add_url_rule("/_t/vendor/<name>", "t_vendor", vendored)
    return app


def _run_libsodium_page(browser: Any, base: str) -> tuple[str, list[str]]:
    context = browser.new_context()
    page = context.new_page()
    log = PageLog(page)
    page.goto(f"{base}/_t/page")
    # Polled from Python: Playwright's wait_for_function evaluates a string, which the
    # CSP (rightly) refuses.
    sync_api.expect(page.locator("#out")).not_to_have_text("pending", timeout=20_000)
    result: str = page.inner_text("#out")
    context.close()
    return result, log.messages


@pytest.fixture
def vendored(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """libsodium.js vendored as ``make static`` does it, into a temporary folder."""
    if not (NODE_MODULES / "libsodium-wrappers").is_dir():
        if os.environ.get("TIPBOX_REQUIRE_NODE") == "1":
            pytest.fail("node_modules is missing and TIPBOX_REQUIRE_NODE=1")
        pytest.skip("node_modules is missing: run `npm ci`")
    vendor(NODE_MODULES, tmp_path / "vendor")
    manifest = json.loads((tmp_path / "vendor/manifest.json").read_text())
    return tmp_path / "vendor", manifest


def test_libsodium_runs_under_the_source_csp(
    browser: Any,
    serve_app: Callable[[Flask], str],
    web_config: Config,
    vendored: tuple[Path, dict[str, Any]],
) -> None:
    app = _libsodium_app(FACTORIES["source"](web_config), *vendored)
    result, messages = _run_libsodium_page(browser, serve_app(app))
    assert result == hashlib.blake2b(b"tipbox", digest_size=32).hexdigest(), messages


def test_webassembly_is_refused_under_the_journalist_csp(
    browser: Any,
    serve_app: Callable[[Flask], str],
    web_config: Config,
    vendored: tuple[Path, dict[str, Any]],
) -> None:
    # The journalist CSP lacks 'wasm-unsafe-eval': the same page must not compute anything.
    app = _libsodium_app(FACTORIES["journalist"](web_config), *vendored)
    result, messages = _run_libsodium_page(browser, serve_app(app))
    assert result == "failed", messages


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


def test_firefox_runs_libsodium_under_the_source_csp(
    firefox: Any,
    serve_app: Callable[[Flask], str],
    web_config: Config,
    vendored: tuple[Path, dict[str, Any]],
) -> None:
    base = serve_app(_libsodium_app(FACTORIES["source"](web_config), *vendored))
    firefox.navigate(f"{base}/_t/page")
    result = _firefox_text(firefox, "#out", until_not="pending")
    assert result == hashlib.blake2b(b"tipbox", digest_size=32).hexdigest()


def test_firefox_refuses_webassembly_under_the_journalist_csp(
    firefox: Any,
    serve_app: Callable[[Flask], str],
    web_config: Config,
    vendored: tuple[Path, dict[str, Any]],
) -> None:
    base = serve_app(_libsodium_app(FACTORIES["journalist"](web_config), *vendored))
    firefox.navigate(f"{base}/_t/page")
    assert _firefox_text(firefox, "#out", until_not="pending") == "failed"


@pytest.mark.parametrize("kind", sorted(FACTORIES))
def test_firefox_keeps_the_secure_cookie_and_logs_out(
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
    firefox.find_element("css selector", "form.logout button").click()
    deadline = time.monotonic() + 20
    while firefox.execute_script("return window.tipboxBefore === true;"):
        assert time.monotonic() < deadline, "the logout form did not navigate"
        time.sleep(0.1)
    # Back on the start page, not on the "Form expired" error page.
    assert "coming soon" in firefox.find_element("css selector", "h1").text
    assert firefox.get_url() == f"{base}/"
