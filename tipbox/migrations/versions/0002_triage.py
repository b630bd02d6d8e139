"""Triage: six statuses (spam among them), read markers, tags and the metadata key role.

- ``sources.status`` takes six values: 0 new, 1 in review, 2 verified, 3 published,
  4 closed, 5 spam. The old "done" (2) becomes closed (4); a source flagged ``spam``
  becomes status 5, and the ``spam`` column goes. A downgrade maps back: verified and
  published become "in progress" (1), closed becomes "done" (2), spam becomes new with the
  flag set.
- ``sources.last_source_seq``: the seq of the source's own newest message or file,
  filled from the items; read markers are compared with it.
- ``read_markers`` (journalist, source, seen seq) and ``source_tags`` (sealed tag and its
  blind index, docs/envelope.md 12).
- The directory accepts role 6, the metadata key whose seed keys the tags.
- Indexes for the inbox: last activity, status, assignee.

Revision ID: 0002
Revises: 0001

Data test: tests/migrations/migration_0002.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The kinds a source sends: 1 message, 2 file.
_LAST_SOURCE_SEQ = (
    "UPDATE sources SET last_source_seq = COALESCE("
    "(SELECT MAX(items.seq) FROM items"
    " WHERE items.source_id = sources.id AND items.kind IN (1, 2)), 0)"
)


def upgrade() -> None:
    """Upgrade the schema and carry the triage data over."""
    with op.batch_alter_table("directory_entries") as batch:
        batch.drop_constraint(op.f("ck_directory_entries_role"), type_="check")
        batch.create_check_constraint(op.f("ck_directory_entries_role"), "role IN (1, 2, 3, 4, 6)")

    with op.batch_alter_table("sources") as batch:
        batch.add_column(
            sa.Column("last_source_seq", sa.Integer(), nullable=False, server_default="0")
        )
    op.execute("UPDATE sources SET status = 4 WHERE status = 2")
    op.execute("UPDATE sources SET status = 5 WHERE spam")
    op.execute(_LAST_SOURCE_SEQ)
    with op.batch_alter_table("sources") as batch:
        batch.alter_column("last_source_seq", server_default=None)
        batch.drop_column("spam")
        batch.create_check_constraint(op.f("ck_sources_status"), "status BETWEEN 0 AND 5")
        batch.create_check_constraint(
            op.f("ck_sources_last_seq"), "last_source_seq >= 0 AND last_source_seq < next_seq"
        )
        batch.create_index(
            op.f("ix_sources_last_active_on_id"), ["last_active_on", "id"], unique=False
        )
        batch.create_index(op.f("ix_sources_status"), ["status"], unique=False)
        batch.create_index(op.f("ix_sources_assignee_id"), ["assignee_id"], unique=False)

    op.create_table(
        "read_markers",
        sa.Column("journalist_id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("seen_seq", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["journalist_id"],
            ["journalists.id"],
            name=op.f("fk_read_markers_journalist_id_journalists"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name=op.f("fk_read_markers_source_id_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("journalist_id", "source_id", name=op.f("pk_read_markers")),
    )
    op.create_index(op.f("ix_read_markers_source_id"), "read_markers", ["source_id"])

    op.create_table(
        "source_tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("blind_index", sa.LargeBinary(length=32), nullable=False),
        sa.Column("sealed_tag", sa.LargeBinary(length=296), nullable=False),
        sa.CheckConstraint(
            "length(blind_index) = 32", name=op.f("ck_source_tags_blind_index_length")
        ),
        sa.CheckConstraint("length(key_id) = 16", name=op.f("ck_source_tags_key_id_length")),
        sa.CheckConstraint(
            "length(sealed_tag) = 296", name=op.f("ck_source_tags_sealed_tag_length")
        ),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["directory_entries.key_id"],
            name=op.f("fk_source_tags_key_id_directory_entries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name=op.f("fk_source_tags_source_id_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_source_tags")),
        sa.UniqueConstraint(
            "source_id", "blind_index", name=op.f("uq_source_tags_source_id_blind_index")
        ),
    )
    op.create_index(op.f("ix_source_tags_blind_index"), "source_tags", ["blind_index"])


def downgrade() -> None:
    """Downgrade the schema, mapping the six statuses back onto three and a spam flag."""
    op.drop_index(op.f("ix_source_tags_blind_index"), table_name="source_tags")
    op.drop_table("source_tags")
    op.drop_index(op.f("ix_read_markers_source_id"), table_name="read_markers")
    op.drop_table("read_markers")

    # Directory entries of role 6 (and the grants of their seeds) have no place before 0002.
    op.execute(
        "DELETE FROM grants WHERE key_id IN (SELECT key_id FROM directory_entries WHERE role = 6)"
    )
    op.execute("DELETE FROM directory_entries WHERE role = 6")
    with op.batch_alter_table("directory_entries") as batch:
        batch.drop_constraint(op.f("ck_directory_entries_role"), type_="check")
        batch.create_check_constraint(op.f("ck_directory_entries_role"), "role IN (1, 2, 3, 4)")

    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("spam", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE sources SET spam = (status = 5)")
    op.execute(
        "UPDATE sources SET status = CASE status"
        " WHEN 2 THEN 1 WHEN 3 THEN 2 WHEN 4 THEN 2 WHEN 5 THEN 0 ELSE status END"
    )
    with op.batch_alter_table("sources") as batch:
        batch.alter_column("spam", server_default=None)
        batch.drop_index(op.f("ix_sources_assignee_id"))
        batch.drop_index(op.f("ix_sources_status"))
        batch.drop_index(op.f("ix_sources_last_active_on_id"))
        batch.drop_constraint(op.f("ck_sources_last_seq"), type_="check")
        batch.drop_constraint(op.f("ck_sources_status"), type_="check")
        batch.drop_column("last_source_seq")
