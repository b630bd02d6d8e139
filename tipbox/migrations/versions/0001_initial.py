"""The initial schema: instance, directory, keys, journalists, grants, sources, items,
wraps, sessions and the audit log.

Revision ID: 0001
Revises: (none)

Data test: tests/migrations/migration_0001.py. This file does not import tipbox.models,
which will change after it; column types are plain SQLAlchemy ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade the schema."""
    op.create_table(
        "directory_entries",
        sa.Column("key_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("role", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("subject_id", sa.LargeBinary(length=16), nullable=True),
        sa.Column("x25519", sa.LargeBinary(length=32), nullable=False),
        sa.Column("ed25519", sa.LargeBinary(length=32), nullable=True),
        sa.Column("serial", sa.BigInteger(), nullable=False),
        sa.Column("entry", sa.LargeBinary(length=126), nullable=False),
        sa.Column("signature", sa.LargeBinary(length=64), nullable=False),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.CheckConstraint("length(entry) = 126", name=op.f("ck_directory_entries_entry_length")),
        sa.CheckConstraint("length(key_id) = 16", name=op.f("ck_directory_entries_key_id_length")),
        sa.CheckConstraint(
            "length(signature) = 64", name=op.f("ck_directory_entries_signature_length")
        ),
        sa.CheckConstraint("length(x25519) = 32", name=op.f("ck_directory_entries_x25519_length")),
        sa.CheckConstraint("role IN (1, 2, 3, 4)", name=op.f("ck_directory_entries_role")),
        sa.CheckConstraint("status IN (1, 2, 3, 4)", name=op.f("ck_directory_entries_status")),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_directory_entries")),
        sa.UniqueConstraint("serial", name=op.f("uq_directory_entries_serial")),
    )
    op.create_table(
        "grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("grantee_key_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("sealed_grant", sa.LargeBinary(length=129), nullable=False),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.CheckConstraint(
            "length(sealed_grant) = 129", name=op.f("ck_grants_sealed_grant_length")
        ),
        sa.ForeignKeyConstraint(
            ["grantee_key_id"],
            ["directory_entries.key_id"],
            name=op.f("fk_grants_grantee_key_id_directory_entries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["directory_entries.key_id"],
            name=op.f("fk_grants_key_id_directory_entries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grants")),
        sa.UniqueConstraint(
            "key_id", "grantee_key_id", name=op.f("uq_grants_key_id_grantee_key_id")
        ),
    )
    op.create_index(op.f("ix_grants_grantee_key_id"), "grants", ["grantee_key_id"], unique=False)

    op.create_table(
        "instance_settings",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("codename_salt", sa.LargeBinary(length=16), nullable=False),
        sa.Column("codename_opslimit", sa.Integer(), nullable=False),
        sa.Column("codename_memlimit", sa.BigInteger(), nullable=False),
        sa.Column("identity_key_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("identity_x25519", sa.LargeBinary(length=32), nullable=False),
        sa.Column("identity_ed25519", sa.LargeBinary(length=32), nullable=False),
        sa.Column("next_directory_serial", sa.BigInteger(), nullable=False),
        sa.Column("languages", sa.Text(), nullable=False),
        sa.Column(
            "limits", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_instance_settings_singleton")),
        sa.CheckConstraint(
            "length(codename_salt) = 16", name=op.f("ck_instance_settings_codename_salt_length")
        ),
        sa.CheckConstraint(
            "length(identity_ed25519) = 32",
            name=op.f("ck_instance_settings_identity_ed25519_length"),
        ),
        sa.CheckConstraint(
            "length(identity_key_id) = 16", name=op.f("ck_instance_settings_identity_key_id_length")
        ),
        sa.CheckConstraint(
            "length(identity_x25519) = 32", name=op.f("ck_instance_settings_identity_x25519_length")
        ),
        sa.CheckConstraint(
            "retention_days > 0", name=op.f("ck_instance_settings_retention_days_positive")
        ),
        sa.ForeignKeyConstraint(
            ["identity_key_id"],
            ["directory_entries.key_id"],
            name=op.f("fk_instance_settings_identity_key_id_directory_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instance_settings")),
    )
    op.create_table(
        "journalists",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("key_id", sa.LargeBinary(length=16), nullable=True),
        sa.Column("kdf_salt", sa.LargeBinary(length=16), nullable=False),
        sa.Column("kdf_opslimit", sa.Integer(), nullable=False),
        sa.Column("kdf_memlimit", sa.BigInteger(), nullable=False),
        sa.Column("verifier", sa.LargeBinary(length=32), nullable=False),
        sa.Column("seed_box", sa.LargeBinary(length=72), nullable=True),
        sa.Column("totp_box", sa.LargeBinary(), nullable=True),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=True),
        sa.Column("must_change_passphrase", sa.Boolean(), nullable=False),
        sa.Column("failed_login_count", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.CheckConstraint(
            "failed_login_count >= 0", name=op.f("ck_journalists_failed_login_count")
        ),
        sa.CheckConstraint("length(kdf_salt) = 16", name=op.f("ck_journalists_kdf_salt_length")),
        sa.CheckConstraint("length(public_id) = 16", name=op.f("ck_journalists_public_id_length")),
        sa.CheckConstraint("length(seed_box) = 72", name=op.f("ck_journalists_seed_box_length")),
        sa.CheckConstraint("length(verifier) = 32", name=op.f("ck_journalists_verifier_length")),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["directory_entries.key_id"],
            name=op.f("fk_journalists_key_id_directory_entries"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journalists")),
        sa.UniqueConstraint("key_id", name=op.f("uq_journalists_key_id")),
        sa.UniqueConstraint("public_id", name=op.f("uq_journalists_public_id")),
        sa.UniqueConstraint("username", name=op.f("uq_journalists_username")),
    )
    op.create_table(
        "newsroom_keys",
        sa.Column("key_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.Column("retiring_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retired_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["directory_entries.key_id"],
            name=op.f("fk_newsroom_keys_key_id_directory_entries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_newsroom_keys")),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("actor_journalist_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column(
            "detail", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["actor_journalist_id"],
            ["journalists.id"],
            name=op.f("fk_audit_events_actor_journalist_id_journalists"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index(op.f("ix_audit_events_day"), "audit_events", ["day"], unique=False)

    op.create_table(
        "sessions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("app", sa.String(length=16), nullable=False),
        sa.Column("journalist_id", sa.Integer(), nullable=True),
        sa.Column("box", sa.LargeBinary(), nullable=False),
        sa.Column("idle_seconds", sa.Integer(), nullable=False),
        sa.Column("idle_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("absolute_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "app = 'journalist' OR journalist_id IS NULL", name=op.f("ck_sessions_source_unlinked")
        ),
        sa.CheckConstraint("app IN ('source', 'journalist')", name=op.f("ck_sessions_app")),
        sa.CheckConstraint("idle_seconds > 0", name=op.f("ck_sessions_idle_seconds")),
        sa.CheckConstraint("length(id) = 32", name=op.f("ck_sessions_id_length")),
        sa.ForeignKeyConstraint(
            ["journalist_id"],
            ["journalists.id"],
            name=op.f("fk_sessions_journalist_id_journalists"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
    )
    op.create_index(
        op.f("ix_sessions_absolute_expires_at"), "sessions", ["absolute_expires_at"], unique=False
    )
    op.create_index(
        op.f("ix_sessions_idle_expires_at"), "sessions", ["idle_expires_at"], unique=False
    )
    op.create_index(op.f("ix_sessions_journalist_id"), "sessions", ["journalist_id"], unique=False)

    op.create_table(
        "sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("lookup_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("x25519", sa.LargeBinary(length=32), nullable=False),
        sa.Column("designation", sa.Text(), nullable=True),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.Column("last_active_on", sa.Date(), nullable=False),
        sa.Column("next_seq", sa.Integer(), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("starred", sa.Boolean(), nullable=False),
        sa.Column("spam", sa.Boolean(), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("length(lookup_hash) = 32", name=op.f("ck_sources_lookup_hash_length")),
        sa.CheckConstraint("length(public_id) = 16", name=op.f("ck_sources_public_id_length")),
        sa.CheckConstraint("length(x25519) = 32", name=op.f("ck_sources_x25519_length")),
        sa.CheckConstraint("next_seq >= 1", name=op.f("ck_sources_next_seq")),
        sa.ForeignKeyConstraint(
            ["assignee_id"],
            ["journalists.id"],
            name=op.f("fk_sources_assignee_id_journalists"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sources")),
        sa.UniqueConstraint("designation", name=op.f("uq_sources_designation")),
        sa.UniqueConstraint("lookup_hash", name=op.f("uq_sources_lookup_hash")),
        sa.UniqueConstraint("public_id", name=op.f("uq_sources_public_id")),
    )
    op.create_table(
        "items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("version", sa.SmallInteger(), nullable=False),
        sa.Column("blob_id", sa.String(length=32), nullable=False),
        sa.Column("blob_size", sa.BigInteger(), nullable=False),
        sa.Column("sealed_meta", sa.LargeBinary(length=1064), nullable=False),
        sa.Column("signer_key_id", sa.LargeBinary(length=16), nullable=True),
        sa.Column("signature", sa.LargeBinary(length=64), nullable=True),
        sa.Column("author_journalist_id", sa.Integer(), nullable=True),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.CheckConstraint(
            "(signer_key_id IS NULL) = (signature IS NULL)",
            name=op.f("ck_items_signature_with_signer"),
        ),
        sa.CheckConstraint("blob_size >= 0", name=op.f("ck_items_blob_size")),
        sa.CheckConstraint("kind IN (1, 2, 3, 4)", name=op.f("ck_items_kind")),
        sa.CheckConstraint("length(public_id) = 16", name=op.f("ck_items_public_id_length")),
        sa.CheckConstraint("length(sealed_meta) = 1064", name=op.f("ck_items_sealed_meta_length")),
        sa.ForeignKeyConstraint(
            ["author_journalist_id"],
            ["journalists.id"],
            name=op.f("fk_items_author_journalist_id_journalists"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name=op.f("fk_items_source_id_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_items")),
        sa.UniqueConstraint("blob_id", name=op.f("uq_items_blob_id")),
        sa.UniqueConstraint("public_id", name=op.f("uq_items_public_id")),
        sa.UniqueConstraint("source_id", "seq", name=op.f("uq_items_source_id_seq")),
    )
    op.create_table(
        "wraps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("algorithm", sa.String(length=32), nullable=False),
        sa.Column("wrap", sa.LargeBinary(length=80), nullable=False),
        sa.CheckConstraint("length(key_id) = 16", name=op.f("ck_wraps_key_id_length")),
        sa.CheckConstraint("length(wrap) = 80", name=op.f("ck_wraps_wrap_length")),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_wraps_item_id_items"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wraps")),
        sa.UniqueConstraint("item_id", "key_id", name=op.f("uq_wraps_item_id_key_id")),
    )
    op.create_index(op.f("ix_wraps_key_id"), "wraps", ["key_id"], unique=False)


def downgrade() -> None:
    """Downgrade the schema: drop every table (indexes go with them)."""
    op.drop_table("wraps")
    op.drop_table("items")
    op.drop_table("sources")
    op.drop_table("sessions")
    op.drop_table("audit_events")
    op.drop_table("newsroom_keys")
    op.drop_table("journalists")
    op.drop_table("instance_settings")
    op.drop_table("grants")
    op.drop_table("directory_entries")
