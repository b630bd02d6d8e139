"""Instance settings: the logo, "files accepted", and retention that can be off.

- ``instance_settings.logo``: the newsroom's logo as served to sources, a PNG re-encoded by
  ``tipbox.settings`` (at most 1 MiB, checked), and ``logo_hash``, the 16-byte BLAKE2b
  hash that names it in its URL; both or neither.
- ``instance_settings.files_accepted``: whether sources may send files (true for every
  existing instance, as before).
- ``instance_settings.retention_days`` may be NULL: retention off. The CHECK > 0 stays for
  every other value. A downgrade turns "off" into 3,650 days, the longest retention the
  settings allow, so that no source becomes due for deletion by it.

Revision ID: 0004. Revises: 0003. See docs/settings.md.

Data test: tests/migrations/migration_0004.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Not imported from tipbox.models, which describes only the newest schema.
MAX_LOGO_BYTES = 1024 * 1024
LOGO_HASH_BYTES = 16
# What "off" becomes when downgrading (tipbox.settings.MAX_RETENTION_DAYS).
LONGEST_RETENTION_DAYS = 3650

# Name and SQL of each new CHECK constraint (ck_instance_settings_<name>).
CHECKS: dict[str, str] = {
    "logo_size": f"length(logo) <= {MAX_LOGO_BYTES}",
    "logo_hash_length": f"length(logo_hash) = {LOGO_HASH_BYTES}",
    "logo_with_hash": "(logo IS NULL) = (logo_hash IS NULL)",
}


def upgrade() -> None:
    """Add the logo and "files accepted" columns; let retention be off."""
    with op.batch_alter_table("instance_settings") as batch:
        batch.add_column(
            sa.Column("files_accepted", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.add_column(sa.Column("logo", sa.LargeBinary(), nullable=True))
        batch.add_column(
            sa.Column("logo_hash", sa.LargeBinary(length=LOGO_HASH_BYTES), nullable=True)
        )
    with op.batch_alter_table("instance_settings") as batch:
        batch.alter_column("files_accepted", server_default=None)
        batch.alter_column("retention_days", existing_type=sa.Integer(), nullable=True)
        for name, condition in CHECKS.items():
            batch.create_check_constraint(op.f(f"ck_instance_settings_{name}"), condition)


def downgrade() -> None:
    """Drop the logo and "files accepted"; retention off becomes the longest retention."""
    settings = sa.table("instance_settings", sa.column("retention_days", sa.Integer()))
    op.execute(
        settings.update()
        .where(settings.c.retention_days.is_(None))
        .values(retention_days=LONGEST_RETENTION_DAYS)
    )
    with op.batch_alter_table("instance_settings") as batch:
        for name in reversed(list(CHECKS)):
            batch.drop_constraint(op.f(f"ck_instance_settings_{name}"), type_="check")
        batch.alter_column("retention_days", existing_type=sa.Integer(), nullable=False)
        batch.drop_column("logo_hash")
        batch.drop_column("logo")
        batch.drop_column("files_accepted")
