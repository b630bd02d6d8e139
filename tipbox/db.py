"""Engines, sessions, transactions and schema migrations.

There is no module-level engine or session: the app factories and the CLI build them from
a ``Config`` and pass them down.

SQLite (the embedded default) is set up on every new connection with ``secure_delete``
(deleted content is overwritten in the file), ``foreign_keys`` (off by default in SQLite),
WAL (readers do not block the writer, so the two app processes can share the file),
``synchronous=FULL`` (a commit that was acknowledged survives a power cut: DESIGN
invariant 10) and a busy timeout. Python's ``sqlite3`` module does not begin a transaction
before a SELECT, so reads would not be isolated; SQLAlchemy takes over ``BEGIN`` instead.
Write transactions begin with ``BEGIN IMMEDIATE``: a deferred transaction that reads and then
writes fails at once with "database is locked" if another connection wrote in between, and
nearly every request reads then writes (its session row, at least). The price is that write
transactions are serialised, so keep them short: never hold one open while streaming a
blob. Read-only work can use ``make_session_factory(engine, read_only=True)``, which
begins with a plain ``BEGIN`` and does not wait for writers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from tipbox.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000
# The execution option that marks a connection's transactions as read-only.
READ_ONLY_OPTION = "tipbox_read_only"


def normalise_url(url: str) -> str:
    """Return ``url`` with the driver tipbox uses: psycopg 3 for PostgreSQL."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(config: Config, **kwargs: Any) -> Engine:
    """Create the engine for ``config.database_url`` (SQLite or PostgreSQL via psycopg 3).

    Extra keyword arguments go to ``sqlalchemy.create_engine``.
    """
    url = make_url(normalise_url(config.database_url))
    if url.get_backend_name() == "sqlite":
        return _make_sqlite_engine(url.render_as_string(hide_password=False), **kwargs)
    if url.get_backend_name() != "postgresql":
        raise ValueError("tipbox supports only SQLite and PostgreSQL databases")
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def _make_sqlite_engine(url: str, **kwargs: Any) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        _create_private_file(Path(database))
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Take BEGIN away from the sqlite3 module (see the module docstring).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA secure_delete = ON")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(READ_ONLY_OPTION):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _create_private_file(path: Path) -> None:
    # SQLite would create the file world-readable under the usual umask; the database
    # holds no plaintext, but its metadata is nobody else's business. The -wal and -shm
    # files inherit the database file's permissions.
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def make_session_factory(engine: Engine, *, read_only: bool = False) -> sessionmaker[Session]:
    """Return a session factory bound to ``engine``.

    Objects stay usable after commit (``expire_on_commit=False``) because views render
    what a domain function returned after its transaction has ended. With ``read_only``,
    transactions do not take SQLite's write lock and PostgreSQL refuses writes in them.
    """
    bind = engine
    if read_only:
        options: dict[str, Any] = {READ_ONLY_OPTION: True}
        if engine.dialect.name == "postgresql":
            options["postgresql_readonly"] = True
        bind = engine.execution_options(**options)
    return sessionmaker(bind=bind, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Open a session and a transaction: commit on success, roll back on any exception."""
    with factory() as session, session.begin():
        yield session


@contextmanager
def instance_transaction(config: Config, *, read_only: bool = False) -> Iterator[Session]:
    """One transaction on the instance's database, on an engine made for it and disposed
    afterwards: what a one-shot command needs."""
    engine = make_engine(config)
    try:
        with transaction(make_session_factory(engine, read_only=read_only)) as session:
            yield session
    finally:
        engine.dispose()


def scrub(engine: Engine) -> None:
    """Push deleted rows out of places where they linger after a delete.

    SQLite: checkpoint the WAL and truncate it (``secure_delete`` has already overwritten
    freed pages in the database file, but old copies of pages stay in the WAL until it is
    reused). PostgreSQL: ``VACUUM``, so that dead row versions are removed from the heap.
    Neither reaches backups, or blocks the file system has already released.
    """
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.connection.driver_connection.execute(  # type: ignore[union-attr]
                "PRAGMA wal_checkpoint(TRUNCATE)"
            )
    else:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM")


# --- migrations -------------------------------------------------------------------------


def alembic_config(config: Config, connection: Connection | None = None) -> AlembicConfig:
    """Build Alembic's configuration in code: no ``alembic.ini`` is needed at run time.

    ``migrations/env.py`` takes the tipbox ``Config`` (and, when given, a connection to run
    on) from ``attributes``.
    """
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["tipbox_config"] = config
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(config: Config, revision: str = "head", connection: Connection | None = None) -> None:
    """Migrate the database up to ``revision`` (the latest by default)."""
    command.upgrade(alembic_config(config, connection), revision)


def downgrade(config: Config, revision: str, connection: Connection | None = None) -> None:
    """Migrate the database down to ``revision`` (``"base"`` drops every table)."""
    command.downgrade(alembic_config(config, connection), revision)


def current_revision(config: Config) -> str | None:
    """Return the database's current revision, or None for a database never migrated."""
    engine = make_engine(config)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str:
    """Return the latest revision the code knows."""
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    head = script.get_current_head()
    if head is None:
        raise RuntimeError("no migrations found")
    return head


def revisions() -> list[str]:
    """Return every revision id, oldest first."""
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]
