"""The admin pages through the journalist app, no JavaScript: journalists (add, first
login, confirm the key, role, deactivate, reset, remove) and keys (rotate, re-wrap with
progress, retire), each checked against what the database then holds."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tipbox import directory
from tipbox.config import Config
from tipbox.crypto.directory import Status
from tipbox.instance import InitResult
from tipbox.models import DirectoryEntry, Grant, Journalist, NewsroomKey, Wrap
from tipbox.storage import FilesystemBlobStore
from tipbox.web import TipboxFlask

from .test_auth_web import Browser, app, fresh_code, instance, logged_in  # noqa: F401
from .test_first_login_web import FINGERPRINT
from .test_inbox_web import page, submit

SECRET = re.compile(r'<code class="totp-secret">([A-Z2-7]+)</code>')
PASSPHRASE = re.compile(r'<dd class="passphrase" lang="en">([^<]+)</dd>')


def _row(db: Session, username: str) -> Journalist:
    query = select(Journalist).where(Journalist.username == username)
    return db.scalars(query.execution_options(populate_existing=True)).one()


def test_journalists_lifecycle(
    app: TipboxFlask,  # noqa: F811
    db: Session,
    instance: InitResult,  # noqa: F811
) -> None:
    admin = logged_in(app, db, instance)
    assert "admin" in page(admin, "/admin/journalists")
    added = admin.post("/admin/journalists", {"username": "dana"})
    html = added.get_data(as_text=True)
    assert added.status_code == 200
    secret, passphrase = SECRET.search(html), PASSPHRASE.search(html)
    assert secret is not None
    assert passphrase is not None
    assert "<svg" in html
    taken = admin.post("/admin/journalists", {"username": "dana"})
    assert taken.status_code == 400
    assert "That username is taken" in taken.get_data(as_text=True)
    assert admin.post("/admin/journalists", {"username": "no spaces please"}).status_code == 400

    # First login, then the admin confirms the fingerprint the journalist reads out.
    dana = Browser(app, db)
    dana.login("dana", passphrase.group(1), fresh_code(db, "dana", secret.group(1)))
    done = dana.post("/account/passphrase", {"passphrase": passphrase.group(1)})
    shown = FINGERPRINT.search(done.get_data(as_text=True))
    assert shown is not None
    listing = page(admin, "/admin/journalists")
    assert "new key awaits confirmation" in listing
    wrong = admin.post("/admin/journalists/dana/confirm-key", {"fingerprint": "0000"})
    assert wrong.status_code == 400
    assert "That is not the fingerprint of the new key." in wrong.get_data(as_text=True)
    right = admin.post("/admin/journalists/dana/confirm-key", {"fingerprint": shown.group(1)})
    assert right.headers["Location"] == "/admin/journalists?done=confirm"
    assert dana.get("/").status_code == 200
    key_id = _row(db, "dana").key_id
    assert key_id is not None
    assert db.scalars(select(Grant).where(Grant.grantee_key_id == key_id)).all()

    # Role, deactivate, activate.
    admin.post("/admin/journalists/dana/role", {"role": "admin"})
    assert _row(db, "dana").is_admin
    assert admin.post("/admin/journalists/dana/role", {"role": "boss"}).status_code == 400
    admin.post("/admin/journalists/dana/role", {"role": "journalist"})
    admin.post("/admin/journalists/dana/deactivate")
    assert not _row(db, "dana").is_active
    assert dana.get("/").headers["Location"].startswith("/login")
    admin.post("/admin/journalists/dana/activate")
    assert _row(db, "dana").is_active

    # Reset gives new temporary credentials; remove needs its checkbox.
    reset = admin.post("/admin/journalists/dana/reset")
    assert SECRET.search(reset.get_data(as_text=True)) is not None
    assert _row(db, "dana").key_id != key_id
    assert admin.post("/admin/journalists/dana/remove").status_code == 400
    removed = admin.post("/admin/journalists/dana/remove", {"confirm": "yes"})
    assert removed.headers["Location"] == "/admin/journalists?done=remove"
    assert "Rotate the newsroom key" in page(admin, "/admin/journalists?done=remove")
    row = _row(db, "dana")
    assert row.removed_on is not None
    assert row.key_id is None
    assert db.get(DirectoryEntry, key_id) is None
    # An admin cannot act on their own account.
    assert admin.post("/admin/journalists/admin/deactivate").status_code == 400
    assert admin.post("/admin/journalists/nobody/reset").status_code == 400


def test_keys_rotate_rewrap_retire(
    app: TipboxFlask,  # noqa: F811
    db: Session,
    blob_store: FilesystemBlobStore,
    config: Config,
    instance: InitResult,  # noqa: F811
) -> None:
    admin = logged_in(app, db, instance)
    tips = [submit(db, blob_store, f"before rotation {n}") for n in range(3)]
    old = directory.current_newsroom_key(db, directory.identity_public(db)).key_id
    keys_page = page(admin, "/admin/keys")
    assert instance.newsroom.short_id in keys_page
    assert admin.post("/admin/keys/rotate").status_code == 400
    rotated = admin.post("/admin/keys/rotate", {"confirm": "yes"})
    assert rotated.headers["Location"] == "/admin/keys?done=rotate"
    assert "3 wraps are still to retiring keys." in page(admin, "/admin/keys")
    # Too early to retire: the grace period has just begun.
    too_early = admin.post(f"/admin/keys/{instance.newsroom.short_id}/retire")
    assert too_early.status_code == 409
    progress = admin.post("/admin/keys/rewrap").get_data(as_text=True)
    assert "3 wraps moved to the current key in this step." in progress
    assert "Nothing is left to move." in progress
    assert db.scalars(select(Wrap).where(Wrap.key_id == old)).all() == []
    # Once the grace period is over the sweep runs and the key can be retired.
    ended = datetime.now(UTC) - timedelta(seconds=config.key_grace_seconds + 60)
    db.execute(update(NewsroomKey).where(NewsroomKey.key_id == old).values(retiring_since=ended))
    db.commit()
    assert "it can be retired" in admin.post("/admin/keys/rewrap").get_data(as_text=True)
    retired = admin.post(f"/admin/keys/{instance.newsroom.short_id}/retire")
    assert retired.headers["Location"] == "/admin/keys?done=retire"
    db.rollback()
    assert db.get(DirectoryEntry, old).status == int(Status.RETIRED)  # type: ignore[union-attr]
    assert db.scalars(select(Grant).where(Grant.key_id == old)).all() == []
    # Everything sent before the rotation still reads.
    for number, tip in enumerate(tips):
        assert f"before rotation {number}" in page(admin, tip.path)
