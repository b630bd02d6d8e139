"""The kill tests' instance: initialised on the test's database (SQLite, and PostgreSQL
when ``TIPBOX_TEST_DATABASE_URL`` is set), with the Flask secret files ``tipbox init``
writes, so that every process started on it shares one instance."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from tipbox.config import Config
from tipbox.db import make_session_factory, transaction
from tipbox.instance import init_instance
from tipbox.web.app import write_secret_keys

from .live import Live


@pytest.fixture
def live(config: Config, engine: Engine) -> Iterator[Live]:
    """An initialised instance; every process a test starts on it is killed at the end."""
    with transaction(make_session_factory(engine)) as session:
        result = init_instance(session, config, name="Crash test", admin_username="admin")
    write_secret_keys(config)
    made = Live(config, engine, result.admin)
    try:
        yield made
    finally:
        made.kill_all()
