"""``tipbox keys status|rotate|rewrap|retire|recover`` (``tipbox.cli_keys``), on SQLite and
PostgreSQL: in process with click's runner, and as a real process killed with SIGKILL in
the middle of a re-wrap, then run again.

The admin unlocks with passphrase and TOTP code on standard input. A code is accepted once
per 30-second step and account, so each unlock takes a step not spent yet (``_code``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pyotp
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from tipbox import conversations, directory, instance, keyring, rotation, sources
from tipbox.accounts import Credentials, unlock_journalist
from tipbox.cli import cli
from tipbox.config import Config
from tipbox.crypto import envelope
from tipbox.crypto.directory import Status
from tipbox.crypto.envelope import Kind, Meta
from tipbox.crypto.keys import KeyPair, PublicKeys, Role, keypair_from_seed
from tipbox.crypto.recovery import (
    generate_recovery_secret,
    recovery_keypair,
    recovery_public_file_text,
)
from tipbox.db import make_session_factory, transaction
from tipbox.items import NewItem, source_for_update, store_items
from tipbox.models import DirectoryEntry, Item, Journalist, Wrap, new_public_id
from tipbox.storage import FilesystemBlobStore

TIPBOX = str(Path(sys.executable).with_name("tipbox"))
# Long enough that a re-wrap in batches of ``KILL_BATCH`` is still running when it is
# killed; short enough to set up in about a second.
KILL_ITEMS = 3000
KILL_BATCH = 20


@dataclass
class Instance:
    """An initialised instance (recovery key made in place), one source, a few real items."""

    config: Config
    factory: sessionmaker[Session]
    # Read-only transactions: on SQLite they do not wait for the writer (a re-wrap's batch)
    # nor hold it up, so polling sees the other process's progress as it commits.
    reads: sessionmaker[Session]
    admin: Credentials
    recovery_secret: str
    source_id: bytes
    texts: list[str]

    def code(self) -> str:
        """A TOTP code for a step the admin has not spent yet."""
        with transaction(self.reads) as db:
            last = db.scalars(
                select(Journalist.totp_last_step).where(Journalist.username == "admin")
            ).one()
        totp = pyotp.TOTP(self.admin.totp_secret)
        # The oldest unspent step still accepted, with a margin: a step about to leave the
        # window is skipped, since the code may be checked seconds later (a process start,
        # Argon2id on a loaded machine); when no step is left, wait for the next one.
        while True:
            current = totp.timecode(datetime.now(UTC))
            oldest = current - 1 if time.time() % 30 < 15 else current
            step = oldest if last is None else max(oldest, last + 1)
            if step <= current + 1:
                break
            time.sleep(1)
        return str(totp.generate_otp(step))

    def unlock_input(self) -> str:
        return f"{self.admin.passphrase}\n{self.code()}\n"

    def invoke(self, *args: str, stdin: str = "") -> Result:
        return CliRunner().invoke(cli, ["keys", *args], obj=self.config, input=stdin)

    def newsroom_wraps(self) -> dict[int, list[bytes]]:
        """Item row id -> the key ids of its wraps to newsroom keys."""
        with transaction(self.reads) as db:
            newsroom = select(DirectoryEntry.key_id).where(
                DirectoryEntry.role == int(Role.NEWSROOM)
            )
            found: dict[int, list[bytes]] = {item_id: [] for item_id in db.scalars(select(Item.id))}
            rows = db.execute(select(Wrap.item_id, Wrap.key_id).where(Wrap.key_id.in_(newsroom)))
            for item_id, key_id in rows:
                found[item_id].append(key_id)
        return found

    def keys(self) -> tuple[PublicKeys, list[PublicKeys]]:
        """The current newsroom key and the retiring ones."""
        with transaction(self.reads) as db:
            identity = directory.identity_public(db)
            current = rotation.current_key(db, identity).public
            return current, [entry.public for entry in rotation.retiring_keys(db, identity)]


@pytest.fixture
def quick_grace(config: Config, database_url: str) -> Config:
    """The test configuration with a grace period of one second."""
    return replace(config, source_session_absolute_seconds=1, slowest_upload_seconds=0)


@pytest.fixture
def made(quick_grace: Config, engine: Engine) -> Instance:
    return _make(quick_grace, engine)


def _make(config: Config, engine: Engine) -> Instance:
    factory = make_session_factory(engine)
    with transaction(factory) as db:
        result = instance.init_instance(
            db, config, name="Test", admin_username="admin", recovery_in_place=True
        )
        source = sources.create_source(db)
    assert result.recovery_secret is not None
    texts = []
    store = FilesystemBlobStore(config.blob_dir)
    with transaction(factory) as db:
        identity = directory.identity_public(db)
        row = db.scalars(select(Journalist)).one()
        admin = unlock_journalist(db, identity, row, result.admin.passphrase).keypair
        for kind, text in ((Kind.REPLY, "a reply"), (Kind.NOTE, "a note")):
            add = conversations.add_reply if kind == Kind.REPLY else conversations.add_note
            add(db, store, identity, row, admin, source.public_id, text)
            texts.append(text)
    return Instance(
        config,
        factory,
        make_session_factory(engine, read_only=True),
        result.admin,
        result.recovery_secret,
        source.public_id,
        texts,
    )


def _admin_keys(db: Session, made: Instance) -> tuple[PublicKeys, KeyPair]:
    identity = directory.identity_public(db)
    row = db.scalars(select(Journalist).where(Journalist.username == "admin")).one()
    return identity, unlock_journalist(db, identity, row, made.admin.passphrase).keypair


def _add_items(made: Instance, count: int) -> None:
    """``count`` messages wrapped to the current key: real meta and wraps, in one
    transaction. Their blobs are not written (a re-wrap never reads a blob), so they are
    checked by opening their meta (``_check_every_item_opens``)."""
    with transaction(made.factory) as db:
        identity = directory.identity_public(db)
        current = rotation.current_key(db, identity)
        source = source_for_update(db, made.source_id)
        assert source is not None
        items = []
        for _ in range(count):
            item_id, content_key = new_public_id(), envelope.new_content_key()
            ad = envelope.additional_data(Kind.MESSAGE, made.source_id, item_id)
            items.append(
                NewItem(
                    public_id=item_id,
                    kind=Kind.MESSAGE,
                    blob_id=os.urandom(16).hex(),
                    blob_size=envelope.blob_length(5),
                    sealed_meta=envelope.seal_meta(
                        content_key, ad, Meta("", envelope.TEXT_MEDIA_TYPE, 5)
                    ),
                    wraps={current.key_id: envelope.wrap_key(content_key, current.x25519)},
                )
            )
        store_items(
            db, FilesystemBlobStore(made.config.blob_dir), source, items, source_activity=True
        )


def _check_every_item_opens(made: Instance) -> None:
    """Every item has exactly one newsroom wrap, to the current key; its content key opens
    the item's meta; the real items read in full (text and verified signature)."""
    current, _retiring = made.keys()
    wraps = made.newsroom_wraps()
    assert all(keys == [current.key_id] for keys in wraps.values())
    with transaction(made.factory) as db:
        identity, admin = _admin_keys(db, made)
        seed = keyring.granted_seed(db, identity, admin, Role.NEWSROOM, current.key_id)
        newsroom = keypair_from_seed(Role.NEWSROOM, seed)
        rows = db.execute(
            select(Item.kind, Item.public_id, Item.sealed_meta, Wrap.wrap)
            .join(Wrap, Wrap.item_id == Item.id)
            .where(Wrap.key_id == current.key_id)
        ).all()
        assert len(rows) == len(wraps)
        for kind, item_id, sealed_meta, wrap in rows:
            content_key = envelope.unwrap_key(wrap, newsroom.x25519_private)
            ad = envelope.additional_data(kind, made.source_id, item_id)
            envelope.open_meta(content_key, ad, sealed_meta)
        store = FilesystemBlobStore(made.config.blob_dir)
        views = conversations.conversation(db, store, identity, admin, made.source_id)
        real = [view.text for view in views if view.kind in (Kind.REPLY, Kind.NOTE)]
        assert real == made.texts
        assert all(view.verified for view in views if view.kind in (Kind.REPLY, Kind.NOTE))
        duplicates = (
            select(Wrap.item_id).group_by(Wrap.item_id, Wrap.key_id).having(func.count() > 1)
        )
        assert db.scalars(duplicates).all() == []


