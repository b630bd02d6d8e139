"""A database of the run's own for the benchmarks that use one, and an instance in it.

Apart from benchmarks/_server.py, whose gunicorn and Flask imports would weigh on the peak RSS
that benchmarks/keys.py reports.
"""

from __future__ import annotations

import argparse
import secrets
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from tipbox import instance
from tipbox.accounts import Credentials
from tipbox.config import Config
from tipbox.db import make_engine, make_session_factory, transaction, upgrade

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def add_database_url(parser: argparse.ArgumentParser) -> None:
    """The ``--database-url`` option, a PostgreSQL server to make the run's database on."""
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="a PostgreSQL server URL, used only to create and drop the run's own database",
    )


@dataclass
class Database:
    """A database of the run's own: made on the server of ``server_url`` and dropped after
    (``with database:``), or a SQLite file in the instance's folder."""

    server_url: str | None  # None for SQLite
    name: str = field(default_factory=lambda: f"tipbox_bench_{secrets.token_hex(6)}")
    version: str = ""
    created: bool = False

    def url(self, data_dir: Path) -> str:
        """The URL an instance in ``data_dir`` uses (SQLite: its default file there)."""
        if self.server_url is None:
            return f"sqlite:///{data_dir.resolve() / 'tipbox.sqlite'}"
        return make_url(self.server_url).set(database=self.name).render_as_string(False)

    def admin_query(self, sql: str) -> str:
        """Run ``sql`` on the server (outside any database of the run), its first value."""
        assert self.server_url is not None
        engine = create_engine(self.server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            with engine.connect() as conn:
                result = conn.exec_driver_sql(sql)
                return str(result.scalar()) if result.returns_rows else ""
        finally:
            engine.dispose()

    def create(self) -> None:
        """Make the database (nothing to make on SQLite) and note the server's version."""
        if self.server_url is None:
            self.version = sqlite3.sqlite_version
            return
        self.version = self.admin_query("SHOW server_version")
        self.created = True  # from here on, drop() must run whatever happens
        self.admin_query(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        """Drop the database if it was made, whoever is still connected to it."""
        if self.created:
            self.admin_query(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def __enter__(self) -> Database:
        try:
            self.create()
        except BaseException:
            self.drop()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.drop()

    def label(self) -> str:
        """The database in two words and a version: ``PostgreSQL 15.6``."""
        version = self.version.split(" ", 1)[0]  # "15.6 (Debian 15.6-0+deb12u1)": 15.6
        return f"{'SQLite' if self.server_url is None else 'PostgreSQL'} {version}"

    def describe(self) -> str:
        """The report's line about the database."""
        if self.server_url is None:
            return f"SQLite {self.version}, a file in a temporary folder (deleted after)"
        url = make_url(self.server_url)
        return (
            f"PostgreSQL {self.version} at {url.host}:{url.port},"
            f" fresh database {self.name} (dropped after)"
        )


def init_instance(data_dir: Path, db: Database) -> tuple[Config, Credentials]:
    """Migrate the database and initialise an instance in ``data_dir`` with the default
    (real) costs; its config and the admin's credentials."""
    data_dir.mkdir(mode=0o700)
    config = Config.for_data_dir(data_dir, database_url=db.url(data_dir))
    # The blob folder exists before the first upload, as a deployed instance has it
    # (deploy/README.md): the source app reads its disk's free space for every submit form.
    config.blob_dir.mkdir(mode=0o700, exist_ok=True)
    upgrade(config)
    engine = make_engine(config)
    try:
        with transaction(make_session_factory(engine)) as session:
            result = instance.init_instance(
                session, config, name="Benchmark newsroom", admin_username="admin"
            )
    finally:
        engine.dispose()
    return config, result.admin


def server_version(server_url: str) -> str:
    """The version of the PostgreSQL server at ``server_url`` (``SHOW server_version``)."""
    return Database(server_url).admin_query("SHOW server_version")
