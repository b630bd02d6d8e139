"""Abuse budgets and spam purge (docs/abuse.md).

- ``budget_counters``: one row per budget and window (``tipbox.budgets``). ``key`` names
  the budget: a fixed ASCII name for a global one (new sources per minute), or a 16-byte
  keyed hash, unlinkable to a source without its codename, for a source's submissions in
  one hour. ``window_end`` is the Unix time the window ends; ``count`` how much of the
  budget that window has used. Rows of ended windows are deleted as new ones are taken.
- ``sources.spam_since``: the day a source was marked spam (NULL otherwise). On upgrade,
  sources already marked spam get the day of the upgrade: an automatic purge counts from
  when the instance could first know.
- ``instance_settings.spam_purge_days``: delete sources marked spam for this many days
  (NULL: never, the default).

Revision ID: 0005. Revises: 0004.

Data test: tests/migrations/migration_0005.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Not imported from tipbox.models, which describes only the newest schema.
SOURCE_STATUS_SPAM = 5
MAX_BUDGET_KEY_BYTES = 32


def upgrade() -> None:
    """Add the budget counters, the spam day of sources and the spam purge setting."""
    op.create_table(
        "budget_counters",
        sa.Column("key", sa.LargeBinary(length=MAX_BUDGET_KEY_BYTES), nullable=False),
        sa.Column("window_end", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            f"length(key) BETWEEN 1 AND {MAX_BUDGET_KEY_BYTES}",
            name=op.f("ck_budget_counters_key_length"),
        ),
        sa.CheckConstraint("count >= 1", name=op.f("ck_budget_counters_count")),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_budget_counters")),
    )
    op.create_index(
        op.f("ix_budget_counters_window_end"), "budget_counters", ["window_end"], unique=False
    )
    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("spam_since", sa.Date(), nullable=True))
    sources = sa.table(
        "sources", sa.column("status", sa.SmallInteger()), sa.column("spam_since", sa.Date())
    )
    op.execute(
        sources.update()
        .where(sources.c.status == SOURCE_STATUS_SPAM)
        .values(spam_since=sa.func.current_date())
    )
    with op.batch_alter_table("instance_settings") as batch:
        batch.add_column(sa.Column("spam_purge_days", sa.Integer(), nullable=True))
        batch.create_check_constraint(
            op.f("ck_instance_settings_spam_purge_days_positive"), "spam_purge_days > 0"
        )


def downgrade() -> None:
    """Drop them again (a purge setting and spam days are lost; spam stays a status)."""
    with op.batch_alter_table("instance_settings") as batch:
        batch.drop_constraint(op.f("ck_instance_settings_spam_purge_days_positive"), type_="check")
        batch.drop_column("spam_purge_days")
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("spam_since")
    op.drop_index(op.f("ix_budget_counters_window_end"), table_name="budget_counters")
    op.drop_table("budget_counters")
