"""Journalist accounts: temporary keys, keys awaiting confirmation, removed accounts.

- ``journalists.temporary_key``: the account's key was made by an admin (add or reset);
  the first login replaces it. Accounts that must change their passphrase and have a key
  are marked so: before 0003 only an admin could have set their passphrase.
- ``journalists.pending_x25519`` and ``pending_ed25519``: the public keys of a key made at
  first login that no admin has confirmed yet. It has no directory entry and no grants;
  the seed box is bound to it. Both or neither, and never beside a verified key.
- ``journalists.removed_on``: the day an account was removed. The row stays, holding no
  key, box or session, so that audit events and replies keep naming their author.

See docs/journalist-auth.md, "Accounts and first login". Revision ID: 0003. Revises: 0002.

Data test: tests/migrations/migration_0003.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Name and SQL of each new CHECK constraint (named by the convention: ck_journalists_<name>).
CHECKS: dict[str, str] = {
    "pending_x25519_length": "length(pending_x25519) = 32",
    "pending_ed25519_length": "length(pending_ed25519) = 32",
    "pending_pair": "(pending_x25519 IS NULL) = (pending_ed25519 IS NULL)",
    "pending_without_key": "pending_x25519 IS NULL OR key_id IS NULL",
    "temporary_not_pending": "NOT temporary_key OR pending_x25519 IS NULL",
    "removed_holds_nothing": (
        "removed_on IS NULL OR (NOT is_active AND NOT is_admin AND key_id IS NULL"
        " AND pending_x25519 IS NULL AND seed_box IS NULL AND totp_box IS NULL)"
    ),
}


def upgrade() -> None:
    """Add the columns and constraints; mark admin-issued keys as temporary."""
    with op.batch_alter_table("journalists") as batch:
        batch.add_column(
            sa.Column("temporary_key", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("pending_x25519", sa.LargeBinary(length=32), nullable=True))
        batch.add_column(sa.Column("pending_ed25519", sa.LargeBinary(length=32), nullable=True))
        batch.add_column(sa.Column("removed_on", sa.Date(), nullable=True))
    op.execute(
        "UPDATE journalists SET temporary_key = must_change_passphrase WHERE key_id IS NOT NULL"
    )
    with op.batch_alter_table("journalists") as batch:
        batch.alter_column("temporary_key", server_default=None)
        for name, condition in CHECKS.items():
            batch.create_check_constraint(op.f(f"ck_journalists_{name}"), condition)


def downgrade() -> None:
    """Drop them. A key awaiting confirmation is lost: its account is left without a key
    (0002's "reset in progress"), which an admin resets. A removed account stays as an
    inactive account without a key."""
    journalists = sa.table(
        "journalists",
        sa.column("seed_box", sa.LargeBinary()),
        sa.column("must_change_passphrase", sa.Boolean()),
        sa.column("pending_x25519", sa.LargeBinary()),
    )
    op.execute(
        journalists.update()
        .where(journalists.c.pending_x25519.is_not(None))
        .values(seed_box=None, must_change_passphrase=False)
    )
    with op.batch_alter_table("journalists") as batch:
        for name in reversed(list(CHECKS)):
            batch.drop_constraint(op.f(f"ck_journalists_{name}"), type_="check")
        batch.drop_column("removed_on")
        batch.drop_column("pending_ed25519")
        batch.drop_column("pending_x25519")
        batch.drop_column("temporary_key")
