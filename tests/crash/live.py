"""What the kill tests share: an initialised instance on disk, real processes started in
their own process groups (so that a whole group can be killed), a source's HTTP client,
``tipbox fsck`` as a process, and reading back every item as the newsroom does."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Test packages import as top-level names at run time; mypy names them tests.browser.
from browser.http_client import Client, csrf_token, new_source  # type: ignore[import-not-found]
from browser.processes import children_of, free_port  # type: ignore[import-not-found]
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from tipbox import conversations, directory
from tipbox.accounts import Credentials, unlock_journalist
from tipbox.config import Config
from tipbox.crypto.envelope import Kind
from tipbox.db import make_session_factory, transaction
from tipbox.models import Journalist, Source
from tipbox.storage import FilesystemBlobStore

TIPBOX = str(Path(sys.executable).with_name("tipbox"))
START_SECONDS = 30.0
WAIT_SECONDS = 30.0


def wait_for(what: str, condition: Callable[[], bool], seconds: float = WAIT_SECONDS) -> None:
    """Poll ``condition`` until it holds; fail, saying ``what``, after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


# --- the instance and its processes --------------------------------------------------------


@dataclass
class Live:
    """An initialised instance, seen from the newsroom's side, and the processes a test
    started (each the leader of its own process group; all killed at the end)."""

    config: Config
    engine: Engine
    admin: Credentials
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def store(self) -> FilesystemBlobStore:
        return FilesystemBlobStore(self.config.blob_dir)

    @property
    def factory(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine)

    @property
    def reads(self) -> sessionmaker[Session]:
        # Read-only: on SQLite it neither waits for nor holds up the processes under test.
        return make_session_factory(self.engine, read_only=True)

    def env(self) -> dict[str, str]:
        """The environment every process of the instance runs with."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIPBOX_")}
        env.update(
            TIPBOX_DATA_DIR=str(self.config.data_dir),
            TIPBOX_DATABASE_URL=self.config.database_url,
            TIPBOX_KEYS_DIR=str(self.config.keys_dir),
            TIPBOX_BLOB_DIR=str(self.config.blob_dir),
            # The kill tests send many submissions from few sources quickly.
            TIPBOX_SUBMISSIONS_PER_HOUR="0",
            TIPBOX_NEW_SOURCES_PER_MINUTE="0",
        )
        return env

    def spawn(
        self, args: list[str], name: str, stdin: int | None = None
    ) -> subprocess.Popen[bytes]:
        """Start ``args`` as the leader of a new process group (output to ``name``.log)."""
        log = (self.config.data_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            args,
            env=self.env(),
            cwd=self.config.data_dir,
            stdin=subprocess.DEVNULL if stdin is None else stdin,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.processes.append(process)
        return process

    def log(self, name: str) -> str:
        return (self.config.data_dir / f"{name}.log").read_text(errors="replace")

    def kill_all(self) -> None:
        """SIGKILL every process group still alive (test teardown)."""
        for process in self.processes:
            if process.poll() is None:
                kill_group(process)

    def fsck(self, *args: str) -> tuple[int, dict[str, Any]]:
        """``tipbox fsck --apps-stopped --json ARGS`` as a process: exit status and result."""
        done = subprocess.run(
            [TIPBOX, "fsck", "--apps-stopped", "--json", *args],
            env=self.env(),
            cwd=self.config.data_dir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.stderr == "", done.stderr
        data: dict[str, Any] = json.loads(done.stdout)
        return done.returncode, data

    def repair_then_check_clean(self) -> dict[str, Any]:
        """``tipbox fsck --repair``, then ``tipbox fsck`` must find the instance clean;
        return what the repair found."""
        code, repaired = self.fsck("--repair")
        assert code == 0, repaired
        assert repaired["remaining"]["clean"], repaired
        code, after = self.fsck()
        assert code == 0, after
        assert after["clean"] is True
        assert after["found"]["young_blobs"] == after["found"]["young_temp_files"] == 0
        assert self.store.incomplete() == []
        found: dict[str, Any] = repaired["found"]
        return found

    def read_everything(self) -> list[str]:
        """Every message and file of every source, opened with the admin's keys (through
        grants of every newsroom key that is not retired), as text."""
        shown: list[str] = []
        with transaction(self.factory) as session:
            identity = directory.identity_public(session)
            row = session.scalars(
                select(Journalist).where(Journalist.username == self.admin.username)
            ).one()
            keys = unlock_journalist(session, identity, row, self.admin.passphrase).keypair
            for source_id in session.scalars(select(Source.public_id).order_by(Source.id)):
                for view in conversations.conversation(
                    session, self.store, identity, keys, source_id
                ):
                    assert not view.damaged, view
                    if view.kind not in (Kind.MESSAGE, Kind.FILE):
                        continue
                    if view.file is None:
                        assert view.text is not None
                        shown.append(view.text)
                        continue
                    download = conversations.open_download(
                        session, self.store, identity, keys, view.item_id
                    )
                    shown.append(b"".join(download.chunks()).decode())
        return shown


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``process``'s whole group (it leads one) and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


# --- the source app under gunicorn ---------------------------------------------------------


@dataclass
class Server:
    """A ``python -m tipbox.serve source`` master."""

    process: subprocess.Popen[bytes]
    port: int

    def healthy(self) -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            try:
                conn.request("GET", "/healthz")
                return conn.getresponse().status == 200
            finally:
                conn.close()
        except OSError:
            return False

    def workers(self) -> list[int]:
        found: list[int] = children_of(self.process.pid)
        return found

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it."""
        self.process.terminate()
        self.process.wait(timeout=60)


