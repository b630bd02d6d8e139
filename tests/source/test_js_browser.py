"""The bundled browser script (``make static``'s source.js) in real browsers.

A tiny static server (``http.server`` in a thread) sends a test page with the submit form
of docs/source-app.md section 4 and the source app's exact CSP; the page loads the bundle
with its SRI hash. Checked in headless Chromium (Playwright, the system's browser, never a
downloaded one): the self-test passes on WebAssembly and the form is taken over; the post
carries only ciphertext that Python opens; limits, server errors and failures behave as
specified (fail closed, server path only after a click on #js-fallback); without
WebAssembly (``--jitless``, or a CSP without 'wasm-unsafe-eval') the script leaves the form
alone; a tampered bundle or self-test file is refused by SRI. In Firefox ESR (Tor Browser's
engine): the self-test passes and a post carries only ciphertext, and with WebAssembly
turned off as Tor Browser's "Safer" level does, the script does not engage.

Skipped when a browser is missing unless ``TIPBOX_REQUIRE_BROWSER=1``; skipped when node
or node_modules is missing unless ``TIPBOX_REQUIRE_NODE=1``.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import html
import importlib.util
import io
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tipbox.crypto import envelope as env
from tipbox.crypto.directory import Entry, Status
from tipbox.crypto.identity import sign_entry
from tipbox.crypto.keys import Role, keypair_from_seed
from tipbox.web.headers import JOURNALIST_CSP, SOURCE_CSP

pytestmark = pytest.mark.browser

sync_api = pytest.importorskip("playwright.sync_api")

REPO = Path(__file__).resolve().parents[2]
NODE_MODULES = REPO / "node_modules"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]

IDENTITY = keypair_from_seed(Role.IDENTITY, bytes([7]) * 32)
NEWSROOM = keypair_from_seed(Role.NEWSROOM, bytes([8]) * 32)
ENTRY, SIGNATURE = sign_entry(IDENTITY, Entry.for_keys(NEWSROOM.public, Status.CURRENT, 2))
RETIRING_ENTRY, RETIRING_SIGNATURE = sign_entry(
    IDENTITY, Entry.for_keys(NEWSROOM.public, Status.RETIRING, 3)
)
SOURCE_ID = bytes([0x5A]) * 16
ITEM_IDS = [bytes([i]) * 16 for i in range(1, 5)]
MESSAGE = "Здравствуйте!\nThe tender was rigged. Сәлем."
FILE_NAME = "документ.pdf"
FILE_BYTES = bytes((i * 31 + 7) % 256 for i in range(200 * 1024))


def _require(label: str, present: bool, variable: str) -> None:
    if present:
        return
    if os.environ.get(variable) == "1":
        pytest.fail(f"{label} is missing and {variable}=1")
    pytest.skip(f"{label} is missing")


def _load_vendor_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "vendor_static", REPO / "scripts/vendor_static.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """source.js and selftest.json built as ``make static`` builds them."""
    _require("node_modules", (NODE_MODULES / ".bin/esbuild").exists(), "TIPBOX_REQUIRE_NODE")
    dest = tmp_path_factory.mktemp("vendor")
    manifest: dict[str, str] = _load_vendor_script().build(dest)
    return dest, manifest


# -- the static server -------------------------------------------------------------------


@dataclass
class Site:
    """What the test server serves, and what it received."""

    vendor: Path
    page: str = ""
    csp: str = SOURCE_CSP
    files: dict[str, bytes] = field(default_factory=dict)  # overrides of /vendor/<name>
    reply: tuple[int, str] = (303, "/sent")  # (303, location) or (status, HTML page)
    posts: list[tuple[str, bytes]] = field(default_factory=list)  # (content type, body)
    base: str = ""
    integrity: str = ""  # of source.js
    selftest_delay: float = 0.0  # seconds before selftest.json is served


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", self.server.site.csp)
        self.send_header("Cache-Control", "no-store")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        site = self.server.site
        path = self.path.split("?")[0]
        if path == "/page":
            self._send(200, site.page.encode(), "text/html; charset=utf-8")
        elif path == "/favicon.ico":
            self._send(204, b"", "image/x-icon")
        elif path == "/sent":
            self._send(200, b"<!doctype html><main><h1>Sent</h1></main>", "text/html")
        elif path.startswith("/vendor/"):
            name = path.removeprefix("/vendor/")
            if name == "selftest.json":
                time.sleep(site.selftest_delay)
            data = site.files.get(name)
            if data is None and name in ("source.js", "selftest.json"):
                data = (site.vendor / name).read_bytes()
            if data is None:
                self._send(404, b"", "text/plain")
            else:
                kind = "text/javascript" if name.endswith(".js") else "application/json"
                self._send(200, data, kind)
        else:
            self._send(404, b"", "text/plain")

    def do_POST(self) -> None:
        site = self.server.site
        body = self.rfile.read(int(self.headers["Content-Length"]))
        site.posts.append((self.headers["Content-Type"], body))
        status, value = site.reply
        if status == 303:
            self._send(303, b"", "text/plain", Location=value)
        else:
            self._send(status, value.encode(), "text/html; charset=utf-8")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    site: Site


@pytest.fixture
def site(bundle: tuple[Path, dict[str, str]]) -> Iterator[Site]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.site = Site(vendor=bundle[0])
    server.site.base = f"http://127.0.0.1:{server.server_port}"
    server.site.integrity = bundle[1]["source.js"]
    server.site.page = page(server.site.integrity)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.site
    server.shutdown()
    server.server_close()


def page(integrity: str, **overrides: str) -> str:
    """The submit page of docs/source-app.md section 4, with test texts for two messages."""
    data = {
        "source-id": SOURCE_ID.hex(),
        "item-ids": ",".join(i.hex() for i in ITEM_IDS),
        "identity-ed25519": bytes(IDENTITY.public.ed25519 or b"").hex(),
        "newsroom-entry": ENTRY.hex(),
        "newsroom-signature": SIGNATURE.hex(),
        "max-file-bytes": "1048576",
        "max-files": "3",
        "max-message-chars": "1000",
        "selftest": "/vendor/selftest.json",
        "msg-ready": "READY",
        "msg-no-wasm": "SERVER WILL ENCRYPT",
    } | overrides
    attributes = " ".join(f'data-{k}="{html.escape(v)}"' for k, v in data.items())
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>t</title>
<script type="module" src="/vendor/source.js" integrity="{integrity}"></script></head>
<body><main>
<form id="submit-form" method="post" action="/submit" enctype="multipart/form-data" {attributes}>
<input type="hidden" name="csrf_token" value="token-1">
<textarea name="message"></textarea>
<input type="file" name="files" multiple>
<button type="submit" id="send">Send</button>
<button type="button" id="js-fallback" hidden>Send it to the server to encrypt</button>
</form>
<p id="js-status" hidden></p>
<progress id="js-progress" hidden></progress><p id="js-progress-text" hidden></p>
<p id="js-error" hidden></p>
</main></body></html>"""


