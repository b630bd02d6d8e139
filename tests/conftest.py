"""Fixtures for the whole suite: configuration, databases and the blob store.

``config`` is a ``Config`` under the test's ``tmp_path`` with cheap Argon2id costs.

Databases: a test that touches the database requests ``db`` (a ``Session``),
``session_factory`` or ``engine`` for a migrated database, or ``empty_engine`` for an empty
one. Such a test runs on SQLite and, when ``TIPBOX_TEST_DATABASE_URL`` names a PostgreSQL
server (``postgresql+psycopg://postgres@127.0.0.1:5432/test``), once more on PostgreSQL;
``config.database_url`` then points at that test's own database, so app factories built
from ``config`` see the same data. A test that does not request one of these fixtures gets
a SQLite URL under ``tmp_path`` with no database behind it.

Isolation: every test gets a database of its own, with nothing in it but the schema. The
schema is migrated once per run into a template (a SQLite file, or a PostgreSQL database).

- SQLite: the template file is copied into the test's ``tmp_path``.
- PostgreSQL: a database with a unique random name (``tipbox_test_<hex>``) is made from the
  template with ``CREATE DATABASE … TEMPLATE``. That costs 50 to 300 ms on a busy server, so
  when a test ends its database is recycled rather than dropped: the connections the test
  left open are ended, the schema is fingerprinted (columns, constraints, indexes,
  privileges, triggers, schemas, Alembic revision), and if it still matches the template
  every row is deleted and every sequence restarted, and the database goes back to the pool
  for the next test. A database whose schema a test changed is dropped instead. Empty
  databases (``empty_engine``) are always new from ``template0`` and dropped after. Every
  database of the run is dropped at the end (``DROP DATABASE … WITH (FORCE)``).
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import settings
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from tipbox.config import TEST_KDF, Config
from tipbox.db import make_engine, make_session_factory, normalise_url, upgrade
from tipbox.models import Base
from tipbox.storage import FilesystemBlobStore

PG_URL_ENV = "TIPBOX_TEST_DATABASE_URL"

# In CI (CI=true, .ci/run) every property test draws the same examples, so that a red
# build is reproducible rather than a draw of luck; on a developer's machine they explore.
# (tests/fuzz has profiles of its own.)
settings.register_profile("tipbox-ci", derandomize=True, database=None, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("tipbox-ci")
SQLITE_FILE = "tipbox.sqlite"


# Set by `make test-postgres`: the SQLite run has just run every test on SQLite, so the
# PostgreSQL run leaves out their SQLite cases, but for tests marked ``both_backends``
# (a restore from one backend into the other needs both).
POSTGRES_ONLY_ENV = "TIPBOX_TEST_POSTGRES_ONLY"


def _backends() -> list[str]:
    return ["sqlite", "postgresql"] if os.environ.get(PG_URL_ENV) else ["sqlite"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In a PostgreSQL-only run, deselect the SQLite cases of database tests."""
    if os.environ.get(POSTGRES_ONLY_ENV) != "1" or not os.environ.get(PG_URL_ENV):
        return
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_sqlite = callspec is not None and callspec.params.get("db_backend") == "sqlite"
        if on_sqlite and item.get_closest_marker("both_backends") is None:
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def make_test_config(data_dir: Path, **overrides: object) -> Config:
    """A config under ``data_dir`` with the test Argon2id costs."""
    return Config.for_data_dir(
        data_dir, journalist_kdf=TEST_KDF, codename_kdf=TEST_KDF, **overrides
    )


