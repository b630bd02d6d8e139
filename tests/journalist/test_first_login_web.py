"""A new journalist's first login in the browser (no JavaScript): temporary passphrase,
a new passphrase and key, the wait for an admin to confirm the key's fingerprint, then the
inbox. Until the confirmation the session sees no content at all."""

from __future__ import annotations

import re

import pyotp
from sqlalchemy import select
from sqlalchemy.orm import Session

from tipbox import directory, journalists
from tipbox.accounts import unlock_journalist
from tipbox.config import Config
from tipbox.instance import InitResult
from tipbox.models import Journalist
from tipbox.web import TipboxFlask

from .test_auth_web import FAILED, Browser, app, fresh_code, instance  # noqa: F401

FINGERPRINT = re.compile(r"<code>((?:[0-9A-F]{4} ){9}[0-9A-F]{4})</code>")


def _admin(db: Session, instance: InitResult) -> journalists.Admin:  # noqa: F811
    identity = directory.identity_public(db)
    row = db.scalars(select(Journalist).where(Journalist.username == "admin")).one()
    unlocked = unlock_journalist(db, identity, row, instance.admin.passphrase)
    return journalists.Admin(row.id, unlocked.keypair, identity)


def test_first_login_then_confirmation(
    app: TipboxFlask,  # noqa: F811
    db: Session,
    config: Config,
    instance: InitResult,  # noqa: F811
) -> None:
    admin = _admin(db, instance)
    temporary = journalists.add_journalist(db, config, admin, "dana", is_admin=False)
    db.commit()
    browser = Browser(app, db)
    code = fresh_code(db, "dana", temporary.totp_secret)
    response = browser.login("dana", temporary.passphrase, code)
    assert response.headers["Location"] == "/account"
    # Nothing but the account page until the passphrase and key are replaced.
    assert browser.get("/").headers["Location"] == "/account"
    assert browser.get("/awaiting").headers["Location"] == "/account"
    wrong = browser.post("/account/passphrase", {"passphrase": "not it"})
    assert "The passphrase was not right" in wrong.get_data(as_text=True)

    done = browser.post("/account/passphrase", {"passphrase": temporary.passphrase})
    html = done.get_data(as_text=True)
    assert done.status_code == 200
    new_passphrase = re.search(r'<p class="passphrase" lang="en">([^<]+)</p>', html)
    assert new_passphrase is not None
    shown = FINGERPRINT.search(html)
    assert shown is not None
    # Awaiting confirmation: every page leads to the fingerprint, none to content.
    for path in ("/", "/sources/" + "ab" * 16, "/admin/audit", "/admin/journalists"):
        assert browser.get(path).headers["Location"] == "/awaiting", path
    waiting = browser.get("/awaiting").get_data(as_text=True)
    assert shown.group(1) in waiting
    # Meanwhile a new two-factor secret: the admin knew the old one.
    account = browser.get("/account").get_data(as_text=True)
    assert "change_passphrase" not in account
    assert 'action="/account/passphrase"' not in account
    begun = browser.post("/account/totp/begin").get_data(as_text=True)
    secret = re.search(r'<code class="totp-secret">([A-Z2-7]+)</code>', begun)
    assert secret is not None
    committed = browser.post(
        "/account/totp/commit",
        {"passphrase": new_passphrase.group(1), "code": pyotp.TOTP(secret.group(1)).now()},
    )
    assert "Your new two-factor code is set up." in committed.get_data(as_text=True)
    assert browser.post("/account/logout-others").headers["Location"] == "/awaiting"

    # The temporary passphrase is dead; the admin confirms the fingerprint read out.
    other = Browser(app, db)
    stale = other.login("dana", temporary.passphrase, fresh_code(db, "dana", temporary.totp_secret))
    assert FAILED in stale.get_data(as_text=True)
    journalists.confirm_pending_key(db, admin, "dana", shown.group(1))
    db.commit()
    assert browser.get("/").status_code == 200
    assert browser.get("/awaiting").headers["Location"] == "/"
    # And the new passphrase works for a fresh login, with the new secret only.
    stale_code = fresh_code(db, "dana", temporary.totp_secret)
    refused = Browser(app, db).login("dana", new_passphrase.group(1), stale_code)
    assert FAILED in refused.get_data(as_text=True)
    again = Browser(app, db)
    ok = again.login("dana", new_passphrase.group(1), fresh_code(db, "dana", secret.group(1)))
    assert ok.headers["Location"] == "/"


def test_an_admins_first_login_needs_no_confirmation(
    app: TipboxFlask,  # noqa: F811
    db: Session,
    config: Config,
    instance: InitResult,  # noqa: F811
) -> None:
    temporary = journalists.add_journalist(db, config, _admin(db, instance), "erlan", is_admin=True)
    db.commit()
    browser = Browser(app, db)
    browser.login("erlan", temporary.passphrase, fresh_code(db, "erlan", temporary.totp_secret))
    done = browser.post("/account/passphrase", {"passphrase": temporary.passphrase})
    assert FINGERPRINT.search(done.get_data(as_text=True)) is None
    assert browser.get("/").status_code == 200
    assert browser.get("/admin/audit").status_code == 200
