"""Flood budgets and room for files in the source app (docs/abuse.md), on a real instance.

Budgets are set low through the config the app is built with; the host-wide Argon2id slots
are held by a real second process, as another gunicorn worker would. The filled-filesystem
test mounts a small tmpfs as the blob store (it needs root, which CI has).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from test_source_app import (  # type: ignore[import-not-found]
    KIB,
    AppFactory,
    Browser,
    app,
    count,
    files_under,
    instance,
    make_app,
    state_of,
    text_of,
)

from tipbox import directory, keyring
from tipbox.accounts import unlock_journalist
from tipbox.config import Config
from tipbox.crypto import envelope
from tipbox.crypto.keys import Role, keypair_from_seed
from tipbox.instance import InitResult
from tipbox.models import Item, Journalist, Source, Wrap
from tipbox.source.budget import Busy, HostSlots, PageCache
from tipbox.storage import FilesystemBlobStore

__all__ = ["app", "instance", "make_app"]  # fixtures, used by name

MIB = 1024 * KIB


def _temp_files(root: Path) -> list[Path]:
    return [path for path in files_under(root) if path.name.startswith(".tmp")]


# --- budgets ---------------------------------------------------------------------------------


def test_a_source_over_its_hourly_budget_gets_429_in_its_language_and_stores_nothing(
    make_app: AppFactory, config: Config, session_factory: sessionmaker[Session]
) -> None:
    app = make_app(submissions_per_hour=2)
    browser = Browser(app)
    browser.get("/?l=ru")
    browser.new_source()
    assert browser.submit("one").status_code == 303
    assert browser.submit("two", [(b"x" * KIB, "a.txt")]).status_code == 303
    stored = files_under(config.blob_dir)
    refused = browser.submit("three", [(b"y" * (200 * KIB), "b.txt")])
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    page = text_of(refused)
    assert '<html lang="ru">' in page
    assert "Ошибка 429" in page
    assert count(session_factory, Item) == 3
    assert files_under(config.blob_dir) == stored
    # Another source has its own budget.
    other = Browser(app)
    other.new_source()
    assert other.submit("hello").status_code == 303


def test_new_sources_past_the_minute_budget_are_busy_before_any_argon2id(
    make_app: AppFactory, session_factory: sessionmaker[Session]
) -> None:
    app = make_app(new_sources_per_minute=1)
    first = Browser(app)
    first.new_source()
    second = Browser(app)
    second.get("/?l=kk")
    busy = second.post("/generate")
    assert busy.status_code == 503
    assert 0 < int(busy.headers["Retry-After"]) <= 60
    assert '<html lang="kk">' in text_of(busy)
    assert count(session_factory, Source) == 1
    # A forged post (no CSRF token) takes nothing from the budget and runs no Argon2id.
    assert second.client.post("/generate").status_code == 400


def test_host_slots_are_shared_between_processes_and_freed_when_a_holder_dies(
    tmp_path: Path,
) -> None:
    slots = HostSlots(tmp_path / "run", 2)
    holder = _hold_slots(tmp_path / "run", 2)
    try:
        with pytest.raises(Busy), slots.slot():
            pass
    finally:
        holder.kill()
        holder.wait()
    # The kernel released the dead holder's locks: both slots are free again.
    with ExitStack() as held:
        held.enter_context(slots.slot())
        held.enter_context(slots.slot())
        with pytest.raises(Busy), slots.slot():
            pass


def test_logins_past_the_host_slots_are_busy_across_processes(
    make_app: AppFactory, config: Config, session_factory: sessionmaker[Session]
) -> None:
    app = make_app(logins_in_flight=1)
    browser = Browser(app)
    codename = browser.new_source()
    again = Browser(app)
    again.get("/")
    holder = _hold_slots(config.run_dir / "argon2", 1)
    try:
        busy = again.login(codename)
        assert busy.status_code == 503
        assert "Many people are using this site right now" in text_of(busy)
    finally:
        holder.kill()
        holder.wait()
    assert again.login(codename).headers["Location"] == "/replies"


def _hold_slots(directory: Path, slots: int) -> subprocess.Popen[bytes]:
    """A second process that takes ``slots`` slots and holds them until killed."""
    code = (
        "import sys, time\n"
        "from contextlib import ExitStack\n"
        "from pathlib import Path\n"
        "from tipbox.source.budget import Busy, HostSlots, PageCache\n"
        "slots = HostSlots(Path(sys.argv[1]), int(sys.argv[2]))\n"
        "with ExitStack() as stack:\n"
        "    for _ in range(int(sys.argv[2])):\n"
        "        stack.enter_context(slots.slot())\n"
        "    print('held', flush=True)\n"
        "    time.sleep(600)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(directory), str(slots)], stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    assert process.stdout.readline() == b"held\n"
    return process


# --- room for files ----------------------------------------------------------------------------


def test_below_the_disk_floor_files_are_refused_before_a_byte_and_messages_still_work(
    make_app: AppFactory, config: Config, session_factory: sessionmaker[Session]
) -> None:
    app = make_app(min_free_disk_bytes=2**62)
    browser = Browser(app)
    browser.new_source()
    form = text_of(browser.get("/submit"))
    assert "storage is nearly full" in form
    assert 'type="file"' not in form
    refused = browser.submit("with a file", [(b"z" * (100 * KIB), "big.bin")])
    assert refused.status_code == 507
    assert "storage is nearly full" in text_of(refused)
    assert count(session_factory, Item) == 0
    assert files_under(config.blob_dir) == []
    assert browser.submit("just words").status_code == 303
    assert count(session_factory, Item) == 1


def test_a_source_storage_cap_lowers_the_file_limit_then_refuses_files(
    make_app: AppFactory, config: Config, session_factory: sessionmaker[Session]
) -> None:
    app = make_app(source_storage_cap_bytes=300 * KIB, min_free_disk_bytes=0)
    browser = Browser(app)
    browser.new_source()
    assert "each at most 300 KB" in text_of(browser.get("/submit"))
    assert browser.submit("", [(b"a" * (150 * KIB), "a.bin")]).status_code == 303
    used = _blob_bytes(session_factory)
    assert used > 150 * KIB
    page = text_of(browser.get("/submit"))
    assert "each at most" in page
    assert "each at most 300 KB" not in page
    refused = browser.submit("", [(b"b" * (200 * KIB), "b.bin")])
    assert refused.status_code == 507
    assert "as many files as this newsroom can store for one person" in text_of(refused)
    assert _blob_bytes(session_factory) == used
    assert browser.submit("words are still welcome").status_code == 303
    # Another source has its own cap.
    other = Browser(app)
    other.new_source()
    assert other.submit("", [(b"c" * (200 * KIB), "c.bin")]).status_code == 303


def _blob_bytes(factory: sessionmaker[Session]) -> int:
    with factory() as db:
        return sum(db.scalars(select(Item.blob_size)))


# --- a filled file system ----------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 6 MiB tmpfs, mounted for the test (root only; required in CI)."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        reason = f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.parametrize("floor", [1 * MIB, 0], ids=["with-floor", "no-floor"])
def test_a_filled_file_system_refuses_files_cleanly_and_loses_nothing(
    make_app: AppFactory,
    config: Config,
    instance: InitResult,
    session_factory: sessionmaker[Session],
    small_disk: Path,
    floor: int,
) -> None:
    blobs = small_disk / "blobs"
    app = make_app(blob_dir=blobs, min_free_disk_bytes=floor, submissions_per_hour=0)
    browser = Browser(app)
    browser.new_source()
    sent: dict[str, bytes] = {}
    answers = []
    for number in range(12):
        content = os.urandom(700 * KIB)
        response = browser.submit(f"note {number}", [(content, f"part-{number}.bin")])
        answers.append(response.status_code)
        if response.status_code == 303:
            sent[f"part-{number}.bin"] = content
            sent[f"message {number}"] = f"note {number}".encode()
        else:
            assert response.status_code == 507, text_of(response)
            assert "storage is nearly full" in text_of(response)
    assert 303 in answers
    assert 507 in answers
    assert _temp_files(blobs) == []
    if floor:
        # The floor kept room: words still go through.
        assert browser.submit("still talking").status_code == 303
        sent["message last"] = b"still talking"
    # Every acknowledged item is whole and readable.
    assert _read_everything(session_factory, config, instance, blobs) == sent


def _read_everything(
    factory: sessionmaker[Session], config: Config, instance: InitResult, blobs: Path
) -> dict[str, bytes]:
    """Every message and file, opened with the newsroom key: {name or "message N": bytes}."""
    store = FilesystemBlobStore(blobs)
    opened: dict[str, bytes] = {}
    with factory() as db:
        identity = directory.identity_public(db)
        admin = db.scalars(select(Journalist).where(Journalist.username == "admin")).one()
        unlocked = unlock_journalist(db, identity, admin, instance.admin.passphrase)
        seed = keyring.granted_seed(
            db, identity, unlocked.keypair, Role.NEWSROOM, instance.newsroom.key_id
        )
        newsroom = keypair_from_seed(Role.NEWSROOM, seed)
        rows = db.execute(
            select(Item, Source.public_id, Wrap.wrap)
            .join(Source, Item.source_id == Source.id)
            .join(Wrap, Wrap.item_id == Item.id)
            .where(Wrap.key_id == newsroom.key_id)
            .order_by(Item.seq)
        ).all()
        for item, source_id, wrap in rows:
            key = envelope.unwrap_key(wrap, newsroom.x25519_private)
            ad = envelope.additional_data(item.kind, source_id, item.public_id)
            meta = envelope.open_meta(key, ad, item.sealed_meta)
            with store.open(item.blob_id) as blob:
                content = b"".join(envelope.decrypt_body(key, ad, blob, meta.size))
            if meta.name:
                opened[meta.name] = content
            else:
                label = content.decode().removeprefix("note ")
                opened["message last" if label == "still talking" else f"message {label}"] = content
    return opened


def test_a_full_budget_refuses_codename_posts_first_in_each_source_language(
    app: Any, session_factory: sessionmaker[Session]
) -> None:
    budget = state_of(app).budget
    kazakh, russian = Browser(app), Browser(app)
    kazakh.get("/?l=kk")
    russian.get("/?l=ru")
    for _ in range(budget.slots):
        assert budget.semaphore.acquire(blocking=False)
    try:
        pages = [browser.post("/generate") for browser in (kazakh, russian, kazakh, russian)]
    finally:
        for _ in range(budget.slots):
            budget.semaphore.release()
    assert [page.status_code for page in pages] == [503] * 4
    assert all(page.headers["Retry-After"] == "5" for page in pages)
    assert ['<html lang="kk">' in text_of(page) for page in pages] == [True, False, True, False]
    assert ['<html lang="ru">' in text_of(page) for page in pages] == [False, True, False, True]
    assert count(session_factory, Source) == 0


def test_the_busy_page_cache_keeps_pages_by_the_key_they_were_rendered_for() -> None:
    cache = PageCache(ttl=60)
    rendered: list[str] = []

    def render(language: str) -> Callable[[], tuple[tuple[str, str], str]]:
        def make() -> tuple[tuple[str, str], str]:
            rendered.append(language)
            return ("login", language), f"page in {language}"

        return make

    assert cache.page(("login", "ru"), render("ru")) == "page in ru"
    assert cache.page(("login", "ru"), render("ru")) == "page in ru"
    # Asked for kk, rendered in en (kk not offered): kept as en, so kk renders again.
    assert cache.page(("login", "kk"), render("en")) == "page in en"
    assert cache.page(("login", "kk"), render("en")) == "page in en"
    assert cache.page(("login", "en"), render("en")) == "page in en"
    assert rendered == ["ru", "en", "en"]
    stale = PageCache(ttl=-1)
    stale.put(("login", "ru"), "old")
    assert stale.get(("login", "ru")) is None