class PostgresServer:
    """Creates and drops uniquely named databases on the server in ``TIPBOX_TEST_DATABASE_URL``."""

    def __init__(self, url: str) -> None:
        self.url = make_url(normalise_url(url))
        self.admin = create_engine(self.url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        with self.admin.connect() as conn:
            version = int(conn.exec_driver_sql("SHOW server_version_num").scalar_one())
        # FILE_COPY (PostgreSQL 15+) copies a small database several times faster than the
        # default WAL_LOG strategy.
        self.strategy = " STRATEGY FILE_COPY" if version >= 150000 else ""

    def url_for(self, name: str) -> str:
        """The URL of database ``name`` on this server."""
        return self.url.set(database=name).render_as_string(hide_password=False)

    def create(self, prefix: str, template: str = "template0") -> str:
        """Create a new database copied from ``template``; return its name."""
        name = f"{prefix}_{secrets.token_hex(6)}"
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"{self.strategy}')
        return name

    def drop(self, name: str) -> None:
        """Drop database ``name``, ending any connection still open to it."""
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# Everything about a PostgreSQL schema a test could change; rows are not part of it.
_PG_FINGERPRINT = """
SELECT md5(string_agg(x, ',' ORDER BY x)) FROM (
    SELECT c.relname || '.' || a.attname || ':' || format_type(a.atttypid, a.atttypmod)
        || ':' || a.attnotnull || ':' || coalesce(c.relacl::text, '') AS x
    FROM pg_attribute a
    JOIN pg_class c ON a.attrelid = c.oid
    JOIN pg_namespace n ON c.relnamespace = n.oid
    WHERE n.nspname = 'public' AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT conrelid::regclass::text || ':' || conname || ':' || pg_get_constraintdef(oid)
    FROM pg_constraint WHERE connamespace = 'public'::regnamespace
    UNION ALL
    SELECT pg_get_indexdef(i.indexrelid)
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public'
    UNION ALL
    SELECT 'trigger:' || tgrelid::regclass::text || ':' || tgname
    FROM pg_trigger WHERE NOT tgisinternal
    UNION ALL
    SELECT 'schema:' || nspname FROM pg_namespace
    UNION ALL
    SELECT 'revision:' || version_num FROM alembic_version
) AS parts
"""


class Templates:
    """Migrated template databases, made on first use and kept for the whole run."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._sqlite: Path | None = None
        self._server: PostgresServer | None = None
        self._pg_template: str | None = None
        self._pg_fingerprint: str | None = None
        self._pg_free: list[str] = []
        self._pg_all: set[str] = set()

    def sqlite_file(self) -> Path:
        """A SQLite file migrated to head (its WAL checkpointed into it)."""
        if self._sqlite is None:
            cfg = make_test_config(self.directory)
            upgrade(cfg)
            # The last connection closed checkpointed the WAL into the file and removed it.
            assert not (self.directory / f"{SQLITE_FILE}-wal").exists()
            self._sqlite = self.directory / SQLITE_FILE
        return self._sqlite

    def server(self) -> PostgresServer:
        """The PostgreSQL server under test."""
        if self._server is None:
            url = os.environ.get(PG_URL_ENV)
            if not url:
                raise RuntimeError(f"{PG_URL_ENV} is not set")
            self._server = PostgresServer(url)
        return self._server

    def pg_template(self) -> str:
        """The name of a PostgreSQL database migrated to head."""
        if self._pg_template is None:
            server = self.server()
            name = server.create("tipbox_tmpl")
            try:
                upgrade(make_test_config(self.directory, database_url=server.url_for(name)))
                self._pg_fingerprint = self._fingerprint(name)
            except BaseException:
                server.drop(name)
                raise
            self._pg_template = name
        return self._pg_template

    def pg_acquire(self) -> str:
        """A migrated database with no rows: recycled from the pool, or new."""
        if self._pg_free:
            return self._pg_free.pop()
        name = self.server().create("tipbox_test", self.pg_template())
        self._pg_all.add(name)
        return name

    def pg_release(self, name: str) -> None:
        """Put a test's database back in the pool if its schema is intact, else drop it."""
        if self._pg_reset(name):
            self._pg_free.append(name)
        else:
            self._pg_all.discard(name)
            self.server().drop(name)

    def _engine(self, name: str) -> Engine:
        return create_engine(self.server().url_for(name), poolclass=NullPool)

    def _fingerprint(self, name: str) -> str:
        engine = self._engine(name)
        try:
            with engine.connect() as conn:
                return str(conn.exec_driver_sql(_PG_FINGERPRINT).scalar_one())
        finally:
            engine.dispose()

    def _pg_reset(self, name: str) -> bool:
        server = self.server()
        try:
            with server.admin.connect() as conn:
                # End what the test left open (an app's engine, an idle transaction).
                conn.exec_driver_sql(
                    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
                    " WHERE datname = %(name)s AND pid <> pg_backend_pid()",
                    {"name": name},
                )
            if self._fingerprint(name) != self._pg_fingerprint:
                return False
            engine = self._engine(name)
            try:
                with engine.begin() as conn:
                    # DELETE, not TRUNCATE: on tables this small it is many times faster.
                    for table in reversed(Base.metadata.sorted_tables):
                        conn.exec_driver_sql(f'DELETE FROM "{table.name}"')
                    sequences = conn.exec_driver_sql(
                        "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'"
                    ).scalars()
                    for sequence in list(sequences):
                        conn.exec_driver_sql(f'ALTER SEQUENCE "{sequence}" RESTART')
            finally:
                engine.dispose()
        except Exception:
            return False
        return True

    def pg_create_empty(self) -> str:
        """A new database with no tables."""
        name = self.server().create("tipbox_test")
        self._pg_all.add(name)
        return name

    def pg_drop(self, name: str) -> None:
        """Drop a test database."""
        self._pg_all.discard(name)
        self.server().drop(name)

    def close(self) -> None:
        """Drop every PostgreSQL database of the run."""
        if self._server is None:
            return
        for name in sorted(self._pg_all):
            self._server.drop(name)
        if self._pg_template is not None:
            self._server.drop(self._pg_template)
        self._server.admin.dispose()


@pytest.fixture(scope="session")
def database_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Templates]:
    """Migrated templates shared by every test of the run."""
    templates = Templates(tmp_path_factory.mktemp("db-template"))
    yield templates
    templates.close()