def parts(content_type: str, body: bytes) -> list[EmailMessage]:
    """The parts of a multipart/form-data body, in order."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    assert isinstance(message, EmailMessage)
    return list(message.iter_parts())  # type: ignore[arg-type]


def part_name(part: EmailMessage) -> str:
    name = part.get_param("name", header="content-disposition")
    assert isinstance(name, str)
    return name


# -- Chromium ------------------------------------------------------------------------------


def _launch(playwright: Any, *extra: str) -> Any:
    _require("Chromium", CHROMIUM.exists(), "TIPBOX_REQUIRE_BROWSER")
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=[*CHROMIUM_ARGS, *extra]
    )


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    with sync_api.sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def chromium(playwright: Any) -> Iterator[Any]:
    browser = _launch(playwright)
    yield browser
    browser.close()


class Page:
    """A page of the test site, with its console messages."""

    def __init__(self, browser: Any, site: Site) -> None:
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.messages: list[str] = []
        self.page.on("console", lambda msg: self.messages.append(f"{msg.type}: {msg.text}"))
        self.page.on("pageerror", lambda exc: self.messages.append(f"pageerror: {exc}"))
        self.site = site

    def open(self) -> None:
        self.page.goto(f"{self.site.base}/page")

    def state(self, *expected: str) -> str:
        """Wait until the form's data-js-state is one of ``expected``; return it."""
        selector = ", ".join(f'#submit-form[data-js-state="{s}"]' for s in expected)
        self.page.wait_for_selector(selector, state="attached", timeout=30_000)
        value: str = self.page.get_attribute("#submit-form", "data-js-state")
        return value

    def visible_text(self, selector: str) -> str | None:
        if self.page.get_attribute(selector, "hidden") is not None:
            return None
        text: str = self.page.inner_text(selector)
        return text

    def problems(self) -> list[str]:
        return [m for m in self.messages if m.split(":")[0] in {"error", "warning", "pageerror"}]

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def opened(chromium: Any, site: Site) -> Iterator[Page]:
    tab = Page(chromium, site)
    yield tab
    tab.close()


