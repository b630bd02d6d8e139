"""Triage through the journalist app: inbox filters, sorts and counts, the source page's
controls, read markers and bulk actions, each by plain form posts (no JavaScript).

Real instance and database (SQLite, and PostgreSQL when configured); sources submit
through the real server path.
"""

from __future__ import annotations

import re
import secrets
from datetime import date
from urllib.parse import urlencode

import pytest

# Test packages import as top-level names at run time; mypy names them tests.browser.
from browser.traces import files_with, postgres_files  # type: ignore[import-not-found]
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from tipbox import audit, sources
from tipbox.config import Config
from tipbox.instance import InitResult
from tipbox.models import SOURCE_STATUS_SPAM, Item, Journalist, Source, SourceTag
from tipbox.storage import FilesystemBlobStore
from tipbox.web import TipboxFlask

from .test_auth_web import Browser, app, fresh_code, instance, logged_in, make_bob  # noqa: F401
from .test_inbox_web import Tip, page, submit

LINK = re.compile(r'class="source-link" href="/sources/([0-9a-f]{32})"')


@pytest.fixture
def browser(app: TipboxFlask, db: Session, instance: InitResult) -> Browser:  # noqa: F811
    return logged_in(app, db, instance)


def listed(browser: Browser, query: str = "") -> list[str]:
    """The source ids the inbox lists for ``query``, in order."""
    return LINK.findall(page(browser, f"/?{query}" if query else "/"))


def hexes(*tips: Tip) -> list[str]:
    return [tip.source.public_id.hex() for tip in tips]


def test_spam_leaves_the_default_inbox_and_status_filters_find_it(
    browser: Browser, db: Session, blob_store: FilesystemBlobStore
) -> None:
    ham, spam = submit(db, blob_store, "ham"), submit(db, blob_store, "spam")
    response = browser.post(f"{spam.path}/status", {"status": "spam"})
    assert response.status_code == 303
    assert listed(browser) == hexes(ham)
    assert listed(browser, "status=spam") == hexes(spam)
    assert sorted(listed(browser, "status=all")) == sorted(hexes(ham, spam))
    assert listed(browser, "status=new") == hexes(ham)
    html = page(browser, "/")
    assert "All but spam</a>\n      (1)" in html
    assert 'status=spam">Spam</a> (1)' in html


def test_star_assignee_and_unread_filters(
    browser: Browser, db: Session, blob_store: FilesystemBlobStore
) -> None:
    one, two, three = (submit(db, blob_store, text) for text in ("1", "2", "3"))
    assert browser.post(f"{one.path}/star", {"starred": "1"}).status_code == 303
    admin_hex = db.scalars(select(Journalist.public_id)).one().hex()
    assert browser.post(f"{two.path}/assignee", {"assignee": admin_hex}).status_code == 303
    assert listed(browser, "starred=1") == hexes(one)
    assert listed(browser, "assignee=me") == hexes(two)
    assert listed(browser, f"assignee={admin_hex}") == hexes(two)
    assert sorted(listed(browser, "assignee=none")) == sorted(hexes(one, three))
    assert listed(browser, "assignee=" + "0" * 32) == []
    # Everything is unread until opened; opening a source marks it read.
    assert sorted(listed(browser, "unread=1")) == sorted(hexes(one, two, three))
    page(browser, three.path)
    assert sorted(listed(browser, "unread=1")) == sorted(hexes(one, two))
    assert browser.post(f"{three.path}/unread").headers["Location"] == "/?done=triage"
    assert three.source.public_id.hex() in listed(browser, "unread=1")
    # Unstar, unassign.
    browser.post(f"{one.path}/star", {"starred": "0"})
    browser.post(f"{two.path}/assignee", {"assignee": ""})
    assert listed(browser, "starred=1") == []
    assert listed(browser, "assignee=me") == []


