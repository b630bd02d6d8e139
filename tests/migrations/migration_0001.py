"""Data test for revision 0001, the initial schema (driven by test_migrations.py).

Upgrading from nothing: there is no data before the first revision; afterwards a
representative row goes into every table and comes back out unchanged, and the cascades
the revision declares work. Downgrading to nothing: with rows in every table, the downgrade
leaves no table behind (Alembic's own version table aside).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine, MetaData, Table, func, inspect, select

TABLES = (
    "directory_entries",
    "instance_settings",
    "newsroom_keys",
    "journalists",
    "grants",
    "sources",
    "items",
    "wraps",
    "sessions",
    "audit_events",
)
DAY = date(2024, 3, 14)


def _b(byte: int, size: int) -> bytes:
    return bytes([byte]) * size


def _rows() -> dict[str, list[dict[str, Any]]]:
    identity, newsroom, journalist_key = _b(1, 16), _b(2, 16), _b(3, 16)
    return {
        "directory_entries": [
            {
                "key_id": key_id,
                "role": role,
                "status": status,
                "subject_id": subject,
                "x25519": _b(role + 10, 32),
                "ed25519": ed,
                "serial": serial,
                "entry": _b(serial, 126),
                "signature": _b(serial + 20, 64),
                "created_on": DAY,
            }
            for key_id, role, status, subject, ed, serial in (
                (identity, 1, 4, None, _b(9, 32), 1),
                (newsroom, 2, 1, None, None, 2),
                (journalist_key, 3, 4, _b(7, 16), _b(8, 32), 3),
            )
        ],
        "instance_settings": [
            {
                "id": 1,
                "name": "Newsroom",
                "description": "Tips welcome",
                "codename_salt": _b(4, 16),
                "codename_opslimit": 3,
                "codename_memlimit": 64 << 20,
                "identity_key_id": identity,
                "identity_x25519": _b(11, 32),
                "identity_ed25519": _b(9, 32),
                "next_directory_serial": 4,
                "languages": "en,ru,kk",
                "limits": {"message_bytes": 100_000, "file_bytes": 500 << 20},
                "retention_days": 90,
                "created_on": DAY,
            }
        ],
        "newsroom_keys": [
            {
                "key_id": newsroom,
                "created_on": DAY,
                "retiring_since": datetime(2024, 3, 15, 10, 30, tzinfo=UTC),
                "retired_on": None,
            }
        ],
        "journalists": [
            {
                "id": 1,
                "public_id": _b(7, 16),
                "username": "aigerim",
                "is_admin": True,
                "is_active": True,
                "key_id": journalist_key,
                "kdf_salt": _b(5, 16),
                "kdf_opslimit": 3,
                "kdf_memlimit": 256 << 20,
                "verifier": _b(6, 32),
                "seed_box": _b(12, 72),
                "totp_box": _b(13, 60),
                "totp_last_step": 57_000_000,
                "must_change_passphrase": False,
                "failed_login_count": 2,
                "locked_until": datetime(2024, 3, 14, 9, 0, tzinfo=UTC),
                "created_on": DAY,
            }
        ],
        "grants": [
            {
                "id": 1,
                "key_id": newsroom,
                "grantee_key_id": journalist_key,
                "sealed_grant": _b(14, 129),
                "created_on": DAY,
            }
        ],
        "sources": [
            {
                "id": 1,
                "public_id": _b(15, 16),
                "lookup_hash": _b(16, 32),
                "x25519": _b(17, 32),
                "designation": "purple tiger",
                "created_on": DAY,
                "last_active_on": DAY,
                "next_seq": 3,
                "status": 1,
                "starred": True,
                "spam": False,
                "assignee_id": 1,
            }
        ],
        "items": [
            {
                "id": 1,
                "public_id": _b(18, 16),
                "source_id": 1,
                "seq": 1,
                "kind": 1,
                "version": 1,
                "blob_id": "ab" * 16,
                "blob_size": 4137,
                "sealed_meta": _b(19, 1064),
                "signer_key_id": None,
                "signature": None,
                "author_journalist_id": None,
                "created_on": DAY,
            },
            {
                "id": 2,
                "public_id": _b(20, 16),
                "source_id": 1,
                "seq": 2,
                "kind": 3,
                "version": 1,
                "blob_id": "cd" * 16,
                "blob_size": 4137,
                "sealed_meta": _b(21, 1064),
                "signer_key_id": journalist_key,
                "signature": _b(22, 64),
                "author_journalist_id": 1,
                "created_on": DAY,
            },
        ],
        "wraps": [
            {
                "id": wrap_id,
                "item_id": item_id,
                "key_id": key_id,
                "algorithm": "x25519-sealedbox-v1",
                "wrap": _b(wrap_id + 30, 80),
            }
            for wrap_id, item_id, key_id in ((1, 1, newsroom), (2, 2, newsroom), (3, 2, _b(23, 16)))
        ],
        "sessions": [
            {
                "id": "0f" * 16,
                "app": "journalist",
                "journalist_id": 1,
                "box": _b(24, 120),
                "idle_seconds": 1800,
                "idle_expires_at": datetime(2024, 3, 14, 12, 30, tzinfo=UTC),
                "absolute_expires_at": datetime(2024, 3, 14, 23, 0, tzinfo=UTC),
            },
            {
                "id": "1e" * 16,
                "app": "source",
                "journalist_id": None,
                "box": _b(25, 140),
                "idle_seconds": 7200,
                "idle_expires_at": datetime(2024, 3, 14, 14, 0, tzinfo=UTC),
                "absolute_expires_at": datetime(2024, 3, 14, 18, 0, tzinfo=UTC),
            },
        ],
        "audit_events": [
            {
                "id": 1,
                "day": DAY,
                "actor_journalist_id": 1,
                "action": "journalist.create",
                "detail": {"username": "daniyar", "admin": False},
            }
        ],
    }


def _normalise(value: Any) -> Any:
    # SQLite gives naive timestamps back and may give integers for booleans.
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def _insert_all(engine: Engine) -> None:
    metadata = MetaData()
    rows = _rows()
    with engine.begin() as conn:
        for name in TABLES:
            table = Table(name, metadata, autoload_with=conn)
            conn.execute(table.insert(), rows[name])


class UpgradeTester:
    """Upgrade from base to 0001."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def load_data(self) -> None:
        """Nothing exists before the first revision."""
        assert set(inspect(self.engine).get_table_names()) <= {"alembic_version"}

    def check_upgrade(self) -> None:
        """Every table takes a representative row and gives it back unchanged."""
        assert set(TABLES) <= set(inspect(self.engine).get_table_names())
        _insert_all(self.engine)
        expected = _rows()
        with self.engine.connect() as conn:
            for name in TABLES:
                table = Table(name, MetaData(), autoload_with=conn)
                got = [
                    {key: _normalise(value) for key, value in row._mapping.items()}
                    for row in conn.execute(select(table).order_by(*table.primary_key.columns))
                ]
                want = sorted(
                    expected[name], key=lambda r: tuple(r[c.name] for c in table.primary_key)
                )
                assert got == want, name
        self._check_cascades()

    def _check_cascades(self) -> None:
        with self.engine.begin() as conn:
            # Reflect on this connection: a second one would wait for its write lock.
            metadata = MetaData()
            items, wraps, sources, journalists, sessions = (
                Table(name, metadata, autoload_with=conn)
                for name in ("items", "wraps", "sources", "journalists", "sessions")
            )
            conn.execute(items.delete().where(items.c.id == 2))
            assert conn.scalar(select(func.count()).select_from(wraps)) == 1
            conn.execute(journalists.delete())
            # Sessions go with their journalist; authorship and assignment are cleared.
            assert conn.scalar(select(func.count()).select_from(sessions)) == 1
            assert conn.scalar(select(sources.c.assignee_id)) is None
            conn.execute(sources.delete())
            assert conn.scalar(select(func.count()).select_from(items)) == 0
            assert conn.scalar(select(func.count()).select_from(wraps)) == 0


class DowngradeTester:
    """Downgrade from 0001 to base."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def load_data(self) -> None:
        """Put a representative row in every table."""
        _insert_all(self.engine)

    def check_downgrade(self) -> None:
        """No table of the schema is left."""
        assert set(inspect(self.engine).get_table_names()) <= {"alembic_version"}