def test_selftest_passes_under_the_source_csp_and_the_form_is_taken_over(opened: Page) -> None:
    opened.open()
    assert opened.state("ready", "failed") == "ready", opened.visible_text("#js-error")
    assert opened.visible_text("#js-status") == "READY"
    assert opened.visible_text("#js-error") is None
    assert opened.visible_text("#js-fallback") is None
    # No CSP violation (no eval, no inline code), no script error.
    assert opened.problems() == [], opened.messages


def test_the_post_carries_only_ciphertext_that_python_opens(opened: Page) -> None:
    opened.open()
    assert opened.state("ready", "failed") == "ready"
    opened.page.fill("textarea[name=message]", MESSAGE)
    opened.page.set_input_files(
        "input[name=files]",
        files=[{"name": FILE_NAME, "mimeType": "application/pdf", "buffer": FILE_BYTES}],
    )
    with opened.page.expect_navigation(url=f"{opened.site.base}/sent", timeout=30_000):
        opened.page.click("#send")

    [(content_type, body)] = opened.site.posts
    received = parts(content_type, body)
    assert [part_name(p) for p in received] == ["csrf_token", "mode", "manifest", "blob0", "blob1"]
    fields = {part_name(p): p for p in received}
    assert fields["csrf_token"].get_content() == "token-1"
    assert fields["mode"].get_content() == "browser"
    for name in ("blob0", "blob1"):
        assert fields[name].get_filename() == "blob"
        assert fields[name].get_content_type() == "application/octet-stream"
    # Nothing in clear: not the text, not the file's bytes, not its name.
    assert MESSAGE.split("\n")[1].encode() not in body
    assert FILE_BYTES[:64] not in body
    assert FILE_NAME.encode() not in body

    manifest = json.loads(fields["manifest"].get_content())
    assert manifest["version"] == 1
    assert manifest["source_id"] == SOURCE_ID.hex()
    items = manifest["items"]
    assert [(i["item_id"], i["kind"], i["part"]) for i in items] == [
        (ITEM_IDS[0].hex(), 1, "blob0"),
        (ITEM_IDS[1].hex(), 2, "blob1"),
    ]
    opened_items = []
    for item in items:
        assert item["key_id"] == NEWSROOM.key_id.hex()
        ad = env.additional_data(item["kind"], SOURCE_ID, bytes.fromhex(item["item_id"]))
        key = env.unwrap_key(base64.b64decode(item["wrap"]), NEWSROOM.x25519_private)
        meta = env.open_meta(key, ad, base64.b64decode(item["sealed_meta"]))
        blob = fields[item["part"]].get_payload(decode=True)
        assert isinstance(blob, bytes)
        content = b"".join(env.decrypt_body(key, ad, io.BytesIO(blob), meta.size))
        opened_items.append((meta, content))
    (text_meta, text), (file_meta, data) = opened_items
    assert text_meta == env.Meta("", env.TEXT_MEDIA_TYPE, len(text))
    # Encrypted as a form post would send it: line breaks as CRLF.
    assert text.decode() == MESSAGE.replace("\n", "\r\n")
    assert file_meta == env.Meta(FILE_NAME, "application/pdf", len(FILE_BYTES))
    assert data == FILE_BYTES
    assert opened.problems() == [], opened.messages


def test_limits_are_checked_before_anything_is_sent(opened: Page) -> None:
    opened.site.page = page(opened.site.integrity, **{"max-file-bytes": "1000"})
    opened.open()
    assert opened.state("ready", "failed") == "ready"
    opened.page.click("#send")
    assert opened.visible_text("#js-error") == "Write a message or choose a file."
    opened.page.set_input_files(
        "input[name=files]",
        files=[{"name": "big.bin", "mimeType": "application/octet-stream", "buffer": b"x" * 1001}],
    )
    opened.page.click("#send")
    error = opened.visible_text("#js-error") or ""
    assert "big.bin" in error
    assert "limit" in error
    assert opened.site.posts == []
    assert opened.visible_text("#js-fallback") is None
    assert opened.state("ready") == "ready"


