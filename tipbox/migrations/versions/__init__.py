"""Alembic revisions: one file per revision, each with a data test in tests/migrations/."""
