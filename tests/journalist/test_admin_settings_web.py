"""The admin's settings page, no JavaScript: every field saved at once or none, each
refusal shown by its field, and the logo uploaded (re-encoded) and removed."""

from __future__ import annotations

import io

from PIL import Image, PngImagePlugin
from sqlalchemy.orm import Session
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from journalist_ui.request import JournalistRequest
from tipbox import settings
from tipbox.config import MIB, Config
from tipbox.instance import InitResult
from tipbox.web import TipboxFlask

from .test_auth_web import Browser, app, instance, logged_in  # noqa: F401
from .test_inbox_web import page

VALID = {
    "name": "Almaty Courier",
    "description": "Tips about <b>anything</b>.\r\nSecond line.",
    "languages": ["ru", "kk"],
    "max_message_chars": "5000",
    "max_files": "2",
    "max_file_mib": "10",
    "files_accepted": "1",
    "retention_days": "30",
}


def _png_with_text() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "secret photographer")
    out = io.BytesIO()
    Image.new("RGB", (64, 32), (10, 20, 30)).save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def test_settings_are_saved_together_or_not_at_all(
    app: TipboxFlask,  # noqa: F811
    db: Session,
    config: Config,
    instance: InitResult,  # noqa: F811
) -> None:
    admin = logged_in(app, db, instance)
    assert 'value="Web Times"' in page(admin, "/admin/settings")
    saved = admin.post("/admin/settings", VALID)
    assert saved.headers["Location"] == "/admin/settings?done=saved"
    db.rollback()
    now = settings.read(db, config)
    assert (now.name, now.languages, now.retention_days) == ("Almaty Courier", ("ru", "kk"), 30)
    assert now.description == "Tips about <b>anything</b>.\nSecond line."
    assert (now.limits.max_message_chars, now.limits.max_files) == (5000, 2)
    assert now.limits.max_file_bytes == 10 * MIB
    html = page(admin, "/admin/settings")
    assert "Tips about &lt;b&gt;anything&lt;/b&gt;." in html
    # One bad field: nothing stored, the reason beside it.
    refused = admin.post("/admin/settings", {**VALID, "name": "", "max_files": "lots"})
    assert refused.status_code == 400
    assert "must be a whole number" in refused.get_data(as_text=True)
    bad_name = admin.post("/admin/settings", {**VALID, "name": "a\u202eb"})
    assert "contains a control, direction or invisible character" in bad_name.get_data(as_text=True)
    too_many = admin.post("/admin/settings", {**VALID, "max_files": "1000"})
    assert "what this server allows" in too_many.get_data(as_text=True)
    ceiling_mib = config.max_file_bytes // MIB
    too_big = admin.post("/admin/settings", {**VALID, "max_file_mib": str(ceiling_mib + 1)})
    assert f"must be at most {ceiling_mib}, what this server allows" in too_big.get_data(
        as_text=True
    )
    db.rollback()
    assert settings.read(db, config).name == "Almaty Courier"
    # Files off and retention off.
    off = {key: value for key, value in VALID.items() if key != "files_accepted"}
    admin.post("/admin/settings", {**off, "retention_off": "1"})
    db.rollback()
    now = settings.read(db, config)
    assert (now.files_accepted, now.retention_days) == (False, None)


def test_the_logo_is_re_encoded_and_can_be_removed(
    app: TipboxFlask,  # noqa: F811
    db: Session,
    config: Config,
    instance: InitResult,  # noqa: F811
) -> None:
    admin = logged_in(app, db, instance)
    page(admin, "/admin/settings")
    upload = {"logo": (io.BytesIO(_png_with_text()), "logo.png", "image/png")}
    response = admin.post("/admin/settings/logo", upload)
    assert response.headers["Location"] == "/admin/settings?done=saved"
    db.rollback()
    logo_hash = settings.read(db, config).logo_hash
    assert logo_hash is not None
    stored = settings.logo_png(db, logo_hash)
    assert stored is not None
    assert b"secret photographer" not in stored
    assert "A logo is set." in page(admin, "/admin/settings")
    not_image = {"logo": (io.BytesIO(b"GIF89a not really"), "x.gif", "image/gif")}
    refused = admin.post("/admin/settings/logo", not_image)
    assert refused.status_code == 400
    assert "could not be read as an image" in refused.get_data(as_text=True)
    admin.post("/admin/settings/logo/remove")
    db.rollback()
    assert settings.read(db, config).logo_hash is None


def test_an_uploaded_logo_stays_in_memory() -> None:
    """Werkzeug spools uploads over 500 KB to a temporary file; this app keeps them in
    memory, so a logo's metadata never reaches a disk before it is re-encoded."""
    upload = b"\x89PNG" + bytes(900 * 1024)
    builder = EnvironBuilder(
        method="POST", data={"logo": (io.BytesIO(upload), "logo.png", "image/png")}
    )
    try:
        request = JournalistRequest(builder.get_environ())
        stream = request.files["logo"].stream
        assert isinstance(stream, io.BytesIO)
        assert stream.getvalue() == upload
        plain = Request(
            EnvironBuilder(
                method="POST", data={"logo": (io.BytesIO(upload), "logo.png", "image/png")}
            ).get_environ()
        )
        assert not isinstance(plain.files["logo"].stream, io.BytesIO)  # what it replaces
    finally:
        builder.close()