@pytest.mark.parametrize(
    ("reply", "shown"),
    [
        (
            "<header>x</header><main><h1>Busy</h1><p>Try   again\nsoon.</p></main>",
            "Busy Try again soon.",
        ),
        (
            '<main><h1>Send</h1><div role="alert"><p>Nothing was sent. Too many files.</p></div>'
            '<form><label>Message</label></form><a href="/">Back</a></main>',
            "Nothing was sent. Too many files.",
        ),
    ],
)
def test_a_refusal_shows_the_servers_message(opened: Page, reply: str, shown: str) -> None:
    opened.site.reply = (400, f"<!doctype html>{reply}")
    opened.open()
    assert opened.state("ready", "failed") == "ready"
    opened.page.fill("textarea[name=message]", "hello")
    opened.page.click("#send")
    opened.page.wait_for_selector("#js-error:not([hidden])")
    assert opened.visible_text("#js-error") == shown
    assert len(opened.site.posts) == 1
    assert opened.state("ready") == "ready"  # the source may fix it and send again
    assert opened.visible_text("#js-fallback") is None


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"newsroom-signature": SIGNATURE[:-1].hex() + f"{SIGNATURE[-1] ^ 1:02x}"}, "signature"),
        (
            {
                "newsroom-entry": RETIRING_ENTRY.hex(),
                "newsroom-signature": RETIRING_SIGNATURE.hex(),
            },
            "not current",
        ),
        ({"identity-ed25519": NEWSROOM.x25519_public.hex()}, "another identity"),
        ({"item-ids": "zz"}, "malformed ids"),
        ({"selftest": "/vendor/missing.json"}, "no self-test"),
    ],
)
def test_fail_closed_then_the_server_path_only_after_a_click(
    opened: Page, overrides: dict[str, str], why: str
) -> None:
    opened.site.page = page(opened.site.integrity, **overrides)
    opened.open()
    assert opened.state("ready", "failed") == "failed", why
    assert opened.visible_text("#js-error")
    assert opened.visible_text("#js-fallback")
    opened.page.fill("textarea[name=message]", "hello")
    opened.page.click("#send")
    time.sleep(0.5)
    assert opened.site.posts == []  # nothing sent, in any form
    opened.page.dispatch_event("#js-fallback", "click")  # a scripted click is not the source's
    assert opened.page.get_attribute("#submit-form", "data-js-state") == "failed"
    opened.page.click("#js-fallback")
    assert opened.state("server") == "server"
    assert opened.site.posts == []  # the click on the fallback itself sends nothing
    with opened.page.expect_navigation(url=f"{opened.site.base}/sent"):
        opened.page.click("#send")
    [(content_type, body)] = opened.site.posts
    names = [part_name(p) for p in parts(content_type, body)]
    assert names == ["csrf_token", "message", "files"]  # the plain form: the server encrypts


def test_a_submit_during_start_up_sends_nothing(opened: Page) -> None:
    opened.site.selftest_delay = 3.0
    opened.open()
    assert opened.state("starting") == "starting"
    opened.page.fill("textarea[name=message]", "hello")
    opened.page.click("#send")
    assert opened.visible_text("#js-error") == (
        "Encryption is still being prepared. Please try again in a moment."
    )
    assert opened.state("ready", "failed") == "ready"
    assert opened.site.posts == []
    assert opened.visible_text("#js-error") is None


def test_a_tampered_selftest_file_is_refused_by_its_integrity(opened: Page) -> None:
    original = (opened.site.vendor / "selftest.json").read_text()
    opened.site.files["selftest.json"] = original.replace('"kdf"', '"kdf" ').encode()
    opened.open()
    assert opened.state("ready", "failed") == "failed"
    assert opened.visible_text("#js-fallback")


def test_a_tampered_bundle_does_not_run(opened: Page) -> None:
    opened.site.files["source.js"] = (opened.site.vendor / "source.js").read_bytes() + b"\n"
    opened.open()
    opened.page.wait_for_timeout(1000)
    assert opened.page.get_attribute("#submit-form", "data-js-state") is None
    assert any("integrity" in m for m in opened.messages), opened.messages


