"""The whole source journey in real browsers against the source app under gunicorn.

Five ways in: Chromium with JavaScript (browser encryption), Chromium without JavaScript,
Chromium without WebAssembly, and Firefox ESR at Tor Browser's "Safer" and "Safest"
levels (the last three use the server path). Each sends a message and a 5 MiB file
carrying a fresh canary, and then:

- the newsroom decrypts exactly what was sent (both paths store the same format);
- a signed reply made through the domain layer shows after codename login;
- no trace of the canary (raw, hex, base64) is left in the database, the blob store, the
  instance folder, the server's logs or temp directories, or the system temp directory;
- with JavaScript on, no request body the browser sent holds the message, the file name
  or the file's bytes.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tipbox.crypto.envelope import TEXT_MEDIA_TYPE

from . import journey
from .conftest import (
    PG_URL_ENV,
    TOR_SAFER_PREFS,
    TOR_SAFEST_PREFS,
    Firefox,
    Instance,
    LiveServer,
    RecordingRelay,
    start_firefox,
    stop_firefox,
)
from .traces import files_with, patterns, postgres_files

pytestmark = pytest.mark.browser

FILE_BYTES = 5 * 1024 * 1024


class Canary:
    """A unique marker planted in a message, a file name and a file's content."""

    def __init__(self, directory: Path) -> None:
        self.value = f"cnry{secrets.token_hex(10)}"
        self.message = f"The documents you asked about. {self.value}-message"
        self.reply = f"Thank you, we are reading them. {secrets.token_hex(6)}"
        name = f"{self.value}-name.txt"
        body = bytearray(os.urandom(FILE_BYTES))
        marker = f"{self.value}-content".encode()
        for offset in (0, FILE_BYTES // 2, FILE_BYTES - len(marker)):
            body[offset : offset + len(marker)] = marker
        path = directory / name
        path.write_bytes(bytes(body))
        self.upload = journey.Upload(name, bytes(body), path)

    @property
    def bytes(self) -> bytes:
        return self.value.encode()


@pytest.fixture
def relay(source_server: LiveServer) -> Iterator[RecordingRelay]:
    """A recording relay in front of the source app: the browser talks through it."""
    recorder = RecordingRelay(int(source_server.base.rsplit(":", 1)[1]))
    yield recorder
    recorder.close()


@pytest.fixture
def canary(tmp_path: Path) -> Canary:
    """A fresh canary; its upload file lives under the test's own (excluded) tmp dir."""
    return Canary(tmp_path)


def _server_path_journey(
    driver: journey.Driver, relay: RecordingRelay, live: Instance, canary: Canary
) -> None:
    """The journey where the server encrypts: the post carries the form as typed."""
    codename = journey.first_contact(driver, relay.base)
    journey.submit(driver, canary.message, canary.upload)
    _check_stored(live, canary)
    sent = relay.recorded()
    assert b'name="manifest"' not in sent
    assert canary.message.encode() in sent
    live.add_reply(live.source_ids()[-1], canary.reply)
    assert canary.reply in journey.come_back(driver, relay.base, codename)


def _check_stored(live: Instance, canary: Canary) -> None:
    """The newsroom decrypts exactly what the newest source sent."""
    items = live.read_items(live.source_ids()[-1])
    assert [(kind, meta.name, meta.media_type) for kind, meta, _ in items] == [
        (1, "", TEXT_MEDIA_TYPE),
        (2, canary.upload.name, "text/plain"),
    ]
    assert items[0][2].decode() == canary.message
    assert items[1][2] == canary.upload.content


def _read_reply(
    browser: object, relay: RecordingRelay, live: Instance, canary: Canary, codename: str
) -> None:
    live.add_reply(live.source_ids()[-1], canary.reply)
    driver = journey.PlaywrightDriver(browser, javascript=True)
    try:
        assert canary.reply in journey.come_back(driver, relay.base, codename)
    finally:
        driver.close()


def _assert_no_trace(live: Instance, canary: Canary, basetemp: Path) -> None:
    roots = [live.config.data_dir, live.log_dir, live.server_tmp, Path(tempfile.gettempdir())]
    if os.environ.get(PG_URL_ENV):
        roots.extend(postgres_files(live.engine))
    # The client's side is not the server's: the test's own inputs and browser profiles.
    exclude = [basetemp, *Path(tempfile.gettempdir()).glob("playwright*")]
    assert files_with(canary.bytes, roots, exclude) == []


def test_chromium_with_javascript_encrypts_in_the_browser(
    chromium: object,
    relay: RecordingRelay,
    live_instance: Instance,
    canary: Canary,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    driver = journey.PlaywrightDriver(chromium, javascript=True)
    try:
        codename = journey.first_contact(driver, relay.base)
        journey.submit(driver, canary.message, canary.upload)
        _check_stored(live_instance, canary)
        sent = relay.recorded()
    finally:
        driver.close()
    # The post went the browser way, and nothing the source typed or chose left in clear.
    assert b'name="manifest"' in sent
    for needle in [
        canary.message.encode(),
        canary.upload.name.encode(),
        canary.upload.content[1000:1064],
        canary.upload.content[-2000:-1936],
        *patterns(canary.bytes),
    ]:
        assert needle not in sent
    _read_reply(chromium, relay, live_instance, canary, codename)
    _assert_no_trace(live_instance, canary, tmp_path_factory.getbasetemp())
    _assert_no_trace(live_instance, canary, tmp_path_factory.getbasetemp())


def test_chromium_without_javascript_uses_the_server_path(
    chromium: object,
    relay: RecordingRelay,
    live_instance: Instance,
    canary: Canary,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    driver = journey.PlaywrightDriver(chromium, javascript=False)
    try:
        _server_path_journey(driver, relay, live_instance, canary)
    finally:
        driver.close()
    _assert_no_trace(live_instance, canary, tmp_path_factory.getbasetemp())


def test_chromium_without_webassembly_uses_the_server_path(
    chromium_jitless: object,
    relay: RecordingRelay,
    live_instance: Instance,
    canary: Canary,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    driver = journey.PlaywrightDriver(chromium_jitless, javascript=True)
    try:
        assert driver.page.evaluate("typeof WebAssembly") == "undefined"
        _server_path_journey(driver, relay, live_instance, canary)
    finally:
        driver.close()
    _assert_no_trace(live_instance, canary, tmp_path_factory.getbasetemp())


@pytest.fixture(params=["safer", "safest"])
def tor_firefox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Firefox]:
    """Firefox ESR at Tor Browser's "Safer" or "Safest" security level."""
    prefs = TOR_SAFER_PREFS if request.param == "safer" else TOR_SAFEST_PREFS
    profile = tmp_path / "profile"
    profile.mkdir()
    firefox = start_firefox(profile, prefs)
    yield firefox
    stop_firefox(firefox)


def test_firefox_at_tor_browser_levels_uses_the_server_path(
    tor_firefox: Firefox,
    relay: RecordingRelay,
    live_instance: Instance,
    canary: Canary,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    driver = journey.MarionetteDriver(tor_firefox.client)
    _server_path_journey(driver, relay, live_instance, canary)
    _assert_no_trace(live_instance, canary, tmp_path_factory.getbasetemp())
