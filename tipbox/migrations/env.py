"""Alembic environment, run by ``tipbox.db.upgrade`` and friends (or the alembic CLI).

The tipbox ``Config`` comes from ``config.attributes["tipbox_config"]``; without it (the
alembic CLI with ``tipbox/migrations/alembic.ini``) it is read from ``TIPBOX_*``. A caller
may hand over an open connection in ``config.attributes["connection"]``.

Revisions are rendered in batch mode (``render_as_batch``) so that they can alter tables on
SQLite, which recreates a table to change it; on PostgreSQL the same script runs plain
``ALTER TABLE``.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import JSON, Connection

from tipbox.config import Config
from tipbox.db import make_engine, normalise_url
from tipbox.models import Base, UTCDateTime

# Any constant: it only has to be the same in every process that migrates.
_PG_MIGRATION_LOCK = 0x7469_7062_6F78  # "tipbox"

target_metadata = Base.metadata


def _tipbox_config() -> Config:
    found = context.config.attributes.get("tipbox_config")
    if isinstance(found, Config):
        return found
    return Config.from_env()


def _render_item(kind: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    # Revisions must not import tipbox.models (it changes after them): render tipbox's
    # column types as plain SQLAlchemy ones.
    if kind != "type":
        return False
    if isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if isinstance(obj, JSON) and "postgresql" in getattr(obj, "_variant_mapping", {}):
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return 'sa.JSON().with_variant(postgresql.JSONB(), "postgresql")'
    return False


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        render_item=_render_item,
        compare_type=True,
        # The whole upgrade is one transaction on both databases: tipbox.db takes BEGIN
        # away from the sqlite3 module, so SQLite's DDL is transactional too.
        transactional_ddl=True,
    )


def _run(connection: Connection) -> None:
    is_sqlite = connection.dialect.name == "sqlite"
    if is_sqlite:
        # Recreating a table in batch mode drops the old one, which with foreign keys on
        # would cascade to (or be refused by) the rows that point at it. SQLite ignores this
        # pragma inside a transaction, so it is set before the migration's BEGIN, and the
        # foreign keys are checked by hand before the commit.
        _raw_sqlite(connection, "PRAGMA foreign_keys = OFF")
    try:
        _configure(connection)
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Two processes starting at once must not both migrate.
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
            context.run_migrations()
            if is_sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration broke foreign keys: {broken[:5]}")
    finally:
        if is_sqlite:
            _raw_sqlite(connection, "PRAGMA foreign_keys = ON")


def _raw_sqlite(connection: Connection, statement: str) -> None:
    # On the DBAPI connection, so that SQLAlchemy does not begin a transaction first.
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.execute(statement)


def run_migrations_offline() -> None:
    """Emit the migration as SQL (``alembic upgrade --sql``) instead of running it."""
    context.configure(
        url=normalise_url(_tipbox_config().database_url),
        target_metadata=target_metadata,
        render_as_batch=True,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migration on the given connection, or on a new engine from the config."""
    given = context.config.attributes.get("connection")
    if isinstance(given, Connection):
        _run(given)
        return
    engine = make_engine(_tipbox_config())
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
