"""`tipbox keys rewrap` killed with SIGKILL in the middle of its batches.

Every item was acknowledged (committed) before the rotation. The re-wrap runs as a real
process, one wrap per transaction, and is killed once some batches have committed. On
PostgreSQL the kill lands at an exact point: the test holds row locks on every wrap but
the first ``GATE``, so the re-wrap moves exactly those, then waits inside its next
batch's transaction, and is killed there. On SQLite (one writer at a time, no row locks)
it is killed as soon as ``GATE`` wraps have moved, with many more left to go.

Then `tipbox fsck` reports the re-wrap left to finish as information, not damage;
`--repair` has nothing to remove; and every item reads back, whichever of the two keys it
is wrapped to now.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pyotp
from sqlalchemy import func, select, text

from tipbox import directory, rotation, sources
from tipbox.accounts import unlock_journalist
from tipbox.crypto.keys import Role
from tipbox.db import transaction
from tipbox.models import DirectoryEntry, Item, Journalist, Wrap
from tipbox.storage import FilesystemBlobStore
from tipbox.submissions import EncryptingUpload, Limits, accept_server_submission

from .live import TIPBOX, Live, kill_group, wait_for

SUBMISSIONS = 200
LIMITS = Limits(max_message_chars=1000, max_files=3, max_file_bytes=1 << 20)
# Wraps moved before the kill.
GATE = 20


def _submit_all(live: Live) -> list[str]:
    """``SUBMISSIONS`` committed submissions of one source (every fourth with a file)."""
    sent = []
    store = FilesystemBlobStore(live.config.blob_dir)
    with transaction(live.factory) as session:
        source_id = sources.create_source(session).public_id
    with transaction(live.factory) as session:
        identity = directory.identity_public(session)
        for n in range(SUBMISSIONS):
            uploads = []
            if n % 4 == 0:
                upload = EncryptingUpload(store, source_id, f"{n}.txt", "text/plain", 1 << 20)
                upload.write(f"file-{n}".encode())
                upload.finish()
                uploads.append(upload)
                sent.append(f"file-{n}")
            accept_server_submission(
                session, store, identity, source_id, f"message-{n}", uploads, LIMITS
            )
            sent.append(f"message-{n}")
    return sent


def _rotate(live: Live) -> tuple[bytes, bytes]:
    """Rotate as the admin; the retiring and the new current key ids."""
    with transaction(live.factory) as session:
        identity = directory.identity_public(session)
        row = session.scalars(select(Journalist)).one()
        keys = unlock_journalist(session, identity, row, live.admin.passphrase).keypair
        rotated = rotation.rotate(
            session, identity, keys, row.id, datetime.now(UTC), live.config.key_grace_seconds
        )
        return rotated.previous.key_id, rotated.current.key_id


def _code(live: Live) -> str:
    """A TOTP code for a step the admin has not spent, with a margin (tests/cli)."""
    totp = pyotp.TOTP(live.admin.totp_secret)
    current = totp.timecode(datetime.now(UTC))
    return str(totp.generate_otp(current - 1 if time.time() % 30 < 15 else current))


def _wraps_to(live: Live, key_id: bytes) -> int:
    with transaction(live.reads) as session:
        return int(session.scalar(select(func.count()).where(Wrap.key_id == key_id)) or 0)


@contextmanager
def _gate(live: Live, old: bytes) -> Iterator[None]:
    """PostgreSQL: lock every wrap to ``old`` but the first ``GATE`` for the block."""
    if live.engine.dialect.name != "postgresql":
        yield
        return
    with live.factory() as session, session.begin():
        ids = session.scalars(select(Wrap.id).where(Wrap.key_id == old).order_by(Wrap.id))
        last_free = list(ids)[GATE - 1]
        # Not OFFSET: PostgreSQL locks the rows an OFFSET skips too.
        session.execute(
            select(Wrap.id).where(Wrap.key_id == old, Wrap.id > last_free).with_for_update()
        ).all()
        yield


def _waiting_for_a_lock(live: Live) -> bool:
    with live.engine.connect() as conn:
        waiting = conn.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return bool(waiting)


def test_kill_during_a_rewrap_loses_nothing(live: Live) -> None:
    sent = _submit_all(live)
    old, new = _rotate(live)
    total = len(sent)

    with _gate(live, old):
        rewrap = live.spawn(
            [TIPBOX, "keys", "rewrap", "--admin", "admin", "--batch-size", "1"],
            "rewrap",
            stdin=subprocess.PIPE,
        )
        assert rewrap.stdin is not None
        rewrap.stdin.write(f"{live.admin.passphrase}\n{_code(live)}\n".encode())
        rewrap.stdin.close()

        def at_the_gate() -> bool:
            assert rewrap.poll() is None, live.log("rewrap")
            if _wraps_to(live, new) < GATE:
                return False
            return live.engine.dialect.name != "postgresql" or _waiting_for_a_lock(live)

        wait_for(f"the re-wrap's first {GATE} batches", at_the_gate)
        kill_group(rewrap)
    moved, left = _wraps_to(live, new), _wraps_to(live, old)
    if live.engine.dialect.name == "postgresql":
        assert moved == GATE
    assert 0 < moved < total  # cut short
    assert moved + left == total  # each item wrapped to exactly one of the two keys

    found = live.repair_then_check_clean()
    assert found["rewrap_pending"] == left  # information: `tipbox keys rewrap` resumes
    assert found["leftovers"] == found["damage"] == 0
    assert sorted(live.read_everything()) == sorted(sent)
    with transaction(live.reads) as session:
        newsroom = select(DirectoryEntry.key_id).where(DirectoryEntry.role == int(Role.NEWSROOM))
        per_item = session.execute(
            select(Wrap.item_id, func.count())
            .where(Wrap.key_id.in_(newsroom))
            .group_by(Wrap.item_id)
        ).all()
        assert len(per_item) == session.scalar(select(func.count()).select_from(Item))
    assert {count for _, count in per_item} == {1}
