"""Data test for revision 0003, journalist keys (driven by test_migrations.py).

Upgrade: an account that must change its passphrase and has a key is on a temporary key
(only an admin could have set its passphrase before 0003); one without a key, and one that
need not change, are not; nothing else about the accounts changes. The new columns take a
key awaiting confirmation and a removed account, and the constraints refuse a pending key
beside a verified one, half a pending key, a temporary pending key and a removed account
that still holds something.
Downgrade: an account awaiting confirmation is left without a key (0002's "reset under
way"), its seed box gone; a removed account stays, inactive and key-less; the rest is kept.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, Table, select
from sqlalchemy.exc import IntegrityError

DAY = date(2024, 3, 14)


def _b(byte: int, size: int) -> bytes:
    return bytes([byte]) * size


def _table(conn: Connection, name: str) -> Table:
    return Table(name, MetaData(), autoload_with=conn)


def _entry(number: int) -> dict[str, Any]:
    """A journalist key's directory entry (role 3); its key id is ``_b(number, 16)``."""
    return {
        "key_id": _b(number, 16),
        "role": 3,
        "status": 4,
        "subject_id": _b(number, 16),
        "x25519": _b(number + 10, 32),
        "ed25519": _b(number + 30, 32),
        "serial": number,
        "entry": _b(number, 126),
        "signature": _b(number, 64),
        "created_on": DAY,
    }


def _journalist(number: int, *, key: bool, must_change: bool, **extra: Any) -> dict[str, Any]:
    return {
        "id": number,
        "public_id": _b(number, 16),
        "username": f"user{number}",
        "is_admin": number == 1,
        "is_active": True,
        "key_id": _b(number, 16) if key else None,
        "kdf_salt": _b(5, 16),
        "kdf_opslimit": 3,
        "kdf_memlimit": 256 << 20,
        "verifier": _b(6, 32),
        "seed_box": _b(8, 72),
        "totp_box": _b(9, 60),
        "totp_last_step": None,
        "must_change_passphrase": must_change,
        "failed_login_count": 0,
        "locked_until": None,
        "created_on": DAY,
        **extra,
    }


def _accounts(conn: Connection) -> dict[int, Any]:
    return {row.id: row for row in conn.execute(select(_table(conn, "journalists")))}


class UpgradeTester:
    """Upgrade from 0002 to 0003."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def load_data(self) -> None:
        """An admin, a journalist on admin-set credentials, one that changed them, and one
        without a key."""
        with self.engine.begin() as conn:
            conn.execute(_table(conn, "directory_entries").insert(), [_entry(n) for n in (1, 2, 3)])
            conn.execute(
                _table(conn, "journalists").insert(),
                [
                    _journalist(1, key=True, must_change=False),
                    _journalist(2, key=True, must_change=True),
                    _journalist(3, key=True, must_change=False, failed_login_count=2),
                    _journalist(4, key=False, must_change=True, seed_box=None),
                ],
            )

    def check_upgrade(self) -> None:
        """``temporary_key`` where an admin set the passphrase; new columns usable and
        guarded."""
        with self.engine.begin() as conn:
            accounts = _accounts(conn)
            assert {n: bool(row.temporary_key) for n, row in accounts.items()} == {
                1: False,
                2: True,
                3: False,
                4: False,
            }
            for row in accounts.values():
                assert (row.pending_x25519, row.pending_ed25519, row.removed_on) == (None,) * 3
            assert accounts[3].failed_login_count == 2
            assert accounts[2].must_change_passphrase
            journalists = _table(conn, "journalists")
            # A key awaiting confirmation (no verified key), and a removed account.
            conn.execute(
                journalists.update()
                .where(journalists.c.id == 4)
                .values(pending_x25519=_b(40, 32), pending_ed25519=_b(41, 32), seed_box=_b(8, 72))
            )
            conn.execute(
                journalists.update()
                .where(journalists.c.id == 3)
                .values(
                    key_id=None,
                    seed_box=None,
                    totp_box=None,
                    is_active=False,
                    removed_on=DAY,
                )
            )
        self._check_constraints()

    def _check_constraints(self) -> None:
        bad: list[tuple[int, dict[str, Any]]] = [
            (1, {"pending_x25519": _b(1, 32), "pending_ed25519": _b(2, 32)}),  # beside a key
            (4, {"pending_ed25519": None}),  # half a pending key
            (4, {"pending_x25519": _b(1, 31)}),  # wrong length
            (4, {"temporary_key": True}),  # temporary and pending
            (2, {"removed_on": DAY, "is_active": False}),  # removed, still holding a key
            (3, {"totp_box": _b(9, 60)}),  # removed, holding a TOTP box
            (3, {"is_admin": True}),  # removed, still an admin
        ]
        for number, values in bad:
            try:
                with self.engine.begin() as conn:
                    journalists = _table(conn, "journalists")
                    conn.execute(
                        journalists.update().where(journalists.c.id == number).values(values)
                    )
            except IntegrityError:
                continue
            raise AssertionError(f"journalist {number} accepted {values}")


class DowngradeTester:
    """Downgrade from 0003 to 0002."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def load_data(self) -> None:
        """An active admin, a journalist on a temporary key, one awaiting confirmation and
        a removed one."""
        with self.engine.begin() as conn:
            conn.execute(_table(conn, "directory_entries").insert(), [_entry(n) for n in (1, 2)])
            journalists = _table(conn, "journalists")
            # One by one: the rows name different columns.
            for row in [
                _journalist(1, key=True, must_change=False, temporary_key=False),
                _journalist(2, key=True, must_change=True, temporary_key=True),
                _journalist(
                    3,
                    key=False,
                    must_change=False,
                    temporary_key=False,
                    pending_x25519=_b(40, 32),
                    pending_ed25519=_b(41, 32),
                ),
                _journalist(
                    4,
                    key=False,
                    must_change=False,
                    temporary_key=False,
                    is_active=False,
                    seed_box=None,
                    totp_box=None,
                    removed_on=DAY,
                ),
            ]:
                conn.execute(journalists.insert(), [row])

    def check_downgrade(self) -> None:
        """Columns gone; the pending key lost; every account still there."""
        with self.engine.connect() as conn:
            journalists = _table(conn, "journalists")
            for column in ("temporary_key", "pending_x25519", "pending_ed25519", "removed_on"):
                assert column not in journalists.c
            accounts = _accounts(conn)
            assert sorted(accounts) == [1, 2, 3, 4]
            summary = {
                n: (row.key_id, row.seed_box, bool(row.must_change_passphrase), bool(row.is_active))
                for n, row in accounts.items()
            }
            assert summary == {
                1: (_b(1, 16), _b(8, 72), False, True),
                2: (_b(2, 16), _b(8, 72), True, True),
                3: (None, None, False, True),
                4: (None, None, False, False),
            }
