"""Data test for revision 0002, triage (driven by test_migrations.py).

Upgrade: sources in each old state (new, in progress, done, and spam flagged on new and on
done) come out with the six-status mapping; ``last_source_seq`` is the newest message or
file of each source, replies and notes aside, and 0 for a source without any; the new
tables take rows, a metadata key (role 6) can enter the directory, and the cascades work.
Downgrade: the statuses map back and spam becomes the flag again; role-6 entries, their
grants, tags and read markers are gone, everything else stays.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, Table, func, inspect, select
from sqlalchemy.exc import IntegrityError

DAY = date(2024, 3, 14)


def _b(byte: int, size: int) -> bytes:
    return bytes([byte]) * size


def _table(conn: Connection, name: str) -> Table:
    return Table(name, MetaData(), autoload_with=conn)


def _entry(key_id: bytes, role: int, serial: int) -> dict[str, Any]:
    signing = role in (1, 3)
    return {
        "key_id": key_id,
        "role": role,
        "status": 1 if role == 2 else 4,
        "subject_id": _b(7, 16) if role == 3 else None,
        "x25519": _b(role + 10, 32),
        "ed25519": _b(role + 30, 32) if signing else None,
        "serial": serial,
        "entry": _b(serial, 126),
        "signature": _b(serial + 20, 64),
        "created_on": DAY,
    }


def _journalist() -> dict[str, Any]:
    return {
        "id": 1,
        "public_id": _b(7, 16),
        "username": "aigerim",
        "is_admin": True,
        "is_active": True,
        "key_id": _b(3, 16),
        "kdf_salt": _b(5, 16),
        "kdf_opslimit": 3,
        "kdf_memlimit": 256 << 20,
        "verifier": _b(6, 32),
        "seed_box": _b(8, 72),
        "totp_box": _b(9, 60),
        "totp_last_step": None,
        "must_change_passphrase": False,
        "failed_login_count": 0,
        "locked_until": None,
        "created_on": DAY,
    }


def _source(number: int, status: int, spam: bool, next_seq: int) -> dict[str, Any]:
    return {
        "id": number,
        "public_id": _b(100 + number, 16),
        "lookup_hash": _b(100 + number, 32),
        "x25519": _b(100 + number, 32),
        "designation": f"word{number} other{number}",
        "created_on": DAY,
        "last_active_on": DAY,
        "next_seq": next_seq,
        "status": status,
        "starred": number % 2 == 0,
        "spam": spam,
        "assignee_id": 1,
    }


def _item(item_id: int, source_id: int, seq: int, kind: int) -> dict[str, Any]:
    signed = kind in (3, 4)
    return {
        "id": item_id,
        "public_id": _b(item_id, 16),
        "source_id": source_id,
        "seq": seq,
        "kind": kind,
        "version": 1,
        "blob_id": f"{item_id:032x}",
        "blob_size": 4096,
        "sealed_meta": _b(item_id, 1064),
        "signer_key_id": _b(3, 16) if signed else None,
        "signature": _b(4, 64) if signed else None,
        "author_journalist_id": 1 if signed else None,
        "created_on": DAY,
    }


# (old status, old spam flag, kinds of its items in seq order)
SOURCES: dict[int, tuple[int, bool, tuple[int, ...]]] = {
    1: (0, False, (1, 2, 3)),  # new; newest own item is seq 2 (a reply follows)
    2: (1, False, (1, 4, 1, 3, 4)),  # in progress; own items at 1 and 3
    3: (2, False, (2,)),  # done
    4: (0, True, (1,)),  # spam flagged
    5: (2, True, ()),  # done and spam, no items at all
}
# What 0002 makes of them: (status, last_source_seq)
EXPECTED = {1: (0, 2), 2: (1, 3), 3: (4, 1), 4: (5, 1), 5: (5, 0)}


def _load_0001(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            _table(conn, "directory_entries").insert(),
            [_entry(_b(1, 16), 1, 1), _entry(_b(2, 16), 2, 2), _entry(_b(3, 16), 3, 3)],
        )
        conn.execute(_table(conn, "journalists").insert(), [_journalist()])
        sources, items = _table(conn, "sources"), _table(conn, "items")
        item_id = 0
        for number, (status, spam, kinds) in SOURCES.items():
            conn.execute(sources.insert(), [_source(number, status, spam, len(kinds) + 1)])
            for seq, kind in enumerate(kinds, start=1):
                item_id += 1
                conn.execute(items.insert(), [_item(item_id, number, seq, kind)])


class UpgradeTester:
    """Upgrade from 0001 to 0002."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def load_data(self) -> None:
        """Sources in every old state, with items of every kind."""
        _load_0001(self.engine)

    def check_upgrade(self) -> None:
        """Statuses mapped, last seqs filled, new tables and role 6 usable, cascades work."""
        with self.engine.begin() as conn:
            sources = _table(conn, "sources")
            assert "spam" not in sources.c
            got = {
                row.id: (row.status, row.last_source_seq)
                for row in conn.execute(
                    select(sources.c.id, sources.c.status, sources.c.last_source_seq)
                )
            }
            assert got == EXPECTED
            # Everything else about the sources is unchanged.
            assert (
                conn.scalar(select(func.count()).select_from(sources).where(sources.c.starred)) == 2
            )
            assert conn.scalar(select(func.count()).select_from(_table(conn, "items"))) == 10

            conn.execute(_table(conn, "directory_entries").insert(), [_entry(_b(6, 16), 6, 9)])
            conn.execute(
                _table(conn, "grants").insert(),
                [
                    {
                        "key_id": _b(6, 16),
                        "grantee_key_id": _b(3, 16),
                        "sealed_grant": _b(1, 129),
                        "created_on": DAY,
                    }
                ],
            )
            conn.execute(
                _table(conn, "source_tags").insert(),
                [
                    {
                        "source_id": 1,
                        "key_id": _b(6, 16),
                        "blind_index": _b(1, 32),
                        "sealed_tag": _b(2, 296),
                    },
                    {
                        "source_id": 2,
                        "key_id": _b(6, 16),
                        "blind_index": _b(1, 32),
                        "sealed_tag": _b(3, 296),
                    },
                ],
            )
            conn.execute(
                _table(conn, "read_markers").insert(),
                [{"journalist_id": 1, "source_id": 1, "seen_seq": 2}],
            )
        self._check_constraints()
        with self.engine.begin() as conn:
            sources = _table(conn, "sources")
            conn.execute(sources.delete().where(sources.c.id == 1))
            assert conn.scalar(select(func.count()).select_from(_table(conn, "source_tags"))) == 1
            assert conn.scalar(select(func.count()).select_from(_table(conn, "read_markers"))) == 0
        index_names = {index["name"] for index in inspect(self.engine).get_indexes("sources")}
        assert {
            "ix_sources_last_active_on_id",
            "ix_sources_status",
            "ix_sources_assignee_id",
        } <= index_names

    def _check_constraints(self) -> None:
        bad: list[tuple[str, dict[str, Any]]] = [
            ("directory_entries", _entry(_b(5, 16), 5, 10)),  # a source key in the directory
            (
                "source_tags",
                {
                    "source_id": 3,
                    "key_id": _b(6, 16),
                    "blind_index": _b(1, 31),
                    "sealed_tag": _b(2, 296),
                },
            ),
            (
                "source_tags",
                {
                    "source_id": 1,
                    "key_id": _b(6, 16),
                    "blind_index": _b(1, 32),
                    "sealed_tag": _b(9, 296),
                },
            ),
        ]
        for name, row in bad:
            try:
                with self.engine.begin() as conn:
                    conn.execute(_table(conn, name).insert(), [row])
            except IntegrityError:
                continue
            raise AssertionError(f"{name} accepted {row}")
        for column, value in (("status", 6), ("last_source_seq", 9)):
            try:
                with self.engine.begin() as conn:
                    sources = _table(conn, "sources")
                    conn.execute(sources.update().where(sources.c.id == 3).values({column: value}))
            except IntegrityError:
                continue
            raise AssertionError(f"sources.{column} = {value} was accepted")