# --- in process -----------------------------------------------------------------------------


def test_status_lists_every_key_and_the_items_wrapped_to_it(made: Instance) -> None:
    result = made.invoke("status")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:4] == ["short", "id", "role", "status"]
    current, _ = made.keys()
    (newsroom,) = [line for line in lines if line.startswith(current.short_id)]
    assert newsroom.split()[1:5] == ["newsroom", "current", newsroom.split()[3], "2"]
    assert current.fingerprint in newsroom
    assert {line.split()[1] for line in lines[1:]} == {
        "identity",
        "newsroom",
        "recovery",
        "metadata",
    }


def test_rotate_rewrap_retire_at_the_command_line(made: Instance) -> None:
    _add_items(made, 30)
    n1, _ = made.keys()
    rotated = made.invoke("rotate", "--admin", "admin", stdin=made.unlock_input())
    assert rotated.exit_code == 0, rotated.output
    assert "Passphrase" in rotated.output  # prompted, the input not echoed
    assert made.admin.passphrase not in rotated.output
    n2, retiring = made.keys()
    assert retiring == [n1]
    assert n2.fingerprint in rotated.output

    # During the grace period: batches run; retire is refused.
    time.sleep(1.1)  # the grace period of ``quick_grace`` is over
    rewrapped = made.invoke(
        "rewrap", "--admin", "admin", "--batch-size", "7", stdin=made.unlock_input()
    )
    assert rewrapped.exit_code == 0, rewrapped.output
    assert f"Key {n1.short_id}: 32 wraps moved" in rewrapped.output
    assert "Swept: nothing is wrapped to it" in rewrapped.output
    assert all(keys == [n2.key_id] for keys in made.newsroom_wraps().values())

    retired = made.invoke("retire", "--admin", "admin", stdin=made.unlock_input())
    assert retired.exit_code == 0, retired.output
    assert f"Retired key {n1.short_id}" in retired.output
    assert made.keys() == (n2, [])
    status = made.invoke("status")
    (line,) = [line for line in status.output.splitlines() if line.startswith(n1.short_id)]
    assert line.split()[2:5] == ["retired", line.split()[3], "0"]
    _check_every_item_opens(made)


