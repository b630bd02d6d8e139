"""End-to-end fixtures: a real instance, the source app under real gunicorn, real browsers.

The instance lives on PostgreSQL when ``TIPBOX_TEST_DATABASE_URL`` is set (the CI's second
run) and on SQLite otherwise, so each run drives the browsers once. Browsers: Debian's
Chromium through Playwright (JavaScript on, off, and without WebAssembly via
``--js-flags=--jitless``) and Debian's Firefox ESR through Marionette with Tor Browser's
"Safer" and "Safest" preferences. A missing browser skips, unless
``TIPBOX_REQUIRE_BROWSER=1`` makes it a failure.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from tipbox import conversations, directory, instance, keyring
from tipbox.accounts import Credentials, Unlocked, unlock_journalist
from tipbox.config import TEST_KDF, Config
from tipbox.crypto import envelope
from tipbox.crypto.keys import Role, keypair_from_seed
from tipbox.db import make_engine, make_session_factory, transaction
from tipbox.models import Item, Journalist, Source, Wrap
from tipbox.storage import FilesystemBlobStore

from .processes import children_of, free_port

__all__ = ["children_of"]  # imported from here by the browser tests

PG_URL_ENV = "TIPBOX_TEST_DATABASE_URL"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]

# Tor Browser's security levels (its SecurityLevel module): "Safer" keeps JavaScript on
# onion sites but turns off WebAssembly, asm.js and the JITs; "Safest" turns JavaScript off.
TOR_SAFER_PREFS: dict[str, bool] = {
    "javascript.options.wasm": False,
    "javascript.options.asmjs": False,
    "javascript.options.ion": False,
    "javascript.options.baselinejit": False,
    "javascript.options.native_regexp": False,
    "mathml.disabled": True,
    "gfx.font_rendering.opentype_svg.enabled": False,
    "gfx.font_rendering.graphite.enabled": False,
}
TOR_SAFEST_PREFS: dict[str, bool] = {
    **TOR_SAFER_PREFS,
    "javascript.enabled": False,
    "svg.disabled": True,
}


def find_browser(label: str, *names: str) -> str:
    """The path of a system browser, or skip (fail under ``TIPBOX_REQUIRE_BROWSER=1``)."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("TIPBOX_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{label} is missing and TIPBOX_REQUIRE_BROWSER=1")
    pytest.skip(f"{label} is missing")


# -- the instance ----------------------------------------------------------------------


@dataclass
class Instance:
    """A real tipbox instance on disk and in a database, seen from the newsroom's side."""

    config: Config
    engine: Engine
    factory: sessionmaker[Session]
    store: FilesystemBlobStore
    admin: Credentials
    server_tmp: Path
    log_dir: Path
    recovery_secret: str

    def unlocked_admin(self, session: Session) -> tuple[Journalist, Unlocked]:
        """The admin's row and unlocked keys."""
        row = session.scalars(
            select(Journalist).where(Journalist.username == self.admin.username)
        ).one()
        return row, unlock_journalist(
            session, directory.identity_public(session), row, self.admin.passphrase
        )

    def source_ids(self) -> list[bytes]:
        """Every source's public id, oldest first."""
        with transaction(self.factory) as session:
            return list(session.scalars(select(Source.public_id).order_by(Source.id)))

    def add_reply(self, source_id: bytes, text: str) -> bytes:
        """A signed reply from the admin, made through the domain layer."""
        with transaction(self.factory) as session:
            row, unlocked = self.unlocked_admin(session)
            identity = directory.identity_public(session)
            return conversations.add_reply(
                session, self.store, identity, row, unlocked.keypair, source_id, text
            )

    def read_items(self, source_id: bytes) -> list[tuple[int, envelope.Meta, bytes]]:
        """Every message and file of a source, decrypted as the admin: (kind, meta, bytes)."""
        out = []
        with transaction(self.factory) as session:
            _, unlocked = self.unlocked_admin(session)
            identity = directory.identity_public(session)
            current = directory.current_newsroom_key(session, identity)
            seed = keyring.granted_seed(
                session, identity, unlocked.keypair, Role.NEWSROOM, current.key_id
            )
            newsroom = keypair_from_seed(Role.NEWSROOM, seed)
            items = session.scalars(
                select(Item)
                .join(Source, Item.source_id == Source.id)
                .where(Source.public_id == source_id, Item.kind.in_([1, 2]))
                .order_by(Item.seq)
            ).all()
            for item in items:
                wrap = session.scalars(
                    select(Wrap.wrap).where(Wrap.item_id == item.id, Wrap.key_id == current.key_id)
                ).one()
                key = envelope.unwrap_key(wrap, newsroom.x25519_private, newsroom.x25519_public)
                ad = envelope.additional_data(envelope.Kind(item.kind), source_id, item.public_id)
                meta = envelope.open_meta(key, ad, item.sealed_meta)
                with self.store.open(item.blob_id) as blob:
                    content = b"".join(envelope.decrypt_body(key, ad, blob, meta.size))
                out.append((item.kind, meta, content))
        return out


