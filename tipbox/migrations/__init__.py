"""Alembic migrations, run in code by ``tipbox.db.upgrade`` (no alembic.ini)."""
