"""The audit log: who did what, on which day. Never source content, never source ids.

Every admin action, key event, login (success and failure) and deletion calls ``record``
in the transaction that does it, so the event and the change commit or roll back
together. An event names its actor (a journalist, or None for the command line before an
admin is known and for a failed login of an unknown name), an action from ``ACTIONS`` and a
few details: usernames, key short ids, counts. ``record`` refuses anything else, so a
careless caller cannot put a source's id, a designation or a message into the log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from tipbox.models import AuditEvent, Journalist, today

# Every action the log knows. A new one is added here, with the details it may carry.
ACTIONS: Final[dict[str, frozenset[str]]] = {
    "login.success": frozenset({"via"}),
    "login.failure": frozenset({"via", "username"}),
    "journalist.add": frozenset({"username", "admin"}),
    "journalist.reset": frozenset({"username"}),
    "journalist.first_login": frozenset({"username"}),
    "journalist.key_confirmed": frozenset({"username", "key"}),
    "journalist.role": frozenset({"username", "admin"}),
    "journalist.deactivate": frozenset({"username"}),
    "journalist.activate": frozenset({"username"}),
    "journalist.remove": frozenset({"username"}),
    "onion.device_add": frozenset({"username", "device"}),
    "onion.device_revoke": frozenset({"username", "device"}),
    "key.rotate": frozenset({"key", "previous"}),
    "key.rewrap": frozenset({"key", "wraps"}),
    "key.retire": frozenset({"key"}),
    "key.recover": frozenset({"admins", "recovery_key"}),
    "key.metadata_created": frozenset({"key"}),
    "settings.change": frozenset({"fields"}),
    "retention.run": frozenset({"sources", "days"}),
    "source.delete": frozenset({"count"}),
    "item.delete": frozenset({"count"}),
    "spam.purge": frozenset({"sources", "days"}),
    # `tipbox backup` and `tipbox restore` (tipbox.backup, tipbox.restore): counts only. A
    # restore is recorded in the restored database, an archive's making in the one it is of.
    "backup.make": frozenset({"rows", "blobs", "onion_keys"}),
    "backup.restore": frozenset({"rows", "blobs"}),
    "backup.onion_restore": frozenset({"onion_keys"}),
    # `tipbox fsck --repair` (tipbox.fsck): what it removed, counts only.
    "fsck.repair": frozenset({"orphan_blobs", "temp_files", "retired_wraps", "unreadable_items"}),
}
# Usernames and key short ids are short, printable and have no spaces; counts are ints.
_SAFE_TEXT: Final = re.compile(r"[\w.@+-]{1,64}")
Detail = str | int | bool


def record(session: Session, actor_id: int | None, action: str, **detail: Detail) -> None:
    """Add one event for today. ``ValueError`` for an unknown action, a detail the action
    does not carry, or a text detail that is not a short token (a username, a key id)."""
    allowed = ACTIONS.get(action)
    if allowed is None:
        raise ValueError(f"unknown audit action {action!r}")
    for key, value in detail.items():
        if key not in allowed:
            raise ValueError(f"{action} does not record {key!r}")
        if isinstance(value, str) and not _SAFE_TEXT.fullmatch(value):
            raise ValueError(f"{action}.{key} must be a short token")
    session.add(AuditEvent(day=today(), actor_journalist_id=actor_id, action=action, detail=detail))
    session.flush()


@dataclass(frozen=True)
class Event:
    """An event as the admin page lists it."""

    day: date
    actor: str | None
    action: str
    detail: dict[str, Detail]


def events(
    session: Session,
    *,
    action_prefix: str = "",
    actor_id: int | None = None,
    since: date | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[Event]:
    """Events, newest first, filtered by action prefix (``journalist.``), actor and day."""
    query = (
        select(AuditEvent, Journalist.username)
        .outerjoin(Journalist, Journalist.id == AuditEvent.actor_journalist_id)
        .order_by(AuditEvent.day.desc(), AuditEvent.id.desc())
    )
    if action_prefix:
        query = query.where(AuditEvent.action.startswith(action_prefix, autoescape=True))
    if actor_id is not None:
        query = query.where(AuditEvent.actor_journalist_id == actor_id)
    if since is not None:
        query = query.where(AuditEvent.day >= since)
    rows = session.execute(query.offset(offset).limit(limit)).all()
    return [Event(row.day, username, row.action, dict(row.detail)) for row, username in rows]
