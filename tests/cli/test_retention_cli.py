"""``tipbox retention run [--dry-run]``, run as a real process on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tipbox import settings, sources
from tipbox.config import Config
from tipbox.instance import init_instance
from tipbox.models import Source, today

TIPBOX = str(Path(sys.executable).with_name("tipbox"))


def _tipbox(config: Config, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIPBOX_")}
    env.update(
        TIPBOX_DATA_DIR=str(config.data_dir),
        TIPBOX_DATABASE_URL=config.database_url,
        TIPBOX_KEYS_DIR=str(config.keys_dir),
    )
    return subprocess.run(
        [TIPBOX, *args],
        env=env,
        cwd=config.data_dir.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _source_active_days_ago(db: Session, days: int) -> bytes:
    public_id = sources.create_source(db).public_id
    day = today() - timedelta(days=days)
    db.execute(update(Source).where(Source.public_id == public_id).values(last_active_on=day))
    db.commit()
    return public_id


def _sources(db: Session) -> set[bytes]:
    found = set(db.scalars(select(Source.public_id)))
    db.rollback()  # the next command needs the database unlocked
    return found


def test_dry_run_then_run_then_off(db: Session, config: Config) -> None:
    init_instance(db, config, name="Test", admin_username="admin")
    db.commit()
    old = _source_active_days_ago(db, 120)
    recent = _source_active_days_ago(db, 30)
    cutoff = (today() - timedelta(days=90)).isoformat()

    dry = _tipbox(config, "retention", "run", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout == (
        f"1 source(s) last active before {cutoff} would be deleted (retention: 90 days; dry run).\n"
    )
    assert _sources(db) == {old, recent}

    done = _tipbox(config, "retention", "run")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        f"Deleted 1 source(s) last active before {cutoff} (retention: 90 days)."
        " Deleted 0 source(s) marked spam.\n"
    )
    assert _sources(db) == {recent}

    settings.update(db, config, None, retention_days=None)
    db.commit()
    off = _tipbox(config, "retention", "run")
    assert off.returncode == 0, off.stderr
    assert off.stdout == (
        "Retention is off: no source is deleted for inactivity. Deleted 0 source(s) marked spam.\n"
    )
    assert _sources(db) == {recent}


def test_without_an_instance_it_says_so(db: Session, config: Config) -> None:
    db.close()
    run = _tipbox(config, "retention", "run")
    assert run.returncode == 1
    assert "run `tipbox init`" in run.stderr
    assert "Traceback" not in run.stderr
