"""Inbox triage in Chromium, through a real gunicorn journalist app (with and without JS).

With JavaScript: the inbox script adds a "select all" box and keyboard shortcuts (j, k, x,
a, o, /); a bulk "star" made with them shows in the inbox and its "Starred" view, and
nothing is logged to the console (no error, no CSP violation).

Without JavaScript: there is no "select all" box, and everything still works by hand: a
bulk status change (spam leaves the default inbox), a bulk delete that is refused until
confirmed, and the source page's forms (status, assignee, star, tag, mark unread), whose
results the inbox filters (``tag``, ``q``, ``unread``, ...) then show.

Sources are made through the domain layer (``create_source``, ``accept_server_submission``)
on the module's live instance; each test makes its own and checks only what it changed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from tipbox import directory, sources
from tipbox.db import transaction
from tipbox.models import SOURCE_STATUS_IN_REVIEW, SOURCE_STATUS_SPAM, Journalist, Source
from tipbox.submissions import Limits, accept_server_submission

from .conftest import Instance, LiveServer, start_server
from .test_both_apps import _fresh_code

pytestmark = pytest.mark.browser

LIMITS = Limits(max_message_chars=10_000, max_files=3, max_file_bytes=1024 * 1024)
TIMEOUT_MS = 60_000
SOURCE_BOX = 'form.bulk input[type="checkbox"][name="source"]'
APPLY = 'form.bulk fieldset.bulk-actions button[type="submit"]'


@pytest.fixture(scope="module")
def journalist_server(live_instance: Instance) -> Iterator[LiveServer]:
    """The journalist app of ``live_instance`` under gunicorn."""
    server = start_server(live_instance, "journalist", "journalist-triage")
    yield server
    server.process.terminate()
    server.process.wait(timeout=60)


@pytest.fixture(scope="module")
def totp_steps() -> list[int]:
    """TOTP time steps already used (each code is accepted once)."""
    return []


@pytest.fixture(scope="module")
def no_js_login(
    chromium: Any, journalist_server: LiveServer, live_instance: Instance, totp_steps: list[int]
) -> dict[str, Any]:
    """The cookies of one login made without JavaScript, for the tests without it.

    Each login needs a fresh TOTP step: sharing one spares the tests a wait of up to 30 s.
    """
    context = chromium.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        log_in(page, journalist_server.base, live_instance, totp_steps)
        state: dict[str, Any] = context.storage_state()
        return state
    finally:
        context.close()


def no_js_page(chromium: Any, login: dict[str, Any]) -> tuple[Any, Any]:
    """A context without JavaScript, logged in with ``login``, and a page of it."""
    context = chromium.new_context(java_script_enabled=False, storage_state=login)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return context, page


# -- helpers ----------------------------------------------------------------------------


def make_sources(live: Instance, count: int) -> list[str]:
    """``count`` new sources that each sent a message; their public ids in hex."""
    made = []
    for n in range(count):
        with transaction(live.factory) as session:
            public_id = sources.create_source(session).public_id
        with transaction(live.factory) as session:
            identity = directory.identity_public(session)
            accept_server_submission(
                session, live.store, identity, public_id, f"tip number {n}", [], LIMITS
            )
        made.append(public_id.hex())
    return made


def source_rows(live: Instance, hex_ids: list[str]) -> dict[str, Source]:
    """The rows of the sources that still exist, by public id (hex)."""
    with transaction(live.factory) as session:
        rows = session.scalars(
            select(Source).where(Source.public_id.in_([bytes.fromhex(h) for h in hex_ids]))
        ).all()
        session.expunge_all()
    return {row.public_id.hex(): row for row in rows}


def log_in(page: Any, base: str, live: Instance, used_steps: list[int]) -> None:
    """Log in as the admin with passphrase and TOTP; land on the inbox."""
    page.goto(f"{base}/login")
    page.fill("#username", live.admin.username)
    page.fill("#passphrase", live.admin.passphrase)
    page.fill("#code", _fresh_code(live.admin.totp_secret, used_steps))
    with page.expect_navigation():
        page.click("form.login button")
    assert page.url.rstrip("/") == base, page.url
    assert page.locator("form.inbox-filters").count() == 1


def listed(page: Any) -> list[str]:
    """The public ids (hex) of the sources the inbox page lists, in order."""
    hrefs = [str(link.get_attribute("href")) for link in page.locator("a.source-link").all()]
    found = [re.fullmatch(r"/sources/([0-9a-f]{32})", href) for href in hrefs]
    assert all(found), hrefs
    return [match.group(1) for match in found if match]


def inbox(page: Any, base: str, query: str = "") -> list[str]:
    """Open the inbox (``query``: a query string, without "?") and list its sources."""
    response = page.goto(f"{base}/{'?' + query if query else ''}")
    assert response is not None
    assert response.status == 200, (query, response.status)
    assert page.locator("form.inbox-filters").count() == 1, page.url
    return listed(page)


def row(page: Any, hex_id: str) -> Any:
    """The inbox row of a source."""
    return page.locator("tr.source-row").filter(
        has=page.locator(f'input[name="source"][value="{hex_id}"]')
    )


def tick(page: Any, hex_id: str) -> None:
    page.check(f'input[name="source"][value="{hex_id}"]')


def apply(page: Any, action: str) -> Any:
    """Choose ``action`` in the bulk form and press Apply; the final response."""
    page.select_option("#bulk-action", action)
    with page.expect_navigation() as navigation:
        page.click(APPLY)
    return navigation.value


def ticked(page: Any) -> list[bool]:
    return [box.is_checked() for box in page.locator(SOURCE_BOX).all()]


def view_count(page: Any, label: str) -> int:
    """The number shown beside a view link of the inbox's count bar."""
    item = page.locator("nav.inbox-counts li").filter(has=page.locator(f"a:text-is('{label}')"))
    match = re.search(r"\((\d+)\)", item.inner_text())
    assert match, item.inner_text()
    return int(match.group(1))