def _database_url(templates: Any, data_dir: Path) -> Iterator[str]:
    if os.environ.get(PG_URL_ENV):
        server = templates.server()
        name = server.create("tipbox_browser", templates.pg_template())
        try:
            yield server.url_for(name)
        finally:
            server.drop(name)
        return
    path = data_dir / "tipbox.sqlite"
    shutil.copyfile(templates.sqlite_file(), path)
    path.chmod(0o600)
    yield f"sqlite:///{path}"


@pytest.fixture(scope="module")
def live_instance(
    tmp_path_factory: pytest.TempPathFactory, database_templates: Any
) -> Iterator[Instance]:
    """An initialised instance (cheap Argon2id), on PostgreSQL or SQLite (see module doc)."""
    root = tmp_path_factory.mktemp("live")
    data_dir = root / "instance"
    data_dir.mkdir(mode=0o700)
    for url in _database_url(database_templates, data_dir):
        config = replace(
            Config.for_data_dir(data_dir, journalist_kdf=TEST_KDF, codename_kdf=TEST_KDF),
            database_url=url,
        )
        engine = make_engine(config)
        factory = make_session_factory(engine)
        with transaction(factory) as session:
            result = instance.init_instance(
                session,
                config,
                name="Live test newsroom",
                admin_username="admin",
                recovery_in_place=True,
            )
        server_tmp = root / "server-tmp"
        log_dir = root / "logs"
        server_tmp.mkdir()
        log_dir.mkdir()
        assert result.recovery_secret is not None
        yield Instance(
            config,
            engine,
            factory,
            FilesystemBlobStore(config.blob_dir),
            result.admin,
            server_tmp,
            log_dir,
            result.recovery_secret,
        )
        engine.dispose()


# -- the source app under gunicorn ------------------------------------------------------


@dataclass
class LiveServer:
    """A ``python -m tipbox.serve source`` process."""

    process: subprocess.Popen[bytes]
    base: str
    pid: int


