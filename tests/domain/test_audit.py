"""The audit log records who did what per day, and refuses anything that could carry
source content or source ids."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tipbox import audit
from tipbox.config import Config
from tipbox.models import AuditEvent, today

from .opened import OpenedInstance, open_instance


@pytest.fixture
def desk(db: Session, config: Config) -> OpenedInstance:
    return open_instance(db, config)


def test_events_are_recorded_per_day_and_listed_newest_first(
    db: Session, desk: OpenedInstance
) -> None:
    audit.record(db, desk.admin.id, "journalist.add", username="bob", admin=False)
    audit.record(db, None, "login.failure", via="web", username="mallory")
    audit.record(db, desk.admin.id, "key.rotate", key="3F2A9B01", previous="0C1D2E3F")
    db.commit()
    rows = db.scalars(select(AuditEvent)).all()
    assert {row.day for row in rows} == {today()}
    listed = audit.events(db)
    assert [event.action for event in listed] == ["key.rotate", "login.failure", "journalist.add"]
    assert listed[0].actor == "admin"
    assert listed[1].actor is None
    assert listed[2].detail == {"username": "bob", "admin": False}
    assert [e.action for e in audit.events(db, action_prefix="journalist.")] == ["journalist.add"]
    assert [e.action for e in audit.events(db, actor_id=desk.admin.id)] == [
        "key.rotate",
        "journalist.add",
    ]
    assert audit.events(db, since=date(9999, 1, 1)) == []


@pytest.mark.parametrize(
    ("action", "detail"),
    [
        ("source.read", {}),  # not an action the log knows
        ("source.delete", {"source": "ab" * 16}),  # a source id: not a detail it carries
        ("journalist.add", {"username": "a message with spaces"}),
        ("journalist.add", {"username": "x" * 65}),
        ("settings.change", {"fields": "name\ndescription"}),
    ],
)
def test_what_the_log_refuses(
    db: Session, desk: OpenedInstance, action: str, detail: dict[str, str]
) -> None:
    with pytest.raises(ValueError, match=r"audit action|does not record|short token"):
        audit.record(db, desk.admin.id, action, **detail)
