"""The schema: migrations and models agree, SQLite is hardened, constraints hold."""

from __future__ import annotations

import contextlib
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, DateTime, Engine, LargeBinary, func, inspect, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError
from sqlalchemy.orm import Session, sessionmaker

from tipbox.config import Config
from tipbox.db import (
    current_revision,
    head_revision,
    make_engine,
    make_session_factory,
    normalise_url,
    scrub,
    transaction,
    upgrade,
)
from tipbox.models import (
    Base,
    DirectoryEntry,
    InstanceSettings,
    Item,
    Journalist,
    NewsroomKey,
    Source,
    Wrap,
    new_public_id,
    today,
)

# The only timestamp columns: none of them says when a source did something.
TIMESTAMP_COLUMNS = {
    "newsroom_keys.retiring_since",  # a key event; the grace period needs precision
    "journalists.locked_until",  # a journalist's lockout
    "sessions.idle_expires_at",  # short-lived, unlinked from sources
    "sessions.absolute_expires_at",
}


def _schema_diff(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def test_migrations_match_models(config: Config, empty_engine: Engine) -> None:
    assert current_revision(config) is None
    upgrade(config)
    assert current_revision(config) == head_revision()
    assert _schema_diff(empty_engine) == []


def test_migrated_fixture_is_at_head(config: Config, engine: Engine) -> None:
    assert current_revision(config) == head_revision()
    assert set(inspect(engine).get_table_names()) == set(Base.metadata.tables) | {"alembic_version"}


def test_constraint_names_follow_the_convention(engine: Engine) -> None:
    inspector = inspect(engine)
    for table in Base.metadata.sorted_tables:
        expected_fks = {fk.name for fk in table.foreign_key_constraints}
        assert {fk["name"] for fk in inspector.get_foreign_keys(table.name)} == expected_fks
        expected_uqs = {
            uq.name for uq in table.constraints if uq.__class__.__name__ == "UniqueConstraint"
        }
        assert {uq["name"] for uq in inspector.get_unique_constraints(table.name)} == (expected_uqs)
        # PostgreSQL also lists the indexes behind unique constraints; they are named above.
        indexes = inspector.get_indexes(table.name)
        assert {ix["name"] for ix in indexes if "duplicates_constraint" not in ix} == {
            ix.name for ix in table.indexes
        }
        assert inspector.get_pk_constraint(table.name)["name"] == f"pk_{table.name}"
        assert all(str(name).startswith(("fk_", "uq_")) for name in expected_fks | expected_uqs)


def test_sqlite_is_hardened(engine: Engine, config: Config) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000


def test_new_sqlite_file_is_private(tmp_path: Path) -> None:
    cfg = Config.for_data_dir(tmp_path / "instance")
    engine = make_engine(cfg)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        path = tmp_path / "instance" / "tipbox.sqlite"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    finally:
        engine.dispose()


def test_normalise_url() -> None:
    assert normalise_url("postgresql://u@h/d") == "postgresql+psycopg://u@h/d"
    assert normalise_url("postgresql+psycopg://u:p@h/d") == "postgresql+psycopg://u:p@h/d"
    assert normalise_url("sqlite:////x/y.sqlite") == "sqlite:////x/y.sqlite"


def test_make_engine_refuses_other_databases(tmp_path: Path) -> None:
    cfg = Config.for_data_dir(tmp_path, database_url="mysql://u@h/d")
    with pytest.raises(ValueError, match="SQLite and PostgreSQL"):
        make_engine(cfg)


def _directory_entry(role: int = 2, status: int = 1, serial: int = 1) -> DirectoryEntry:
    return DirectoryEntry(
        key_id=new_public_id(),
        role=role,
        status=status,
        x25519=bytes(32),
        serial=serial,
        entry=bytes(126),
        signature=bytes(64),
    )


def _source() -> Source:
    return Source(lookup_hash=new_public_id() * 2, x25519=bytes(32))


def _item(source: Source, seq: int = 1, overrides: dict[str, object] | None = None) -> Item:
    item = Item(
        source_id=source.id,
        seq=seq,
        kind=1,
        blob_id=new_public_id().hex(),
        blob_size=4096 + 24 + 17,
        sealed_meta=bytes(1064),
    )
    for name, value in (overrides or {}).items():
        setattr(item, name, value)
    return item


def test_foreign_keys_are_enforced(db: Session) -> None:
    db.add(Wrap(item_id=123456, key_id=bytes(16), wrap=bytes(80)))
    with pytest.raises(IntegrityError):
        db.flush()


def test_deleting_an_item_deletes_its_wraps(db: Session) -> None:
    source = _source()
    db.add(source)
    db.flush()
    item = _item(source)
    db.add(item)
    db.flush()
    db.add(Wrap(item_id=item.id, key_id=bytes(16), wrap=bytes(80)))
    db.flush()
    db.execute(text("DELETE FROM items WHERE id = :id"), {"id": item.id})
    assert db.scalar(select(func.count()).select_from(Wrap)) == 0


@pytest.mark.parametrize(
    ("overrides", "constraint"),
    [
        ({"kind": 7}, "ck_items_kind"),
        ({"sealed_meta": bytes(1063)}, "ck_items_sealed_meta_length"),
        ({"public_id": bytes(15)}, "ck_items_public_id_length"),
        ({"signature": bytes(64)}, "ck_items_signature_with_signer"),
    ],
)
def test_check_constraints(db: Session, overrides: dict[str, object], constraint: str) -> None:
    source = _source()
    db.add(source)
    db.flush()
    db.add(_item(source, overrides=overrides))
    with pytest.raises(IntegrityError) as caught:
        db.flush()
    # PostgreSQL names the constraint; SQLite names it too ("CHECK constraint failed: …").
    assert constraint.removeprefix("ck_items_") in str(caught.value.orig)


def test_sequence_is_unique_per_source(db: Session) -> None:
    source = _source()
    db.add(source)
    db.flush()
    db.add_all([_item(source, seq=1), _item(source, seq=1)])
    with pytest.raises(IntegrityError):
        db.flush()


def test_instance_settings_is_a_single_row(db: Session) -> None:
    entry = _directory_entry(role=1, status=4)
    db.add(entry)
    db.flush()
    db.add(
        InstanceSettings(
            id=2,
            name="x",
            codename_salt=bytes(16),
            codename_opslimit=1,
            codename_memlimit=1,
            identity_key_id=entry.key_id,
            identity_x25519=bytes(32),
            identity_ed25519=bytes(32),
        )
    )
    with pytest.raises(IntegrityError):
        db.flush()


def test_timestamps_are_aware_utc(db: Session) -> None:
    entry = _directory_entry()
    db.add(entry)
    db.flush()
    almaty = timezone(timedelta(hours=5))
    db.add(NewsroomKey(key_id=entry.key_id, retiring_since=datetime(2024, 5, 1, 12, tzinfo=almaty)))
    db.commit()
    db.expunge_all()
    key = db.scalars(select(NewsroomKey)).one()
    assert key.retiring_since == datetime(2024, 5, 1, 7, tzinfo=UTC)
    assert key.retiring_since is not None
    assert key.retiring_since.tzinfo == UTC
    key.retiring_since = datetime(2024, 5, 1, 7)  # naive: refused
    with pytest.raises(StatementError, match="timezone-aware"):
        db.flush()


def test_defaults(db: Session) -> None:
    source = _source()
    db.add(source)
    db.flush()
    assert len(source.public_id) == 16
    assert source.created_on == source.last_active_on == today()
    assert source.next_seq == 1
    journalist = Journalist(
        username="ana",
        kdf_salt=bytes(16),
        kdf_opslimit=1,
        kdf_memlimit=8 << 20,
        verifier=bytes(32),
    )
    db.add(journalist)
    db.flush()
    assert journalist.must_change_passphrase is True
    assert journalist.is_active is True
    assert journalist.is_admin is False
    assert journalist.failed_login_count == 0
    assert journalist.public_id != source.public_id


def test_public_ids_are_random_16_bytes() -> None:
    ids = {new_public_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 16 for i in ids)
    for table in Base.metadata.tables.values():
        if "public_id" in table.c:
            column = table.c.public_id
            assert isinstance(column.type, LargeBinary)
            assert column.type.length == 16
            assert column.unique


def test_source_activity_is_stored_per_day() -> None:
    timestamps = {
        f"{table.name}.{column.name}"
        for table in Base.metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, DateTime)
        or isinstance(getattr(column.type, "impl", None), DateTime)
    }
    assert timestamps == TIMESTAMP_COLUMNS