@pytest.fixture(params=_backends())
def db_backend(request: pytest.FixtureRequest) -> str:
    """``"sqlite"`` or ``"postgresql"``: each database test runs on every backend."""
    backend: str = request.param
    return backend


def _fresh_database(
    backend: str, tmp_path: Path, templates: Templates, *, migrated: bool
) -> Iterator[str]:
    if backend == "sqlite":
        path = tmp_path.resolve() / SQLITE_FILE
        if migrated:
            shutil.copyfile(templates.sqlite_file(), path)
            path.chmod(0o600)
        yield f"sqlite:///{path}"
        return
    if migrated:
        name = templates.pg_acquire()
        try:
            yield templates.server().url_for(name)
        finally:
            templates.pg_release(name)
    else:
        name = templates.pg_create_empty()
        try:
            yield templates.server().url_for(name)
        finally:
            templates.pg_drop(name)


@pytest.fixture
def database_url(db_backend: str, tmp_path: Path, database_templates: Templates) -> Iterator[str]:
    """The URL of a fresh database migrated to head, on each backend."""
    yield from _fresh_database(db_backend, tmp_path, database_templates, migrated=True)


@pytest.fixture
def empty_database_url(
    db_backend: str, tmp_path: Path, database_templates: Templates
) -> Iterator[str]:
    """The URL of a fresh, empty database (no tables), on each backend."""
    yield from _fresh_database(db_backend, tmp_path, database_templates, migrated=False)


@pytest.fixture
def config(request: pytest.FixtureRequest, tmp_path: Path) -> Config:
    """The test instance's configuration, pointing at the test's database if it has one."""
    cfg = make_test_config(tmp_path)
    for name in ("database_url", "empty_database_url"):
        if name in request.fixturenames:
            url: str = request.getfixturevalue(name)
            return replace(cfg, database_url=url)
    return cfg


@pytest.fixture
def engine(config: Config, database_url: str) -> Iterator[Engine]:
    """An engine on a fresh migrated database."""
    eng = make_engine(config)
    yield eng
    eng.dispose()


@pytest.fixture
def empty_engine(config: Config, empty_database_url: str) -> Iterator[Engine]:
    """An engine on a fresh empty database (for migration tests)."""
    eng = make_engine(config)
    yield eng
    eng.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory on a fresh migrated database."""
    return make_session_factory(engine)


@pytest.fixture
def db(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session on a fresh migrated database; what it has not committed is rolled back."""
    with session_factory() as session:
        yield session


@pytest.fixture
def blob_store(config: Config) -> FilesystemBlobStore:
    """A filesystem blob store under the test's data directory."""
    return FilesystemBlobStore(config.blob_dir)
