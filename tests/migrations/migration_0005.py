"""Data test for revision 0005, abuse budgets and spam purge (driven by test_migrations.py).

Upgrade: every source keeps its values; a source already marked spam gets the day of the
upgrade as ``spam_since`` (the purge counts from then), others none; the settings row keeps
its values and has no spam purge; budget counters can be stored, but not with an empty or
over-long key or a count of 0, and a spam purge of 0 days is refused.
Downgrade: the counters, ``spam_since`` and ``spam_purge_days`` go; sources and settings
keep every other value, spam included.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, Table, inspect, select
from sqlalchemy.exc import IntegrityError

DAY = date(2024, 3, 14)
SPAM = 5


def _b(byte: int, size: int) -> bytes:
    return bytes([byte]) * size


def _table(conn: Connection, name: str) -> Table:
    return Table(name, MetaData(), autoload_with=conn)


def _identity_entry() -> dict[str, Any]:
    return {
        "key_id": _b(1, 16),
        "role": 1,
        "status": 4,
        "subject_id": None,
        "x25519": _b(11, 32),
        "ed25519": _b(31, 32),
        "serial": 1,
        "entry": _b(1, 126),
        "signature": _b(21, 64),
        "created_on": DAY,
    }


def _settings() -> dict[str, Any]:
    return {
        "id": 1,
        "name": "Fresh Times",
        "description": "",
        "codename_salt": _b(4, 16),
        "codename_opslimit": 3,
        "codename_memlimit": 64 << 20,
        "identity_key_id": _b(1, 16),
        "identity_x25519": _b(11, 32),
        "identity_ed25519": _b(31, 32),
        "next_directory_serial": 2,
        "languages": "en,ru",
        "limits": {"max_files": 3},
        "files_accepted": False,
        "retention_days": 30,
        "created_on": DAY,
    }


def _source(number: int, status: int) -> dict[str, Any]:
    return {
        "id": number,
        "public_id": _b(100 + number, 16),
        "lookup_hash": _b(100 + number, 32),
        "x25519": _b(100 + number, 32),
        "designation": f"word{number} other{number}",
        "created_on": DAY,
        "last_active_on": DAY,
        "next_seq": 3,
        "last_source_seq": 2,
        "status": status,
        "starred": number % 2 == 0,
        "assignee_id": None,
    }


SOURCES = [_source(1, 0), _source(2, SPAM), _source(3, 4), _source(4, SPAM)]


def _load(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(_table(conn, "directory_entries").insert(), [_identity_entry()])
        conn.execute(_table(conn, "instance_settings").insert(), [_settings()])
        conn.execute(_table(conn, "sources").insert(), SOURCES)


def _refused(engine: Engine, table_name: str, values: dict[str, Any], *, insert: bool) -> bool:
    try:
        with engine.begin() as conn:
            table = _table(conn, table_name)
            conn.execute(table.insert().values(values) if insert else table.update().values(values))
    except IntegrityError:
        return True
    return False


def _rows(conn: Connection, name: str) -> list[dict[str, Any]]:
    table = _table(conn, name)
    return [
        dict(row) for row in conn.execute(select(table).order_by(*table.primary_key)).mappings()
    ]


class UpgradeTester:
    """Upgrade from 0004 to 0005."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def load_data(self) -> None:
        """Four sources, two of them marked spam, and the settings row."""
        _load(self.engine)

    def check_upgrade(self) -> None:
        """Values kept; spam marked from the upgrade's day; the new constraints hold."""
        # The database's day, which may be UTC's yesterday or tomorrow near midnight.
        now = datetime.now(UTC).date()
        near = {now - timedelta(days=1), now, now + timedelta(days=1)}
        with self.engine.connect() as conn:
            sources = _rows(conn, "sources")
            settings = _rows(conn, "instance_settings")[0]
        for before, after in zip(SOURCES, sources, strict=True):
            assert {key: after[key] for key in before} == before
            if before["status"] == SPAM:
                assert after["spam_since"] in near
            else:
                assert after["spam_since"] is None
        assert {key: settings[key] for key in _settings()} == _settings()
        assert settings["spam_purge_days"] is None

        counter = {"key": b"new-sources", "window_end": 1_700_000_060, "count": 3}
        assert not _refused(self.engine, "budget_counters", counter, insert=True)
        for bad in (
            {"key": b"", "window_end": 1, "count": 1},
            {"key": _b(9, 33), "window_end": 1, "count": 1},
            {"key": _b(9, 16), "window_end": 1, "count": 0},
            {"key": b"new-sources", "window_end": 1, "count": 1},  # the same budget twice
        ):
            assert _refused(self.engine, "budget_counters", bad, insert=True), bad
        assert _refused(self.engine, "instance_settings", {"spam_purge_days": 0}, insert=False)
        assert not _refused(self.engine, "instance_settings", {"spam_purge_days": 14}, insert=False)


class DowngradeTester:
    """Downgrade from 0005 to 0004."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def load_data(self) -> None:
        """Sources with spam days, a purge setting and a counter."""
        _load(self.engine)
        with self.engine.begin() as conn:
            sources = _table(conn, "sources")
            conn.execute(sources.update().where(sources.c.status == SPAM).values(spam_since=DAY))
            settings = _table(conn, "instance_settings")
            conn.execute(settings.update().values(spam_purge_days=7))
            counters = _table(conn, "budget_counters")
            conn.execute(counters.insert().values(key=_b(7, 16), window_end=5, count=2))

    def check_downgrade(self) -> None:
        """The new table and columns are gone; everything else is as it was."""
        with self.engine.connect() as conn:
            sources = _rows(conn, "sources")
            settings = _rows(conn, "instance_settings")[0]
            tables = set(inspect(conn).get_table_names())
        assert "budget_counters" not in tables
        for before, after in zip(SOURCES, sources, strict=True):
            assert "spam_since" not in after
            assert {key: after[key] for key in before} == before
        assert "spam_purge_days" not in settings
        assert {key: settings[key] for key in _settings()} == _settings()