def _expect_not_engaged(tab: Page) -> None:
    tab.open()
    assert tab.state("off", "ready", "failed") == "off"
    assert tab.visible_text("#js-status") == "SERVER WILL ENCRYPT"
    assert tab.visible_text("#js-error") is None
    # The form is left alone: it posts as it would without JavaScript.
    tab.page.fill("textarea[name=message]", "hello")
    with tab.page.expect_navigation(url=f"{tab.site.base}/sent"):
        tab.page.click("#send")
    [(content_type, body)] = tab.site.posts
    assert [part_name(p) for p in parts(content_type, body)] == ["csrf_token", "message", "files"]


def test_without_webassembly_the_script_does_not_engage(playwright: Any, site: Site) -> None:
    """V8 without a JIT has no WebAssembly at all, as Tor Browser's Safer level."""
    browser = _launch(playwright, "--js-flags=--jitless")
    tab = Page(browser, site)
    try:
        _expect_not_engaged(tab)
        assert tab.problems() == [], tab.messages
    finally:
        tab.close()
        browser.close()


def test_a_csp_without_wasm_unsafe_eval_means_no_webassembly(opened: Page) -> None:
    opened.site.csp = JOURNALIST_CSP
    _expect_not_engaged(opened)


# -- Firefox ESR (Tor Browser's engine) ----------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _firefox(profile: Path, *prefs: str) -> Iterator[Any]:
    executable = shutil.which("firefox-esr") or shutil.which("firefox")
    _require("Firefox ESR", executable is not None, "TIPBOX_REQUIRE_BROWSER")
    assert executable is not None
    marionette = pytest.importorskip("marionette_driver.marionette")
    port = _free_port()
    lines = [f'user_pref("marionette.port", {port});', *prefs]
    (profile / "user.js").write_text("\n".join(lines) + "\n")
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


def _firefox_state(client: Any, timeout: float = 30.0) -> str | None:
    deadline = time.monotonic() + timeout
    while True:
        state: str | None = client.find_element("css selector", "#submit-form").get_attribute(
            "data-js-state"
        )
        if state not in (None, "starting") or time.monotonic() > deadline:
            return state
        time.sleep(0.2)


@pytest.mark.parametrize(
    ("prefs", "expected"),
    [
        ((), "ready"),
        # What Tor Browser's "Safer" security level sets: no WebAssembly.
        (('user_pref("javascript.options.wasm", false);',), "off"),
    ],
    ids=["webassembly", "safer"],
)
def test_firefox(tmp_path: Path, site: Site, prefs: tuple[str, ...], expected: str) -> None:
    with _firefox(tmp_path, *prefs) as client:
        client.navigate(f"{site.base}/page")
        assert _firefox_state(client) == expected
        status = client.find_element("css selector", "#js-status").text
        assert status == ("READY" if expected == "ready" else "SERVER WILL ENCRYPT")


def test_firefox_posts_only_ciphertext(tmp_path: Path, site: Site) -> None:
    """The browser path end to end in Tor Browser's engine: FormData, Blobs and XHR."""
    upload = tmp_path / FILE_NAME
    upload.write_bytes(FILE_BYTES)
    with _firefox(tmp_path) as client:
        client.navigate(f"{site.base}/page")
        assert _firefox_state(client) == "ready"
        client.find_element("css selector", "textarea[name=message]").send_keys(MESSAGE)
        client.find_element("css selector", "input[name=files]").send_keys(str(upload))
        client.find_element("css selector", "#send").click()
        deadline = time.monotonic() + 30
        while not site.posts and time.monotonic() < deadline:
            time.sleep(0.2)
    [(content_type, body)] = site.posts
    received = {part_name(p): p for p in parts(content_type, body)}
    assert list(received) == ["csrf_token", "mode", "manifest", "blob0", "blob1"]
    manifest = json.loads(received["manifest"].get_content())
    contents = []
    for item in manifest["items"]:
        ad = env.additional_data(item["kind"], SOURCE_ID, bytes.fromhex(item["item_id"]))
        key = env.unwrap_key(base64.b64decode(item["wrap"]), NEWSROOM.x25519_private)
        meta = env.open_meta(key, ad, base64.b64decode(item["sealed_meta"]))
        blob = received[item["part"]].get_payload(decode=True)
        assert isinstance(blob, bytes)
        contents.append(
            (meta.name, b"".join(env.decrypt_body(key, ad, io.BytesIO(blob), meta.size)))
        )
    assert contents == [("", MESSAGE.replace("\n", "\r\n").encode()), (FILE_NAME, FILE_BYTES)]
