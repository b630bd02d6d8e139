"""Across both apps, in Chromium, through real gunicorn processes (issue #4's journey).

A source sends a message and a file (with and without JavaScript); a journalist logs in
with passphrase and TOTP, finds the source, reads the message, downloads the file (same
bytes), replies; the source logs in and reads the verified reply. The message holds a
``<script>`` and the file is HTML named with a right-to-left override: the message shows as
text, the file downloads as an attachment under a sanitised name, and no script runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import select

from tipbox.db import transaction
from tipbox.models import Source

from . import journey
from .conftest import Instance, LiveServer, start_server

pytestmark = pytest.mark.browser

HOSTILE_HTML = b"<html><body><script>window.__pwned = 1</script><h1>pwned</h1></body></html>"
RLO_NAME = "x\u202elmth.html"


@pytest.fixture(scope="module")
def journalist_server(live_instance: Instance) -> Iterator[LiveServer]:
    """The journalist app of ``live_instance`` under gunicorn."""
    server = start_server(live_instance, "journalist", "journalist")
    yield server
    server.process.terminate()
    server.process.wait(timeout=60)


@pytest.fixture(scope="module")
def totp_steps() -> list[int]:
    """Time steps already used: a code is accepted once, so each login takes a newer one."""
    return []


def _fresh_code(secret: str, used: list[int]) -> str:
    totp = pyotp.TOTP(secret)
    while True:
        now = int(time.time()) // 30
        # The app accepts the current step and one either side, each only once.
        step = max(now, (used[-1] + 1) if used else now)
        if step <= now + 1:
            used.append(step)
            return totp.at(step * 30)
        time.sleep(1)


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_source_to_journalist_and_back(
    chromium: object,
    source_server: LiveServer,
    journalist_server: LiveServer,
    live_instance: Instance,
    totp_steps: list[int],
    tmp_path: Path,
    javascript: bool,
) -> None:
    message = f"<script>window.__pwned = 1</script> Look at page {tmp_path.name}."
    upload = journey.Upload(RLO_NAME, HOSTILE_HTML, tmp_path / "unused")
    source = journey.PlaywrightDriver(chromium, javascript=javascript)
    desk = journey.PlaywrightDriver(chromium, javascript=True)
    try:
        codename = journey.first_contact(source, source_server.base)
        journey.submit(source, message, upload)
        with transaction(live_instance.factory) as session:
            designation = session.scalars(
                select(Source.designation).order_by(Source.id.desc()).limit(1)
            ).one()
        assert designation

        page = desk.page
        page.goto(f"{journalist_server.base}/login")
        page.fill("#username", live_instance.admin.username)
        page.fill("#passphrase", live_instance.admin.passphrase)
        page.fill("#code", _fresh_code(live_instance.admin.totp_secret, totp_steps))
        with page.expect_navigation():
            page.click("form.login button")
        with page.expect_navigation():
            page.click(f"a.source-link:text-is('{designation}')")

        # The message is text on the page, and its script never ran.
        assert message in page.inner_text("main")
        assert page.evaluate("typeof window.__pwned") == "undefined"

        # The file downloads as an attachment under a sanitised name, bytes intact.
        with page.expect_download() as caught:
            page.click("a[href*='/download']")
        download = caught.value
        assert download.suggested_filename == "xlmth.html"
        assert Path(download.path()).read_bytes() == HOSTILE_HTML
        assert page.evaluate("typeof window.__pwned") == "undefined"

        reply = f"Received, thank you ({tmp_path.name})."
        page.fill("#reply-text", reply)
        with page.expect_navigation():
            page.click("form.reply button")
        assert reply in page.inner_text("main")

        # The source comes back and reads the verified reply.
        assert reply in journey.come_back(source, source_server.base, codename)
    finally:
        source.close()
        desk.close()