def current_rows(page: Any) -> list[int]:
    """The indexes of the inbox rows marked ``current`` (by j and k)."""
    classes = [str(r.get_attribute("class") or "") for r in page.locator("tr.source-row").all()]
    return [i for i, names in enumerate(classes) if "current" in names.split()]


def submit_form(page: Any, form: str) -> Any:
    """Press the submit button of ``form`` (a selector); the final response."""
    with page.expect_navigation() as navigation:
        page.click(f'{form} button[type="submit"]')
    return navigation.value


# -- with JavaScript ----------------------------------------------------------------------


def test_select_all_shortcuts_and_bulk_star_with_javascript(
    chromium: Any,
    journalist_server: LiveServer,
    live_instance: Instance,
    totp_steps: list[int],
) -> None:
    base = journalist_server.base
    mine = make_sources(live_instance, 3)
    context = chromium.new_context(java_script_enabled=True)
    problems: list[str] = []
    violations: list[str] = []

    def on_violation(report: str) -> None:
        violations.append(report)

    context.expose_function("__tipboxCspViolation", on_violation)
    context.add_init_script(
        "document.addEventListener('securitypolicyviolation', (e) =>"
        " window.__tipboxCspViolation(e.violatedDirective + ' ' + e.blockedURI));"
    )
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)

    def on_console(message: Any) -> None:
        if message.type in ("error", "warning"):
            problems.append(f"console {message.type}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))
    try:
        log_in(page, base, live_instance, totp_steps)
        starred_before = set(inbox(page, base, "starred=1"))
        order = inbox(page, base)
        assert set(mine) <= set(order)
        assert len(order) >= 3

        # "Select all" sits in the header cell and ticks, then unticks, every source.
        select_all = page.locator("form.bulk th.select-column #select-all")
        assert select_all.count() == 1
        assert ticked(page) == [False] * len(order)
        select_all.click()
        assert ticked(page) == [True] * len(order)
        select_all.click()
        assert ticked(page) == [False] * len(order)
        # "a" does the same from the keyboard.
        page.keyboard.press("a")
        assert ticked(page) == [True] * len(order)
        assert select_all.is_checked()
        page.keyboard.press("a")
        assert ticked(page) == [False] * len(order)
        assert not select_all.is_checked()

        # j twice: the second row is current; x ticks it; j x the third one too.
        page.keyboard.press("j")
        page.keyboard.press("j")
        assert current_rows(page) == [1]
        page.keyboard.press("x")
        assert ticked(page) == [i == 1 for i in range(len(order))]
        assert select_all.evaluate("box => box.indeterminate") is True
        page.keyboard.press("j")
        page.keyboard.press("x")
        assert current_rows(page) == [2]
        chosen = order[1:3]
        assert ticked(page) == [i in (1, 2) for i in range(len(order))]

        response = apply(page, "star")
        assert response.status == 200
        assert "done=bulk" in page.url
        assert page.locator("p.notice").count() == 1
        for hex_id in order:
            stars = row(page, hex_id).locator("span.star").count()
            assert stars == (1 if hex_id in chosen or hex_id in starred_before else 0), hex_id
            if stars:
                assert row(page, hex_id).locator("span.star").inner_text() == "★"
        expected = starred_before | set(chosen)
        assert view_count(page, "Starred") == len(expected)
        with page.expect_navigation():
            page.click("nav.inbox-counts a:text-is('Starred')")
        assert "starred=1" in page.url
        assert set(listed(page)) == expected
        assert len(listed(page)) == len(expected)
        rows_now = source_rows(live_instance, order)
        assert {h for h, r in rows_now.items() if r.starred} == expected & set(order)

        # "/" focuses the search box (and types nothing into it).
        inbox(page, base)
        page.keyboard.press("/")
        assert page.evaluate("document.activeElement && document.activeElement.id") == "q"
        assert page.input_value("#q") == ""
        # Shortcuts are off while typing: j goes into the box.
        page.keyboard.press("j")
        assert page.input_value("#q") == "j"
        assert current_rows(page) == []
        page.fill("#q", "")
        page.evaluate("document.activeElement.blur()")

        # o opens the current source.
        order = listed(page)
        page.keyboard.press("j")
        page.keyboard.press("j")
        page.keyboard.press("k")
        assert current_rows(page) == [0]
        with page.expect_navigation():
            page.keyboard.press("o")
        assert page.url == f"{base}/sources/{order[0]}"
        assert page.locator("section.triage").count() == 1

        assert problems == []
        assert violations == []
    finally:
        context.close()


# -- without JavaScript -------------------------------------------------------------------


def test_bulk_status_and_delete_without_javascript(
    chromium: Any,
    journalist_server: LiveServer,
    live_instance: Instance,
    no_js_login: dict[str, Any],
) -> None:
    base = journalist_server.base
    spam_a, spam_b, kept = make_sources(live_instance, 3)
    context, page = no_js_page(chromium, no_js_login)
    try:
        shown = inbox(page, base)
        assert {spam_a, spam_b, kept} <= set(shown)
        # No script: no "select all" box, the header says what the column is for.
        assert page.locator("#select-all").count() == 0
        assert page.locator("th.select-column").inner_text().strip() == "Select"
        assert page.locator("p.shortcuts").count() == 0
        spam_before = view_count(page, "Spam")

        # Two sources, ticked by hand, marked as spam.
        tick(page, spam_a)
        tick(page, spam_b)
        option = page.locator('#bulk-action option[value="status-spam"]')
        assert option.inner_text().strip() == "Set status: Spam"
        response = apply(page, "status-spam")
        assert response.status == 200
        assert "done=bulk" in page.url
        shown = listed(page)
        assert spam_a not in shown
        assert spam_b not in shown
        assert kept in shown
        assert view_count(page, "Spam") == spam_before + 2
        spam = inbox(page, base, "status=spam")
        assert {spam_a, spam_b} <= set(spam)
        assert kept not in spam
        assert row(page, spam_a).locator("td.status").inner_text() == "Spam"
        rows = source_rows(live_instance, [spam_a, spam_b, kept])
        assert [rows[h].status == SOURCE_STATUS_SPAM for h in (spam_a, spam_b, kept)] == [
            True,
            True,
            False,
        ]

        # Delete without the confirmation box: a 400 that says why; nothing deleted.
        tick(page, spam_a)
        assert not page.is_checked('form.bulk input[name="confirm"]')
        response = apply(page, "delete")
        assert response.status == 400
        assert (
            page.locator("p.error[role=alert]").inner_text()
            == "Tick the box to confirm the deletion."
        )
        assert set(source_rows(live_instance, [spam_a, spam_b])) == {spam_a, spam_b}
        # The page that says so is the spam view the form came from, ready to try again.
        assert {spam_a, spam_b} <= set(listed(page))

        # With the box ticked, it is gone (the other one stays).
        tick(page, spam_a)
        page.check('form.bulk input[name="confirm"]')
        response = apply(page, "delete")
        assert response.status == 200
        assert "done=bulk" in page.url
        assert "status=spam" in page.url
        assert spam_a not in listed(page)
        assert spam_b in listed(page)
        assert set(source_rows(live_instance, [spam_a, spam_b])) == {spam_b}
        assert spam_a not in inbox(page, base, "status=all")
        missing = page.goto(f"{base}/sources/{spam_a}")
        assert missing is not None
        assert missing.status == 404
    finally:
        context.close()


def test_source_page_triage_without_javascript(
    chromium: Any,
    journalist_server: LiveServer,
    live_instance: Instance,
    no_js_login: dict[str, Any],
) -> None:
    base = journalist_server.base
    (mine,) = make_sources(live_instance, 1)
    admin = select(Journalist.public_id).where(Journalist.username == live_instance.admin.username)
    with transaction(live_instance.factory) as session:
        admin_hex = session.scalars(admin).one().hex()
    context, page = no_js_page(chromium, no_js_login)
    source_url = f"{base}/sources/{mine}"
    try:
        assert mine in inbox(page, base, "unread=1")
        opened = page.goto(source_url)
        assert opened is not None
        assert opened.status == 200
        # Reading it marked it read.
        assert mine not in inbox(page, base, "unread=1")
        page.goto(source_url)

        # Status.
        page.select_option("#source-status", "review")
        response = submit_form(page, "form.triage-status")
        assert response.status == 200
        assert page.url.startswith(source_url)
        assert page.locator("p.notice").inner_text() == "Saved."
        assert page.locator("#source-status").input_value() == "review"

        # Assignee: the admin.
        page.select_option("#source-assignee", label=live_instance.admin.username)
        assert page.locator("#source-assignee").input_value() == admin_hex
        response = submit_form(page, "form.triage-assignee")
        assert response.status == 200
        assert page.locator("#source-assignee").input_value() == admin_hex

        # Star.
        response = submit_form(page, "form.triage-star")
        assert response.status == 200
        assert "★" in page.locator("form.triage-star").inner_text()
        assert page.locator('form.triage-star input[name="starred"]').input_value() == "0"

        # Tag.
        page.fill("#new-tag", "Ministry")
        response = submit_form(page, "form.add-tag")
        assert response.status == 200
        assert page.locator("ul.tag-list span.tag").all_inner_texts() == ["Ministry"]

        row_state = source_rows(live_instance, [mine])[mine]
        assert row_state.status == SOURCE_STATUS_IN_REVIEW
        assert row_state.starred is True
        assert row_state.assignee_id is not None

        # The inbox shows it all, and its filters find it.
        assert inbox(page, base, "tag=Ministry") == [mine]
        assert page.locator("#tag").input_value() == "Ministry"
        line = row(page, mine)
        assert line.locator("td.status").inner_text() == "In review"
        assert line.locator("td.tags a.tag").all_inner_texts() == ["Ministry"]
        assert line.locator("span.star").count() == 1
        assert live_instance.admin.username in line.inner_text()
        assert inbox(page, base, "q=ministry") == [mine]
        assert inbox(page, base, "q=MINISTRY") == [mine]
        assert mine in inbox(page, base, "status=review")
        assert mine in inbox(page, base, "assignee=me")
        assert mine in inbox(page, base, f"assignee={admin_hex}")
        assert mine in inbox(page, base, "starred=1")
        assert mine in inbox(page, base, "starred=1&tag=Ministry&status=review&assignee=me")
        assert inbox(page, base, "tag=Ministr") == []
        assert mine not in inbox(page, base, "q=ministr")

        # Mark unread: back to the inbox, and listed as unread.
        page.goto(source_url)
        with page.expect_navigation() as navigation:
            page.click('form.triage-unread button[type="submit"]')
        assert navigation.value.status == 200
        assert page.url.startswith(f"{base}/?")
        assert "done=triage" in page.url
        assert "unread" in (row(page, mine).get_attribute("class") or "").split()
        assert mine in inbox(page, base, "unread=1")
    finally:
        context.close()