def test_no_client_metadata_is_stored() -> None:
    banned = {"ip", "addr", "address", "agent", "ua", "useragent", "referer", "referrer"}
    for table in Base.metadata.tables.values():
        for column in table.columns:
            assert not banned & set(column.name.split("_")), f"{table.name}.{column.name}"


def test_transaction_commits_or_rolls_back(session_factory: sessionmaker[Session]) -> None:
    with transaction(session_factory) as session:
        session.add(_source())

    def fail_midway() -> None:
        with transaction(session_factory) as session:
            session.add(_source())
            session.flush()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail_midway()
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Source)) == 1


def test_read_only_sessions(engine: Engine, session_factory: sessionmaker[Session]) -> None:
    readers = make_session_factory(engine, read_only=True)
    with transaction(session_factory) as session:
        session.add(_source())
    with session_factory() as writer, writer.begin():
        writer.add(_source())
        writer.flush()
        # A reader neither waits for the open write transaction nor sees it.
        with readers() as reader:
            assert reader.scalar(select(func.count()).select_from(Source)) == 1
    if engine.dialect.name == "postgresql":
        with readers() as reader:
            reader.add(_source())
            with pytest.raises(DBAPIError, match="read-only"):
                reader.flush()


def test_scrub(engine: Engine, session_factory: sessionmaker[Session], config: Config) -> None:
    with transaction(session_factory) as session:
        session.add(_source())
    with transaction(session_factory) as session:
        session.execute(text("DELETE FROM sources"))
    scrub(engine)
    if engine.dialect.name == "sqlite":
        wal = Path(str(engine.url.database) + "-wal")
        assert not wal.exists() or wal.stat().st_size == 0


@pytest.mark.parametrize("turn", ["first", "second", "third"])
def test_every_test_gets_a_clean_database(
    turn: str, engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    # The fixtures may recycle a database between tests: rows, sequences and any schema
    # change a test made must not reach the next one.
    assert _schema_diff(engine) == []
    with transaction(session_factory) as session:
        for table in Base.metadata.sorted_tables:
            assert session.scalar(select(func.count()).select_from(table)) == 0, table.name
        source = _source()
        session.add(source)
        session.flush()
        assert source.id == 1
    while _LEAKED:
        with contextlib.suppress(Exception):
            _LEAKED.pop().close()
    if turn == "first":
        # A connection left open in a transaction that holds locks on the rows.
        leaked = engine.connect()
        leaked.begin()
        leaked.execute(text("UPDATE sources SET starred = TRUE"))
        _LEAKED.append(leaked)
    if turn == "second":
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP INDEX ix_wraps_key_id")


_LEAKED: list[Connection] = []