class DowngradeTester:
    """Downgrade from 0002 to 0001."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def load_data(self) -> None:
        """Sources in all six statuses, a metadata key with a grant, tags and read markers."""
        with self.engine.begin() as conn:
            entries = _table(conn, "directory_entries")
            conn.execute(
                entries.insert(),
                [
                    _entry(_b(1, 16), 1, 1),
                    _entry(_b(2, 16), 2, 2),
                    _entry(_b(3, 16), 3, 3),
                    _entry(_b(6, 16), 6, 4),
                ],
            )
            conn.execute(_table(conn, "journalists").insert(), [_journalist()])
            conn.execute(
                _table(conn, "grants").insert(),
                [
                    {
                        "key_id": key,
                        "grantee_key_id": _b(3, 16),
                        "sealed_grant": _b(1, 129),
                        "created_on": DAY,
                    }
                    for key in (_b(2, 16), _b(6, 16))
                ],
            )
            sources = _table(conn, "sources")
            for status in range(6):
                row = _source(status + 1, status, False, 2)
                del row["spam"]
                row["last_source_seq"] = 1
                conn.execute(sources.insert(), [row])
                conn.execute(_table(conn, "items").insert(), [_item(status + 1, status + 1, 1, 1)])
            conn.execute(
                _table(conn, "source_tags").insert(),
                [
                    {
                        "source_id": 1,
                        "key_id": _b(6, 16),
                        "blind_index": _b(1, 32),
                        "sealed_tag": _b(2, 296),
                    }
                ],
            )
            conn.execute(
                _table(conn, "read_markers").insert(),
                [{"journalist_id": 1, "source_id": 2, "seen_seq": 1}],
            )

    def check_downgrade(self) -> None:
        """Three statuses and the spam flag; role 6, tags and markers gone; the rest kept."""
        tables = set(inspect(self.engine).get_table_names())
        assert not {"source_tags", "read_markers"} & tables
        with self.engine.connect() as conn:
            sources = _table(conn, "sources")
            assert "last_source_seq" not in sources.c
            got = {
                row.id: (row.status, bool(row.spam))
                for row in conn.execute(select(sources.c.id, sources.c.status, sources.c.spam))
            }
            # new, in review, verified, published, closed, spam
            assert got == {
                1: (0, False),
                2: (1, False),
                3: (1, False),
                4: (2, False),
                5: (2, False),
                6: (0, True),
            }
            entries = _table(conn, "directory_entries")
            assert sorted(conn.scalars(select(entries.c.role))) == [1, 2, 3]
            grants = _table(conn, "grants")
            assert list(conn.scalars(select(grants.c.key_id))) == [_b(2, 16)]
            assert conn.scalar(select(func.count()).select_from(_table(conn, "items"))) == 6
