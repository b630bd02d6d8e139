"""Fixtures for the fuzz tests: one database backend per run, and the real apps on a real
instance with a logged-in client whose CSRF token is at hand.

``db_backend`` is narrowed to the run's own database (SQLite in the SQLite run, PostgreSQL
in the PostgreSQL run), where the suite's default would fuzz SQLite twice: the fuzz
budget is spent once per backend.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from tipbox.config import Config
from tipbox.instance import InitResult, init_instance
from tipbox.models import Item
from tipbox.source import create_app
from tipbox.source.state import EXTENSION, SourceState
from tipbox.storage import TEMP_PREFIX
from tipbox.web import TipboxFlask

from .profiles import PG_URL_ENV

TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
CODENAME_RE = re.compile(r'<p class="codename" lang="en">([^<]+)</p>')
# What an error page must never show: a traceback or an exception's repr.
LEAKS = ("Traceback (most recent", 'File "/', "werkzeug.exceptions", "sqlalchemy.exc", "nacl.")
PAGE_TYPES = frozenset({"text/html", "application/json", "text/plain"})


@pytest.fixture(params=["postgresql" if os.environ.get(PG_URL_ENV) else "sqlite"])
def db_backend(request: pytest.FixtureRequest) -> str:
    """The run's own backend only (see the module docstring)."""
    backend: str = request.param
    return backend


def assert_clean_answer(response: TestResponse) -> None:
    """Not a 500; a page, JSON or a redirect; no traceback text."""
    assert response.status_code != 500, response.get_data(as_text=True)[:2000]
    # 503: busy; 507: no room for files (tipbox.capacity). Any other 5xx is a failure.
    assert response.status_code < 500 or response.status_code in (503, 507), response.status_code
    if response.status_code in (301, 302, 303):
        return
    assert response.mimetype in PAGE_TYPES, response.mimetype
    body = response.get_data(as_text=True)
    for leak in LEAKS:
        assert leak not in body, leak


@dataclass
class SourceRig:
    """The source app on a fresh instance, a client with a confirmed source, and where
    files could be left behind."""

    app: TipboxFlask
    factory: sessionmaker[Session]
    blob_dir: Path
    temp_dir: Path
    client: FlaskClient = field(init=False)
    token: str = ""

    def __post_init__(self) -> None:
        self.client = self.app.test_client()

    def refresh_token(self, path: str = "/") -> None:
        """Read a fresh CSRF token from a page."""
        found = TOKEN_RE.search(self.client.get(path).get_data(as_text=True))
        if found:
            self.token = found.group(1)

    def form(self, path: str, fields: dict[str, str]) -> TestResponse:
        return self.client.post(path, data={"csrf_token": self.token, **fields})

    def new_source(self) -> str:
        """Get a codename and confirm it; the client's session is then a confirmed one."""
        self.refresh_token()
        page = self.form("/generate", {}).get_data(as_text=True)
        found = CODENAME_RE.search(page)
        assert found is not None
        token = TOKEN_RE.search(page)
        assert token is not None
        self.token = token.group(1)
        confirmed = self.form("/confirm", {"codename": found.group(1)})
        assert confirmed.headers["Location"] == "/submit", confirmed.status_code
        self.refresh_token("/submit")
        return found.group(1)

    def item_blobs(self) -> set[str]:
        with self.factory() as db:
            return set(db.scalars(select(Item.blob_id)))

    def item_count(self) -> int:
        with self.factory() as db:
            return int(db.scalar(select(func.count()).select_from(Item)) or 0)

    def files(self) -> tuple[set[str], list[str]]:
        """(names of the blob files, paths of temporary files in the store or temp dir)."""
        blobs: set[str] = set()
        temps: list[str] = []
        for root in (self.blob_dir, self.temp_dir):
            if not root.exists():
                continue
            for path in root.rglob("*"):
                if not path.is_file():
                    continue
                if root == self.blob_dir and not path.name.startswith(TEMP_PREFIX):
                    blobs.add(path.name)
                else:
                    temps.append(str(path))
        return blobs, temps

    def assert_nothing_half_stored(self, items_before: int, accepted: bool) -> None:
        """Every blob belongs to an item, no temp file remains, and a refused request
        stored no item."""
        blobs, temps = self.files()
        assert temps == []
        assert blobs == self.item_blobs()
        if not accepted:
            assert self.item_count() == items_before


@pytest.fixture
def instance(db: Session, config: Config) -> InitResult:
    """A fresh instance in the test's database, its identity exported to keys/."""
    result = init_instance(
        db, config, name="Fuzz Times", admin_username="admin", recovery_in_place=True
    )
    db.commit()
    return result


# Flood budgets (0 turns one off): the fuzz sends hundreds of posts from one source, and
# must reach the parser and the views, not the "too many submissions" page.
_UNMETERED = {"submissions_per_hour": 0, "new_sources_per_minute": 0, "min_free_disk_bytes": 0}


def unmetered(config: Config) -> Config:
    """``config`` with the flood budgets off (those this version of Config has)."""
    names = {f.name for f in fields(config)}
    overrides: dict[str, Any] = {k: v for k, v in _UNMETERED.items() if k in names}
    return replace(config, **overrides)


@pytest.fixture
def source_rig(
    config: Config,
    instance: InitResult,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[SourceRig]:
    """The source app with a confirmed source; the process's temp dir is an empty folder
    of the test's own, so that anything spooled there shows."""
    temp_dir = tmp_path / "system-temp"
    temp_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_dir))
    # The blob directory exists on an installed instance (the installer makes it); a fresh
    # test instance has none until its first blob.
    config.blob_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    app = create_app(unmetered(config))
    rig = SourceRig(app, session_factory, config.blob_dir, temp_dir)
    rig.new_source()
    yield rig
    state: SourceState = app.extensions[EXTENSION]
    state.engine.dispose()


def environ_with(headers: dict[str, str], **extra: Any) -> dict[str, Any]:
    """WSGI environ overrides for raw headers (``HTTP_...``) and extras. CR and LF are
    dropped from values: no HTTP server passes them on inside a header."""
    environ: dict[str, Any] = {
        "HTTP_" + name.upper().replace("-", "_"): one_line(value) for name, value in headers.items()
    }
    environ.update(extra)
    return environ


def one_line(value: str) -> str:
    """A header value as a server hands it on: without CR or LF."""
    return value.replace("\r", "").replace("\n", "")