def test_unread_count_per_journalist(
    app: TipboxFlask,  # noqa: F811
    browser: Browser,
    db: Session,
    blob_store: FilesystemBlobStore,
    config: Config,
    instance: InitResult,  # noqa: F811
) -> None:
    tip = submit(db, blob_store, "hello")
    html = page(browser, "/")
    assert '<td class="unread-count">1</td>' in html
    page(browser, tip.path)
    assert '<td class="unread-count"></td>' in page(browser, "/")
    # Another journalist still has it unread.
    bob = make_bob(db, config, instance)
    db.execute(
        update(Journalist).where(Journalist.username == "bob").values(must_change_passphrase=False)
    )
    db.commit()
    other = Browser(app, db)
    code = fresh_code(db, "bob", bob.credentials.totp_secret)
    assert other.login("bob", bob.credentials.passphrase, code).status_code == 303
    assert '<td class="unread-count">1</td>' in page(other, "/")
    # Bob holds no grant of the metadata key: tags are unavailable to him, not an error.
    assert "Tags are not set up yet" in page(other, tip.path)


def test_tags_filter_and_search(
    browser: Browser, db: Session, blob_store: FilesystemBlobStore
) -> None:
    one, two, _three = (submit(db, blob_store, text) for text in ("1", "2", "3"))
    for tip in (one, two):
        assert browser.post(f"{tip.path}/tags", {"tag": " Ministry "}).status_code == 303
    browser.post(f"{two.path}/tags", {"tag": "лекарства"})
    html = page(browser, two.path)
    assert '<span class="tag">Ministry</span>' in html
    assert '<span class="tag">лекарства</span>' in html
    assert sorted(listed(browser, "tag=Ministry")) == sorted(hexes(one, two))
    assert sorted(listed(browser, "q=MINISTRY")) == sorted(hexes(one, two))
    assert listed(browser, "tag=" + "ЛЕКАРСТВА") == hexes(two)
    assert listed(browser, "tag=nothing") == []
    inbox = page(browser, "/")
    assert '<option value="Ministry">Ministry</option>' in inbox
    assert browser.post(f"{one.path}/tags/remove", {"tag": "ministry"}).status_code == 303
    assert listed(browser, "tag=Ministry") == hexes(two)
    # The database holds the tags sealed, never in clear.
    sealed = b"".join(db.scalars(select(SourceTag.sealed_tag)))
    assert b"Ministry" not in sealed
    assert "лекарства".encode() not in sealed


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"tag": "x" * 49}, "A tag is 1 to 48 characters"),
        ({"tag": "evil\u202etag"}, "A tag is 1 to 48 characters"),
        ({"tag": "   "}, "A tag is 1 to 48 characters"),
    ],
)
def test_bad_tags_get_a_clear_answer(
    browser: Browser,
    db: Session,
    blob_store: FilesystemBlobStore,
    form: dict[str, str],
    message: str,
) -> None:
    tip = submit(db, blob_store, "hi")
    response = browser.post(f"{tip.path}/tags", form)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert db.scalars(select(SourceTag)).all() == []


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("status", {"status": "bogus"}),
        ("status", {}),
        ("star", {"starred": "yes"}),
        ("assignee", {"assignee": "zz"}),
    ],
)
def test_bad_triage_forms_are_400(
    browser: Browser, db: Session, blob_store: FilesystemBlobStore, path: str, form: dict[str, str]
) -> None:
    tip = submit(db, blob_store, "hi")
    assert browser.post(f"{tip.path}/{path}", form).status_code == 400


def test_unknown_assignee_and_unknown_source(
    browser: Browser, db: Session, blob_store: FilesystemBlobStore
) -> None:
    tip = submit(db, blob_store, "hi")
    response = browser.post(f"{tip.path}/assignee", {"assignee": "ab" * 16})
    assert response.status_code == 400
    assert "That journalist cannot be assigned." in response.get_data(as_text=True)
    missing = "/sources/" + "cd" * 16
    for path, form in (
        ("status", {"status": "new"}),
        ("star", {"starred": "1"}),
        ("tags", {"tag": "a"}),
    ):
        assert browser.post(f"{missing}/{path}", form).status_code == 404