def test_retire_during_the_grace_period_is_refused(config: Config, engine: Engine) -> None:
    made = _make(config, engine)  # the real grace period: hours
    n1, _ = made.keys()
    assert made.invoke("rotate", "--admin", "admin", stdin=made.unlock_input()).exit_code == 0
    refused = made.invoke("retire", "--admin", "admin", stdin=made.unlock_input())
    assert refused.exit_code == 1
    assert "still accepts commits until" in refused.output
    assert "could not be retired yet" in refused.output
    assert made.keys()[1] == [n1]
    wrong = made.invoke("retire", "--admin", "admin", stdin="not the passphrase\n000000\n")
    assert wrong.exit_code == 1
    assert "not unlocked" in wrong.output
    assert "Traceback" not in wrong.output


def test_recover_at_the_command_line(made: Instance, tmp_path: Path) -> None:
    offline = tmp_path / "offline.json"
    new_secret = generate_recovery_secret()
    new_public = recovery_keypair(new_secret).public
    offline.write_text(recovery_public_file_text(new_public), encoding="utf-8")
    result = made.invoke(
        "recover",
        "--admin",
        "admin",
        "--new-recovery-key",
        str(offline),
        stdin=f"{made.recovery_secret}\n",
    )
    assert result.exit_code == 0, result.output
    assert made.recovery_secret not in result.output
    assert new_public.fingerprint in result.output
    passphrase = next(
        line.split(":", 1)[1].strip()
        for line in result.output.splitlines()
        if "passphrase:" in line
    )
    made.admin = replace(made.admin, passphrase=passphrase)
    _check_every_item_opens(made)
    with transaction(made.factory) as db:
        recovery = db.scalars(
            select(DirectoryEntry.key_id).where(DirectoryEntry.role == int(Role.RECOVERY))
        ).all()
    assert recovery == [new_public.key_id]
    again = made.invoke(
        "recover", "--admin", "admin", "--new-recovery-key", str(offline), stdin="x y z\n"
    )
    assert again.exit_code == 1
    assert "Traceback" not in again.output


