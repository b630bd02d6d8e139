"""Data test for revision 0004, instance settings (driven by test_migrations.py).

Upgrade: an instance's settings row keeps every value (its retention of 45 days, its
lowered limits), accepts files, has no logo; afterwards retention can be off (NULL) but not
0, a logo needs its hash, a hash is 16 bytes and a logo over 1 MiB is refused.
Downgrade: retention off becomes 3,650 days (the longest, so no source turns due), a set
retention stays, the logo and "files accepted" go, and retention is NOT NULL again.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, Table, select
from sqlalchemy.exc import IntegrityError

DAY = date(2024, 3, 14)
MIB = 1024 * 1024


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


def _settings(**extra: Any) -> dict[str, Any]:
    return {
        "id": 1,
        "name": "Fresh Times",
        "description": "Tips welcome\nin three languages",
        "codename_salt": _b(4, 16),
        "codename_opslimit": 3,
        "codename_memlimit": 64 << 20,
        "identity_key_id": _b(1, 16),
        "identity_x25519": _b(11, 32),
        "identity_ed25519": _b(31, 32),
        "next_directory_serial": 2,
        "languages": "ru,kk",
        "limits": {"max_files": 3},
        "created_on": DAY,
        **extra,
    }


def _load(engine: Engine, **extra: Any) -> None:
    with engine.begin() as conn:
        conn.execute(_table(conn, "directory_entries").insert(), [_identity_entry()])
        conn.execute(_table(conn, "instance_settings").insert(), [_settings(**extra)])


def _refused(engine: Engine, values: dict[str, Any]) -> bool:
    """Whether updating the settings row with ``values`` breaks a constraint."""
    try:
        with engine.begin() as conn:
            table = _table(conn, "instance_settings")
            conn.execute(table.update().where(table.c.id == 1).values(values))
    except IntegrityError:
        return True
    return False


class UpgradeTester:
    """Upgrade from 0003 to 0004."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def load_data(self) -> None:
        """An instance with a retention of 45 days and a lowered file count."""
        _load(self.engine, retention_days=45)

    def check_upgrade(self) -> None:
        """Values kept, files accepted, no logo; the new constraints hold."""
        with self.engine.connect() as conn:
            row = conn.execute(select(_table(conn, "instance_settings"))).mappings().one()
        expected = _settings(retention_days=45)
        assert {key: row[key] for key in expected} == expected
        assert row["files_accepted"] is True
        assert row["logo"] is None
        assert row["logo_hash"] is None

        assert not _refused(self.engine, {"retention_days": None, "files_accepted": False})
        assert not _refused(self.engine, {"logo": _b(7, MIB), "logo_hash": _b(8, 16)})
        for bad in (
            {"retention_days": 0},
            {"logo": _b(7, MIB + 1), "logo_hash": _b(8, 16)},  # over 1 MiB
            {"logo": None},  # a hash without its logo
            {"logo": _b(7, 100), "logo_hash": None},  # a logo without its hash
            {"logo": _b(7, 100), "logo_hash": _b(8, 15)},  # a short hash
        ):
            assert _refused(self.engine, bad), bad
        with self.engine.connect() as conn:
            row = conn.execute(select(_table(conn, "instance_settings"))).mappings().one()
        assert row["retention_days"] is None
        assert row["files_accepted"] is False
        assert len(row["logo"]) == MIB


class DowngradeTester:
    """Downgrade from 0004 to 0003."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def load_data(self) -> None:
        """An instance with retention off, files refused and a logo."""
        _load(
            self.engine,
            retention_days=None,
            files_accepted=False,
            logo=_b(7, 1000),
            logo_hash=_b(8, 16),
        )

    def check_downgrade(self) -> None:
        """Off becomes 3,650 days; the new columns are gone; retention is required again."""
        with self.engine.connect() as conn:
            table = _table(conn, "instance_settings")
            row = conn.execute(select(table)).mappings().one()
        assert not {"logo", "logo_hash", "files_accepted"} & set(table.c.keys())
        expected = _settings(retention_days=3650)
        assert {key: row[key] for key in expected} == expected
        assert _refused(self.engine, {"retention_days": None})
        assert not _refused(self.engine, {"retention_days": 30})
