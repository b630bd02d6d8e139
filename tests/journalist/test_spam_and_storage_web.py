"""Spam tools and storage use in the journalist app, no JavaScript: "delete all spam" with
its confirmation, the automatic purge's setting, and the inbox's storage line and sizes.

Real instance and database (SQLite, and PostgreSQL when configured); sources submit
through the real server path.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session

import journalist_ui
from tipbox import settings
from tipbox.config import Config
from tipbox.instance import InitResult
from tipbox.models import AuditEvent, Source
from tipbox.storage import FilesystemBlobStore
from tipbox.web import TipboxFlask

from .test_admin_settings_web import VALID
from .test_auth_web import Browser, app, instance, logged_in, state_of  # noqa: F401
from .test_inbox_web import page, submit


def _mark_spam(browser: Browser, path: str) -> None:
    assert browser.post(f"{path}/status", {"status": "spam"}).status_code == 303


def test_delete_all_spam_needs_its_box_ticked_and_spares_the_rest(
    app: TipboxFlask,  # noqa: F811
    db: Session,
    instance: InitResult,  # noqa: F811
    blob_store: FilesystemBlobStore,
) -> None:
    browser = logged_in(app, db, instance)
    ham = submit(db, blob_store, "a real tip")
    junk = [submit(db, blob_store, f"buy pills {n}", {"x.html": b"<a>spam</a>"}) for n in range(3)]
    for tip in junk:
        _mark_spam(browser, tip.path)
    assert "Delete all spam" not in page(browser, "/")
    spam_view = page(browser, "/?status=spam")
    assert "3 sources are marked spam." in spam_view
    refused = browser.post("/spam/delete", {"back": "status=spam"})
    assert refused.status_code == 400
    assert "Tick the box to confirm the deletion." in refused.get_data(as_text=True)
    db.rollback()
    assert len(list(db.scalars(select(Source.id)))) == 4
    done = browser.post("/spam/delete", {"back": "status=spam", "confirm": "yes"})
    assert done.status_code == 303
    assert done.headers["Location"] == "/?done=spam-deleted&status=spam"
    db.rollback()
    assert list(db.scalars(select(Source.public_id))) == [ham.source.public_id]
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "spam.purge")).one()
    assert event.detail == {"sources": 3, "days": 0}
    assert "Every source marked spam was deleted." in page(browser, "/?done=spam-deleted")


def test_the_spam_purge_setting_is_saved_blank_is_off_and_zero_is_refused(
    app: TipboxFlask,  # noqa: F811
    db: Session,
    config: Config,
    instance: InitResult,  # noqa: F811
) -> None:
    admin = logged_in(app, db, instance)
    assert admin.post("/admin/settings", {**VALID, "spam_purge_days": "14"}).status_code == 303
    db.rollback()
    assert settings.read(db, config).spam_purge_days == 14
    assert 'name="spam_purge_days" inputmode="numeric" value="14"' in page(admin, "/admin/settings")
    refused = admin.post("/admin/settings", {**VALID, "spam_purge_days": "0"})
    assert refused.status_code == 400
    assert "must be between 1 and 3650 days, or off" in refused.get_data(as_text=True)
    assert admin.post("/admin/settings", {**VALID, "spam_purge_days": ""}).status_code == 303
    db.rollback()
    assert settings.read(db, config).spam_purge_days is None


def test_the_inbox_shows_storage_use_and_each_source_size(
    app: TipboxFlask,  # noqa: F811
    db: Session,
    config: Config,
    instance: InitResult,  # noqa: F811
    blob_store: FilesystemBlobStore,
) -> None:
    browser = logged_in(app, db, instance)
    submit(db, blob_store, "small")
    submit(db, blob_store, "with a file", {"big.bin": b"b" * 300_000})
    html = page(browser, "/")
    assert "Storage: " in html
    assert " in 3 items; " in html
    assert "free of" in html
    assert "Below the floor" not in html
    sizes = [cell.split("<")[0] for cell in html.split('<td class="size">')[1:]]
    assert len(sizes) == 2
    # The file's blob (300,000 bytes, padded) and a message's few KiB.
    kib = sorted(float(size.split()[0]) for size in sizes if size.endswith("KiB"))
    assert len(kib) == 2
    assert kib[0] < 10 < 290 < kib[1]
    # An app whose floor is above the disk's free space says files are refused.
    full = journalist_ui.create_app(replace(config, min_free_disk_bytes=2**62))
    try:
        browser_full = logged_in(full, db, instance)
        assert "Below the floor" in page(browser_full, "/")
    finally:
        state_of(full).engine.dispose()