# --- a real process, killed mid-batch -------------------------------------------------------


def _env(config: Config) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIPBOX_")}
    env.update(
        TIPBOX_DATA_DIR=str(config.data_dir),
        TIPBOX_DATABASE_URL=config.database_url,
        TIPBOX_KEYS_DIR=str(config.keys_dir),
    )
    return env


def _start_rewrap(
    made: Instance, tmp_path: Path, name: str, batch_size: int
) -> subprocess.Popen[str]:
    # A new session: no controlling terminal, so the hidden prompt reads standard input.
    proc = subprocess.Popen(
        [TIPBOX, "keys", "rewrap", "--admin", "admin", "--batch-size", str(batch_size)],
        env=_env(made.config),
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=(tmp_path / f"{name}.out").open("w"),
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert proc.stdin is not None
    proc.stdin.write(made.unlock_input())
    proc.stdin.close()
    return proc


def _count_wraps(made: Instance, key_id: bytes) -> int:
    with transaction(made.reads) as db:
        return int(db.scalar(select(func.count()).where(Wrap.key_id == key_id)) or 0)


def test_a_rewrap_killed_mid_batch_completes_when_run_again(made: Instance, tmp_path: Path) -> None:
    _add_items(made, KILL_ITEMS)
    n1, _ = made.keys()
    with transaction(made.factory) as db:
        identity, admin = _admin_keys(db, made)
        row = db.scalars(select(Journalist).where(Journalist.username == "admin")).one()
        rotation.rotate(db, identity, admin, row.id, datetime.now(UTC), 3600)
    n2, _ = made.keys()
    total = KILL_ITEMS + len(made.texts)

    proc = _start_rewrap(made, tmp_path, "killed", KILL_BATCH)
    try:
        deadline = time.monotonic() + 60
        # Kill it once some batches have committed: it is then in the middle of another.
        while _count_wraps(made, n2.key_id) < 5 * KILL_BATCH:
            assert proc.poll() is None, (tmp_path / "killed.out").read_text()
            assert time.monotonic() < deadline, "the re-wrap never got going"
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    # Cut short, and every item wrapped to exactly one of the two keys.
    moved, left = _count_wraps(made, n2.key_id), _count_wraps(made, n1.key_id)
    assert 0 < moved < total
    assert moved + left == total
    assert all(len(keys) == 1 for keys in made.newsroom_wraps().values())

    again = _start_rewrap(made, tmp_path, "again", rotation.DEFAULT_BATCH)
    assert again.wait(120) == 0, (tmp_path / "again.out").read_text()
    output = (tmp_path / "again.out").read_text()
    assert f"Key {n1.short_id}: {left:,} wraps moved" in output
    assert _count_wraps(made, n1.key_id) == 0
    _check_every_item_opens(made)
    assert _status_of(made, n1) == Status.RETIRING


def _status_of(made: Instance, key: PublicKeys) -> Status:
    with transaction(made.reads) as db:
        return directory.entry(db, directory.identity_public(db), key.key_id).status