def start_source_app(live: Live, name: str, workers: int = 1) -> Server:
    """The source app under real gunicorn, on a free port, once it answers."""
    port = free_port()
    process = live.spawn(
        [
            sys.executable,
            "-m",
            "tipbox.serve",
            "source",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
        ],
        name,
    )
    server = Server(process, port)

    def up() -> bool:
        assert process.poll() is None, live.log(name)
        return server.healthy() and len(server.workers()) == workers

    wait_for(f"the source app {name}", up, START_SECONDS)
    return server


# --- a source, over HTTP -------------------------------------------------------------------


class SourceClient:
    """One source's browser without JavaScript: cookies, forms, the server path (over the
    browser tests' plain HTTP client)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.http = Client(f"http://127.0.0.1:{port}")

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, str, str]:
        """One request with this source's cookies: (status, Location, body text)."""
        answer: tuple[int, str, str] = self.http.request(method, path, body, headers)
        return answer

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The request headers with this source's cookies."""
        cookies: dict[str, str] = self.http.cookies
        cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())
        return {**({"Cookie": cookie} if cookie else {}), **(extra or {})}

    def become_source(self) -> None:
        """Get a codename and confirm it, as a source without JavaScript."""
        new_source(self.http)

    def form_token(self) -> str:
        """The submit form's CSRF token (GET /submit)."""
        status, _, page = self.request("GET", "/submit")
        assert status == 200, page[:300]
        token: str = csrf_token(page)
        return token

    def submit(self, message: str, files: dict[str, bytes]) -> bool:
        """Post a submission on the server path; True when it was acknowledged (the 303
        to the page that shows the receipt)."""
        body, content_type = multipart(self.form_token(), message, files)
        status, location, _ = self.request("POST", "/submit", body, {"Content-Type": content_type})
        return acknowledged(status, location)


def acknowledged(status: int, location: str) -> bool:
    """Whether an answer to POST /submit tells the source the submission is stored."""
    return status == 303 and location.endswith("/submit?sent=1")


BOUNDARY = "tipboxcrashtest0b7e"


def part_head(name: str, filename: str | None = None) -> bytes:
    """The boundary and headers that open one part of a multipart body."""
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
        kind = "Content-Type: application/octet-stream\r\n"
    else:
        kind = ""
    return f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n{kind}\r\n".encode()


def multipart(csrf: str, message: str, files: dict[str, bytes]) -> tuple[bytes, str]:
    """A submit form's body: CSRF token, message and files; and its Content-Type."""
    body = part_head("csrf_token") + csrf.encode() + b"\r\n"
    body += part_head("message") + message.encode() + b"\r\n"
    for name, content in files.items():
        body += part_head("files", name) + content + b"\r\n"
    body += f"--{BOUNDARY}--\r\n".encode()
    return body, f"multipart/form-data; boundary={BOUNDARY}"
