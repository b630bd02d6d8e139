"""The source's whole journey, driven the same way in Chromium (Playwright) and Firefox
(Marionette): first contact, confirm the codename, submit a message and a file, come
back with the codename and read a journalist's reply."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

# How the tests find things on the pages (docs/source-app.md sections 1 and 4).
GENERATE_BUTTON = 'form[action$="/generate"] button[type="submit"]'
CODENAME_SHOWN = "p.codename"
CONFIRM_INPUT = 'form[action$="/confirm"] input[name="codename"]'
CONFIRM_BUTTON = 'form[action$="/confirm"] button[type="submit"]'
MESSAGE_INPUT = '#submit-form textarea[name="message"]'
FILES_INPUT = '#submit-form input[name="files"]'
SUBMIT_BUTTON = '#submit-form button[type="submit"]'
LOGIN_INPUT = 'form[action$="/login"] input[name="codename"]'
LOGIN_BUTTON = 'form[action$="/login"] button[type="submit"]'
LOGOUT_BUTTON = 'form[action$="/logout"] button[type="submit"]'
REPLIES = "main"

TIMEOUT = 60.0


@dataclass(frozen=True)
class Upload:
    """A file the source sends: its name, bytes and a path holding them (for Firefox)."""

    name: str
    content: bytes
    path: Path


class Driver(Protocol):
    """What the journey needs of a browser."""

    def goto(self, url: str) -> None: ...
    def click(self, selector: str) -> None: ...
    def fill(self, selector: str, value: str) -> None: ...
    def attach(self, selector: str, upload: Upload) -> None: ...
    def text(self, selector: str) -> str: ...
    def url(self) -> str: ...
    def wait_for(self, selector: str) -> None: ...
    def new_visit(self) -> None: ...


class PlaywrightDriver:
    """A Playwright page; ``new_visit`` opens a fresh context (no cookies)."""

    def __init__(self, browser: Any, *, javascript: bool) -> None:
        self._browser = browser
        self._javascript = javascript
        self.context: Any = None
        self.page: Any = None
        self.new_visit()

    def new_visit(self) -> None:
        if self.context is not None:
            self.context.close()
        self.context = self._browser.new_context(java_script_enabled=self._javascript)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT * 1000)

    def goto(self, url: str) -> None:
        self.page.goto(url)

    def click(self, selector: str) -> None:
        with self.page.expect_navigation(wait_until="load"):
            self.page.click(selector)

    def fill(self, selector: str, value: str) -> None:
        self.page.fill(selector, value)

    def attach(self, selector: str, upload: Upload) -> None:
        self.page.set_input_files(
            selector,
            files=[{"name": upload.name, "mimeType": "text/plain", "buffer": upload.content}],
        )

    def text(self, selector: str) -> str:
        return str(self.page.inner_text(selector))

    def url(self) -> str:
        return str(self.page.url)

    def wait_for(self, selector: str) -> None:
        self.page.wait_for_selector(selector)

    def close(self) -> None:
        if self.context is not None:
            self.context.close()


class MarionetteDriver:
    """A Firefox window through Marionette; ``new_visit`` clears the cookies."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def new_visit(self) -> None:
        self.client.delete_all_cookies()

    def goto(self, url: str) -> None:
        self.client.navigate(url)

    def click(self, selector: str) -> None:
        before = self.client.get_url()
        old = self.client.find_element("css selector", "html")
        self.client.find_element("css selector", selector).click()
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                if self.client.get_url() != before or not old.is_displayed():
                    break
            except Exception:
                break
            time.sleep(0.1)
        self._wait_loaded()

    def _wait_loaded(self) -> None:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                if self.client.execute_script("return document.readyState") == "complete":
                    return
            except Exception:
                return
            time.sleep(0.1)

    def fill(self, selector: str, value: str) -> None:
        element = self.client.find_element("css selector", selector)
        element.clear()
        element.send_keys(value)

    def attach(self, selector: str, upload: Upload) -> None:
        self.client.find_element("css selector", selector).send_keys(str(upload.path))

    def text(self, selector: str) -> str:
        return str(self.client.find_element("css selector", selector).text)

    def url(self) -> str:
        return str(self.client.get_url())

    def wait_for(self, selector: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.client.find_elements("css selector", selector):
                return
            time.sleep(0.1)
        raise AssertionError(f"{selector} never appeared")


def first_contact(driver: Driver, base: str) -> str:
    """Get a codename, confirm it; return it (as the page showed it)."""
    driver.goto(f"{base}/")
    driver.click(GENERATE_BUTTON)
    codename = " ".join(driver.text(CODENAME_SHOWN).split())
    assert len(codename.split()) == 7, codename
    driver.fill(CONFIRM_INPUT, codename)
    driver.click(CONFIRM_BUTTON)
    assert "/submit" in driver.url(), driver.url()
    return codename


def submit(driver: Driver, message: str, upload: Upload) -> None:
    """Send a message and a file from the submit page; wait for the confirmation."""
    driver.wait_for(MESSAGE_INPUT)
    driver.fill(MESSAGE_INPUT, message)
    driver.attach(FILES_INPUT, upload)
    driver.click(SUBMIT_BUTTON)
    deadline = time.monotonic() + TIMEOUT
    while "sent=1" not in driver.url() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "sent=1" in driver.url(), driver.url()


def come_back(driver: Driver, base: str, codename: str) -> str:
    """Log in again with the codename in a fresh visit; return the replies page's text."""
    driver.new_visit()
    driver.goto(f"{base}/login")
    driver.fill(LOGIN_INPUT, codename)
    driver.click(LOGIN_BUTTON)
    assert "/replies" in driver.url(), driver.url()
    return driver.text(REPLIES)