def server_env(live: Instance) -> dict[str, str]:
    """The environment a source app process of ``live`` runs with."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIPBOX_")}
    env.update(
        TIPBOX_DATA_DIR=str(live.config.data_dir),
        TIPBOX_DATABASE_URL=live.config.database_url,
        TIPBOX_KEYS_DIR=str(live.config.keys_dir),
        TIPBOX_BLOB_DIR=str(live.config.blob_dir),
        TIPBOX_MAX_FILE_MIB="64",
        # Journeys and the scale-out test make many sources and submissions in a minute:
        # the flood budgets (tests/source/test_floods.py) must not be what they measure.
        TIPBOX_NEW_SOURCES_PER_MINUTE="100000",
        TIPBOX_SUBMISSIONS_PER_HOUR="100000",
        # Werkzeug and Python put temp files here: the tests watch it.
        TMPDIR=str(live.server_tmp),
    )
    return env


def start_source_server(live: Instance, name: str) -> LiveServer:
    """Start the source app on a free port and wait until it answers."""
    return start_server(live, "source", name)


def start_server(live: Instance, app_name: str, name: str) -> LiveServer:
    """Start ``app_name`` (source or journalist) on a free port; wait until it answers."""
    port = free_port()
    out = (live.log_dir / f"{name}.out").open("ab")
    err = (live.log_dir / f"{name}.err").open("ab")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tipbox.serve",
            app_name,
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
        ],
        env=server_env(live),
        stdout=out,
        stderr=err,
        stdin=subprocess.DEVNULL,
    )
    out.close()
    err.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the {app_name} app exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return LiveServer(process, f"http://127.0.0.1:{port}", process.pid)
        except OSError:
            time.sleep(0.2)
    process.kill()
    pytest.fail(f"the {app_name} app did not answer in 30 s")


@pytest.fixture(scope="module")
def source_server(live_instance: Instance) -> Iterator[LiveServer]:
    """The source app of ``live_instance`` under gunicorn."""
    server = start_source_server(live_instance, "source")
    yield server
    server.process.terminate()
    server.process.wait(timeout=60)


# -- browsers ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    """Playwright's sync API (it never downloads a browser here)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    find_browser("Chromium", "chromium")
    with sync_api.sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def chromium(playwright: Any) -> Iterator[Any]:
    """Headless Chromium with JavaScript and WebAssembly."""
    browser = playwright.chromium.launch(
        executable_path=find_browser("Chromium", "chromium"), headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def chromium_jitless(playwright: Any) -> Iterator[Any]:
    """Headless Chromium with JavaScript but no WebAssembly (V8's --jitless removes it)."""
    browser = playwright.chromium.launch(
        executable_path=find_browser("Chromium", "chromium"),
        headless=True,
        args=[*CHROMIUM_ARGS, "--js-flags=--jitless"],
    )
    yield browser
    browser.close()


def _user_js(prefs: dict[str, bool | int | str]) -> str:
    def literal(value: bool | int | str) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value)
        return '"' + value.replace('"', '\\"') + '"'

    return "".join(f'user_pref("{k}", {literal(v)});\n' for k, v in prefs.items())


@dataclass
class Firefox:
    """A headless Firefox ESR process and its Marionette client."""

    client: Any
    process: subprocess.Popen[bytes]


def start_firefox(profile: Path, prefs: dict[str, bool]) -> Firefox:
    """Firefox ESR with ``prefs`` (Tor Browser's level), driven through Marionette."""
    executable = find_browser("Firefox ESR", "firefox-esr")
    marionette = pytest.importorskip("marionette_driver.marionette")
    port = free_port()
    all_prefs: dict[str, bool | int | str] = {
        "marionette.port": port,
        # Offline machine: no update checks, telemetry or captive-portal probes.
        "app.update.enabled": False,
        "network.captive-portal-service.enabled": False,
        "datareporting.policy.dataSubmissionEnabled": False,
        "browser.shell.checkDefaultBrowser": False,
        **prefs,
    }
    (profile / "user.js").write_text(_user_js(all_prefs))
    process = subprocess.Popen(
        [executable, "--headless", "--marionette", "--no-remote", "--profile", str(profile)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = marionette.Marionette(host="127.0.0.1", port=port, startup_timeout=60)
    client.start_session()
    return Firefox(client, process)


def stop_firefox(firefox: Firefox) -> None:
    """End the Marionette session and the process."""
    try:
        firefox.client.delete_session()
    finally:
        firefox.process.terminate()
        try:
            firefox.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            firefox.process.kill()
            firefox.process.wait(timeout=30)


# -- a relay that records what the browser sends ----------------------------------------


class RecordingRelay:
    """A TCP relay in front of a server that keeps every byte the clients send.

    Browsers do not hand a multipart body made of Blobs to their automation APIs, so the
    bytes on the wire are the only faithful record of what a page posted.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.sent = bytearray()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, record: bool) -> None:
        try:
            while data := src.recv(65536):
                if record:
                    with self._lock:
                        self.sent += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def recorded(self) -> bytes:
        """Everything clients have sent so far."""
        with self._lock:
            return bytes(self.sent)

    def close(self) -> None:
        """Stop accepting connections."""
        self._closed.set()
        self._listener.close()