@pytest.mark.parametrize(
    "query",
    ["status=bogus", "sort=random", "assignee=someone", "starred=yes", "unread=0", "page=0"],
)
def test_bad_inbox_parameters_are_400(browser: Browser, query: str) -> None:
    assert browser.get(f"/?{query}").status_code == 400


def test_sorts(browser: Browser, db: Session, blob_store: FilesystemBlobStore) -> None:
    tips = [submit(db, blob_store, str(n)) for n in range(3)]
    days = [date(2026, 1, 1), date(2026, 3, 1), date(2026, 2, 1)]
    for tip, day in zip(tips, days, strict=True):
        db.execute(
            update(Source)
            .where(Source.public_id == tip.source.public_id)
            .values(last_active_on=day)
        )
    db.commit()
    assert listed(browser) == hexes(tips[1], tips[2], tips[0])
    assert listed(browser, "sort=oldest") == hexes(tips[0], tips[2], tips[1])
    names = {
        public_id.hex(): name or ""
        for public_id, name in db.execute(select(Source.public_id, Source.designation))
    }
    assert listed(browser, "sort=designation") == sorted(names, key=lambda h: names[h])
    page(browser, tips[1].path)  # read: goes after the unread ones
    assert listed(browser, "sort=unread")[-1] == tips[1].source.public_id.hex()


def test_sources_without_items_are_not_listed_but_emptied_ones_are(
    browser: Browser, db: Session, blob_store: FilesystemBlobStore
) -> None:
    sources.create_source(db)  # a codename made, nothing sent
    db.commit()
    tip = submit(db, blob_store, "only message")
    assert listed(browser) == hexes(tip)
    (item,) = tip.item_ids
    browser.post(f"/items/{item.hex()}/delete", {"confirm": "yes"})
    assert db.scalars(select(Item)).all() == []
    assert listed(browser) == hexes(tip)  # still reachable, to reply or delete


def test_pagination_keeps_the_filters(
    browser: Browser, db: Session, blob_store: FilesystemBlobStore
) -> None:
    tips = [submit(db, blob_store, str(n)) for n in range(52)]
    for tip in tips[:51]:
        browser.post(f"{tip.path}/star", {"starred": "1"})
    html = page(browser, "/?starred=1&sort=oldest")
    assert "51 sources · page 1 of 2" in html
    next_link = re.search(r'<a rel="next" href="([^"]+)"', html)
    assert next_link is not None
    assert next_link.group(1).replace("&amp;", "&") == "/?starred=1&sort=oldest&page=2"
    assert len(listed(browser, "starred=1&sort=oldest&page=2")) == 1


def bulk(browser: Browser, tips: list[Tip], action: str, **extra: str) -> int:
    form: dict[str, object] = {"source": hexes(*tips), "action": action, **extra}
    return browser.post("/bulk", form).status_code


def test_bulk_actions(browser: Browser, db: Session, blob_store: FilesystemBlobStore) -> None:
    one, two, three = (submit(db, blob_store, text) for text in ("1", "2", "3"))
    assert bulk(browser, [one, two], "star") == 303
    assert sorted(listed(browser, "starred=1")) == sorted(hexes(one, two))
    assert bulk(browser, [one], "unstar") == 303
    assert listed(browser, "starred=1") == hexes(two)
    assert bulk(browser, [one, three], "read") == 303
    assert listed(browser, "unread=1") == hexes(two)
    assert bulk(browser, [three], "unread") == 303
    assert sorted(listed(browser, "unread=1")) == sorted(hexes(two, three))
    assert bulk(browser, [one, two], "status-closed") == 303
    assert sorted(listed(browser, "status=closed")) == sorted(hexes(one, two))
    assert bulk(browser, [two, three], "status-spam") == 303
    assert (
        db.scalar(select(Source.status).where(Source.public_id == three.source.public_id))
        == SOURCE_STATUS_SPAM
    )
    # Deleting needs the confirmation box; without it nothing goes.
    response = browser.post("/bulk", {"source": hexes(two, three), "action": "delete"})
    assert response.status_code == 400
    assert "Tick the box to confirm the deletion." in response.get_data(as_text=True)
    assert len(db.scalars(select(Source)).all()) == 3
    assert bulk(browser, [two, three], "delete", confirm="yes") == 303
    assert db.scalars(select(Source.public_id)).all() == [one.source.public_id]
    assert (
        db.scalars(select(Item).where(Item.source_id != db.scalars(select(Source.id)).one())).all()
        == []
    )


