"""The submit form and its post: server path (no JavaScript) or browser path (ciphertext).

``GET /submit`` issues ``max_files + 1`` fresh item ids into the session and the form (the
browser script seals its items under them). ``POST /submit`` hands the uploads the request
class made to one domain function; a refusal shows the form again, with why, in the
source's language, and nothing stored.
"""

from __future__ import annotations

import secrets
from dataclasses import replace

from flask import Blueprint, Response, redirect, render_template, request, url_for
from sqlalchemy.orm import Session

from tipbox import capacity, directory
from tipbox.crypto.keys import PublicKeys
from tipbox.db import transaction
from tipbox.models import DirectoryEntry
from tipbox.submissions import (
    Receipt,
    SubmissionRejected,
    accept_browser_submission,
    accept_server_submission,
    sent_count,
)

from .. import session as source_session
from ..access import needs
from ..floods import limits_for_form, limits_for_upload
from ..forms import MANIFEST_FIELD, MESSAGE_FIELD, is_browser_mode, unexpected_fields
from ..session import ISSUED_PAGES_KEPT, SourceSession
from ..state import state
from ..texts import refusal_text, size_text
from ..upload import browser_parts, discard_uploads, server_uploads

bp = Blueprint("submit", __name__)
ITEM_ID_BYTES = 16


def _newsroom_entry(db: Session, identity: PublicKeys) -> DirectoryEntry:
    """The current newsroom key's signed entry, as the browser script checks it."""
    entry = directory.current_newsroom_key(db, identity)  # verified against the identity
    row = db.get(DirectoryEntry, entry.key_id)
    assert row is not None
    return row


def submit_page(*, refused: str | None = None, status: int = 200) -> tuple[str, int]:
    """The submit form with freshly issued item ids; with why, after a refusal."""
    st = state()
    current = source_session.current()
    assert current is not None
    assert current.confirmed
    # The receipt survives reloads of /submit?sent=1 (the browser script's request follows
    # the 303 once before the page itself does); any other view of the form clears it.
    receipt = current.receipt if request.args.get("sent") == "1" and not refused else None
    with transaction(st.db) as db:
        limits = limits_for_form(db, current)
        fresh = [secrets.token_hex(ITEM_ID_BYTES) for _ in range(limits.max_files + 1)]
        entry = _newsroom_entry(db, st.identity)
        total = sent_count(db, current.public_id)
        issued = (current.issued + tuple(fresh))[-ISSUED_PAGES_KEPT * len(fresh) :]
        source_session.save(db, replace(current, issued=issued, receipt=receipt))
    page = render_template(
        "source/submit.html",
        source_id=current.public_id_hex,
        item_ids=",".join(fresh),
        identity_ed25519=(st.identity.ed25519 or b"").hex(),
        newsroom_entry=entry.entry.hex(),
        newsroom_signature=entry.signature.hex(),
        limits=limits,
        max_file_size=size_text(limits.max_file_bytes),
        script_integrity=st.script_integrity,
        receipt=receipt,
        total_sent=total,
        refused=None if refused is None else refusal_text(refused, limits),
    )
    return page, status


@bp.get("/submit")
@needs("confirmed")
def submit_form() -> tuple[str, int]:
    """The form; after a submission (``?sent=1``), first the confirmation."""
    return submit_page()


@bp.post("/submit")
@needs("confirmed")
def submit() -> Response | tuple[str, int]:
    """Store one submission, then 303 to the confirmation; a refusal stores nothing."""
    current = source_session.current()
    assert current is not None
    try:
        with transaction(state().db) as db:
            receipt = _accept(db, current)
            used = {item_id.hex() for item_id in receipt.item_ids}
            kept = tuple(item_id for item_id in current.issued if item_id not in used)
            counts = (receipt.messages, receipt.files)
            source_session.save(db, replace(current, issued=kept, receipt=counts))
    except SubmissionRejected as refusal:
        discard_uploads(request)
        return submit_page(refused=refusal.reason, status=refusal.status)
    except OSError as error:
        # The disk filled up while the message was written (tipbox.capacity).
        if not capacity.is_out_of_space(error):
            raise
        discard_uploads(request)
        return submit_page(refused=capacity.DISK_FULL, status=507)
    return redirect(url_for("submit.submit_form", sent="1"), code=303)  # type: ignore[return-value]


def _accept(db: Session, current: SourceSession) -> Receipt:
    """Call the domain function for the path the post took (parse, then one call)."""
    st = state()
    limits = limits_for_upload(current)
    browser = is_browser_mode(request.form)
    if unexpected_fields(request.form, request.files, browser=browser):
        raise SubmissionRejected("unexpected_part")
    if browser:
        return accept_browser_submission(
            db,
            st.store,
            st.identity,
            current.public_id,
            request.form.get(MANIFEST_FIELD, ""),
            browser_parts(request),
            [bytes.fromhex(item_id) for item_id in current.issued],
            limits,
        )
    return accept_server_submission(
        db,
        st.store,
        st.identity,
        current.public_id,
        request.form.get(MESSAGE_FIELD, ""),
        server_uploads(request),
        limits,
    )
