"""``tipbox fsck [--repair] [--delete-unreadable] [--apps-stopped] [--json]``, run as a real
process on SQLite and PostgreSQL: the report, the exit status, what repair removes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tipbox import directory, sources
from tipbox.config import Config
from tipbox.instance import init_instance
from tipbox.models import AuditEvent, Item, Source
from tipbox.storage import FilesystemBlobStore
from tipbox.submissions import Limits, accept_server_submission

TIPBOX = str(Path(sys.executable).with_name("tipbox"))
LIMITS = Limits(max_message_chars=1000, max_files=3, max_file_bytes=1 << 20)


def _tipbox(config: Config, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIPBOX_")}
    env.update(
        TIPBOX_DATA_DIR=str(config.data_dir),
        TIPBOX_DATABASE_URL=config.database_url,
        TIPBOX_KEYS_DIR=str(config.keys_dir),
    )
    return subprocess.run(
        [TIPBOX, "fsck", *args],
        env=env,
        cwd=config.data_dir.parent,
        stdin=subprocess.DEVNULL,  # it must never ask for anything
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _json(config: Config, *args: str) -> tuple[int, dict[str, Any]]:
    done = _tipbox(config, "--json", *args)
    assert done.stderr == "", done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return done.returncode, data


def _instance(db: Session, config: Config) -> tuple[bytes, str]:
    """An instance with one source and one message; the message's blob id."""
    init_instance(db, config, name="Test", admin_username="admin")
    source = sources.create_source(db)
    db.commit()
    store = FilesystemBlobStore(config.blob_dir)
    receipt = accept_server_submission(
        db,
        store,
        directory.identity_public(db),
        source.public_id,
        "a message",
        [],
        LIMITS,
    )
    db.commit()
    (item_id,) = receipt.item_ids
    blob_id = db.scalars(select(Item.blob_id)).one()
    db.rollback()  # the command needs the database unlocked
    return item_id, blob_id


def test_a_clean_instance(db: Session, config: Config) -> None:
    _instance(db, config)
    done = _tipbox(config)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Checked 1 items and 1 blobs (files younger than 24 h are not judged)." in done.stdout
    assert "Clean: nothing to repair, nothing damaged." in done.stdout
    code, data = _json(config)
    assert code == 0
    assert data["clean"] is True
    assert data["repaired"] is None
    assert data["found"] == data["remaining"]


def test_leftovers_are_reported_then_repaired(db: Session, config: Config) -> None:
    _instance(db, config)
    store = FilesystemBlobStore(config.blob_dir)
    orphan = store.new_id()
    with store.writer(orphan) as out:
        out.write(b"ciphertext of a submission that never committed")

    # Without --apps-stopped a fresh blob may be an upload in progress: not judged.
    waiting = _tipbox(config, "--repair")
    assert waiting.returncode == 0, waiting.stdout
    assert "1 blobs no item names yet (uploads in progress?)" in waiting.stdout
    assert store.exists(orphan)

    dry = _tipbox(config, "--apps-stopped")
    assert dry.returncode == 4
    assert "1 blobs no item names" in dry.stdout
    assert orphan in dry.stdout
    assert "`tipbox fsck --repair` removes the leftovers" in dry.stdout
    assert store.exists(orphan)

    code, data = _json(config, "--apps-stopped", "--repair")
    assert code == 0
    assert data["found"]["orphan_blobs"] == [orphan]
    assert data["repaired"] == {
        "orphan_blobs": 1,
        "temp_files": 0,
        "retired_wraps": 0,
        "unreadable_items": 0,
    }
    assert data["remaining"]["clean"] is True
    assert not store.exists(orphan)
    db.rollback()
    assert [event.detail["orphan_blobs"] for event in db.scalars(select(AuditEvent))] == [1]


def test_damage_is_kept_unless_asked_and_the_exit_status_says_so(
    db: Session, config: Config
) -> None:
    item_id, blob_id = _instance(db, config)
    os.unlink(FilesystemBlobStore(config.blob_dir).path(blob_id))

    repaired = _tipbox(config, "--repair")
    assert repaired.returncode == 4
    assert "1 items whose blob is missing" in repaired.stdout
    assert f"message {item_id.hex()}" in repaired.stdout
    assert "`--repair --delete-unreadable` deletes them" in repaired.stdout
    assert "Left: 0 leftovers and 1 damaged" in repaired.stdout
    db.rollback()
    assert db.scalars(select(Item.public_id)).all() == [item_id]
    db.rollback()

    refused = _tipbox(config, "--delete-unreadable")
    assert refused.returncode == 2
    assert "--delete-unreadable needs --repair" in refused.stderr

    code, data = _json(config, "--repair", "--delete-unreadable")
    assert code == 0
    assert data["repaired"]["unreadable_items"] == 1
    db.rollback()
    assert db.scalars(select(Item.public_id)).all() == []


def test_the_report_names_no_source(db: Session, config: Config) -> None:
    _, blob_id = _instance(db, config)
    os.unlink(FilesystemBlobStore(config.blob_dir).path(blob_id))
    source = db.scalars(select(Source)).one()
    secrets = [source.public_id.hex(), source.designation or "-", source.lookup_hash.hex()]
    db.rollback()
    output = _tipbox(config).stdout + _tipbox(config, "--json").stdout
    assert not [secret for secret in secrets if secret in output]


def test_without_an_instance_it_says_so(config: Config, database_url: str) -> None:
    done = _tipbox(config)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "Error:" in done.stderr