def test_bulk_refusals(browser: Browser, db: Session, blob_store: FilesystemBlobStore) -> None:
    tip = submit(db, blob_store, "1")
    response = browser.post("/bulk", {"action": "star"})
    assert response.status_code == 400
    assert "Tick at least one source first." in response.get_data(as_text=True)
    for action in ("explode", "status-bogus"):
        response = browser.post("/bulk", {"source": hexes(tip), "action": action})
        assert response.status_code == 400
        assert "Choose an action from the list." in response.get_data(as_text=True)
    assert browser.post("/bulk", {"source": ["not hex"], "action": "star"}).status_code == 400
    form = {"source": hexes(tip), "action": "star"}
    assert browser.post("/bulk", form, csrf=False).status_code == 400
    assert listed(browser, "starred=1") == []


def test_bulk_goes_back_to_the_same_view(
    browser: Browser, db: Session, blob_store: FilesystemBlobStore
) -> None:
    tip = submit(db, blob_store, "1")
    back = urlencode({"status": "new", "sort": "oldest", "q": "a b"})
    response = browser.post("/bulk", {"source": hexes(tip), "action": "star", "back": back})
    assert response.status_code == 303
    assert response.headers["Location"] == "/?done=bulk&q=a+b&status=new&sort=oldest"
    # A forged "back" is validated like any inbox URL and falls back to the plain inbox.
    forged = browser.post(
        "/bulk", {"source": hexes(tip), "action": "star", "back": "status=evil&next=//x"}
    )
    assert forged.headers["Location"] == "/?done=bulk"


def test_a_tag_and_a_note_leave_no_trace_at_rest(
    browser: Browser, db: Session, blob_store: FilesystemBlobStore, config: Config
) -> None:
    """DESIGN invariant 1 for what journalists write: a unique tag and note, then a scan
    of the instance folder (database, WAL, blobs) and PostgreSQL's files for them."""
    canary = "tag" + secrets.token_hex(8)
    tip = submit(db, blob_store, "hello")
    assert browser.post(f"{tip.path}/tags", {"tag": canary}).status_code == 303
    assert browser.post(f"{tip.path}/note", {"text": f"note {canary}"}).status_code == 303
    assert canary in page(browser, tip.path)
    assert listed(browser, f"tag={canary}") == hexes(tip)
    roots = [config.data_dir]
    engine = db.get_bind()
    assert isinstance(engine, Engine)
    if engine.dialect.name == "postgresql":
        roots.extend(postgres_files(engine))
    assert files_with(canary.encode(), roots) == []


def test_deletions_are_audited_without_naming_the_source(
    browser: Browser, db: Session, blob_store: FilesystemBlobStore
) -> None:
    one, two, three = (submit(db, blob_store, text) for text in ("1", "2", "3"))
    (item,) = one.item_ids
    browser.post(f"/items/{item.hex()}/delete", {"confirm": "yes"})
    browser.post(f"{one.path}/delete", {"confirm": "yes"})
    assert bulk(browser, [two, three], "delete", confirm="yes") == 303
    db.rollback()
    found = [(e.action, e.actor, e.detail) for e in audit.events(db, action_prefix="source.")]
    assert found == [
        ("source.delete", "admin", {"count": 2}),
        ("source.delete", "admin", {"count": 1}),
    ]
    assert [e.detail for e in audit.events(db, action_prefix="item.")] == [{"count": 1}]
    logged = repr([e.detail for e in audit.events(db)])
    for tip in (one, two, three):
        assert tip.source.public_id.hex() not in logged
