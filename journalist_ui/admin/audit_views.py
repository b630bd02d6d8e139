"""The audit log page: newest first, filtered by kind of action, journalist and day."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, render_template, request
from werkzeug.exceptions import BadRequest

from tipbox import audit, triage
from tipbox.db import transaction

from ..readers import me
from ..state import state

PAGE_SIZE = 100
# The kinds of action the page filters by: each prefix of the action names in tipbox.audit.
KINDS = tuple(dict.fromkeys(action.split(".")[0] + "." for action in audit.ACTIONS))


def _filters() -> tuple[str, str, date | None, int]:
    kind = request.args.get("kind", "")
    actor = request.args.get("actor", "")
    since_text = request.args.get("since", "")
    page = request.args.get("page", "1") or "1"
    if kind not in ("", *KINDS) or not page.isdigit() or not 1 <= int(page) <= 100_000:
        raise BadRequest()
    try:
        since = date.fromisoformat(since_text) if since_text else None
    except ValueError:
        raise BadRequest() from None
    return kind, actor, since, int(page)


def audit_log() -> str:
    """The audit log."""
    kind, actor, since, page = _filters()
    with transaction(state().db) as db:
        journalists = triage.active_journalists(db)
        by_name = {journalist.username: journalist.id for journalist in journalists}
        if actor and actor not in by_name:
            raise BadRequest()
        events = audit.events(
            db,
            action_prefix=kind,
            actor_id=by_name.get(actor),
            since=since,
            limit=PAGE_SIZE + 1,
            offset=(page - 1) * PAGE_SIZE,
        )
    return render_template(
        "journalist/admin/audit.html",
        me=me(),
        events=events[:PAGE_SIZE],
        has_next=len(events) > PAGE_SIZE,
        page=page,
        kinds=KINDS,
        kind=kind,
        actor=actor,
        since=since.isoformat() if since else "",
        journalists=journalists,
    )


def register_audit_views(admin: Blueprint) -> None:
    """Add the audit log page to the admin blueprint."""
    admin.add_url_rule("/audit", view_func=audit_log, methods=["GET"])
