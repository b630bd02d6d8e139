"""Scale-out (issue #6): two source-app gunicorn masters and one journalist app on one
PostgreSQL database and one blob store; 1,000 submissions sent concurrently all land exactly
once and are readable.

Each source has two sessions (the codename got and confirmed on one master, then logged in
with on the other), so a source has up to two submissions in flight at once, on either
master, and its row lock is what keeps its item numbers (``seq``) unique. Every session sends
its submissions one after the other with the same cookie, cycling through the four ways two
masters can serve one: GET /submit (the form, its CSRF token and item ids) and POST /submit
both on A, GET on B and POST on A, GET on A and POST on B, both on B (the source app is
stateless: both masters share the database, the blob store and the Flask secret files
``tipbox init`` writes). Submissions use the server path (no JavaScript); each is answered
303 to ``/submit?sent=1``.

PostgreSQL only: SQLite allows one writer and is not a scale-out backend.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
import time
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pyotp
import pytest

# Test packages import as top-level names at run time; mypy names them tests.browser.
from browser.conftest import (  # type: ignore[import-not-found]
    PG_URL_ENV,
    Instance,
    LiveServer,
    start_server,
)
from browser.http_client import (  # type: ignore[import-not-found]
    Client,
    csrf_token,
    multipart,
)
from sqlalchemy import func, select

from tipbox.db import transaction
from tipbox.models import Item, Source
from tipbox.web.app import write_secret_keys

pytestmark = pytest.mark.skipif(not os.environ.get(PG_URL_ENV), reason=f"{PG_URL_ENV} is not set")

SOURCES = 50
SESSIONS_PER_SOURCE = 2
SUBMISSIONS = 1000
CLIENTS = 32
SETUP_CLIENTS = 4  # two Argon2id slots per source process (Config.argon2_concurrency)
BUSY_RETRIES = 50
LINK = re.compile(r'class="source-link" href="/sources/([0-9a-f]{32})"')
SOURCE_ID = re.compile(r'data-source-id="([0-9a-f]{32})"')
CODENAME = re.compile(r'class="codename"[^>]*>([^<]+)<')
TITLE = re.compile(r"<title>([^<]*)</title>")
LOG_TROUBLE = re.compile(r"Traceback|Unhandled|\[ERROR\]|\[CRITICAL\]|WORKER TIMEOUT")


@dataclass
class Apps:
    """The two source masters and the journalist master of the live instance."""

    sources: list[LiveServer]
    journalist: LiveServer


@dataclass
class SourceSession:
    """One session of a source: its own cookies, used by one client thread at a time."""

    source_index: int
    public_id: str
    clients: list[Client]  # one per source master, sharing ``cookies``
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Failure:
    """An answer that was not what a source should get."""

    what: str
    status: int
    location: str
    body: str

    def __str__(self) -> str:
        title = TITLE.search(self.body)
        shown = title.group(1) if title else self.body[:300]
        return f"{self.what}: {self.status} {self.location} {shown!r}"


@pytest.fixture(scope="module")
def apps(live_instance: Instance) -> Iterator[Apps]:
    """Two source-app masters and one journalist-app master, each its own gunicorn."""
    # What `tipbox init` does: the Flask secrets in files every master of the instance reads.
    write_secret_keys(live_instance.config)
    started: list[LiveServer] = []
    try:
        for app_name, name in [
            ("source", "source-a"),
            ("source", "source-b"),
            ("journalist", "journalist"),
        ]:
            started.append(start_server(live_instance, app_name, name))
        yield Apps(sources=started[:2], journalist=started[2])
    finally:
        for server in started:
            server.process.terminate()
        for server in started:
            server.process.wait(timeout=60)


def server_logs(live: Instance) -> str:
    """Every server's stdout and stderr, for a failure message."""
    parts = []
    for path in sorted(Path(live.log_dir).iterdir()):
        parts.append(f"--- {path.name}\n{path.read_text(errors='replace')}")
    return "\n".join(parts)


def shared_clients(servers: list[LiveServer]) -> list[Client]:
    """One client per master, all keeping their cookies in one jar (one browser)."""
    clients = [Client(server.base) for server in servers]
    for client in clients[1:]:
        client.cookies = clients[0].cookies
    return clients


def post_until_served(
    client: Client, path: str, fields: dict[str, str], busy: list[int]
) -> tuple[int, str, str]:
    """POST a form; on 503 (no Argon2id slot free) wait a little and send it again."""
    answer: tuple[int, str, str] = (0, "", "")
    for _ in range(BUSY_RETRIES):
        answer = client.post_form(path, fields)
        if answer[0] != 503:
            return answer
        busy.append(1)
        time.sleep(0.05)
    return answer


def make_source(index: int, servers: list[LiveServer], busy: list[int]) -> list[SourceSession]:
    """A codename got and confirmed on one master, then logged in with on the other."""
    first = shared_clients(servers)
    home = first[index % 2]
    _, _, landing = home.request("GET", "/")
    status, _, page = post_until_served(
        home, "/generate", {"csrf_token": csrf_token(landing)}, busy
    )
    assert status == 200, page[:300]
    match = CODENAME.search(page)
    assert match, page[:300]
    codename = " ".join(match.group(1).split())
    status, location, page = post_until_served(
        home, "/confirm", {"csrf_token": csrf_token(page), "codename": codename}, busy
    )
    assert (status, urllib.parse.urlsplit(location).path) == (303, "/submit"), page[:300]
    status, _, form = home.request("GET", "/submit")
    assert status == 200
    found = SOURCE_ID.search(form)
    assert found, form[:300]
    public_id = found.group(1)

    second = shared_clients(servers)
    other = second[(index + 1) % 2]
    _, _, login = other.request("GET", "/login")
    status, location, page = post_until_served(
        other, "/login", {"csrf_token": csrf_token(login), "codename": codename}, busy
    )
    assert (status, urllib.parse.urlsplit(location).path) == (303, "/replies"), page[:300]
    return [SourceSession(index, public_id, first), SourceSession(index, public_id, second)]


def submit(session: SourceSession, form_on: int, post_on: int, text: str) -> Failure | None:
    """GET /submit on master ``form_on``, then POST /submit on master ``post_on``, as a
    source without JavaScript."""
    status, location, page = session.clients[form_on].request("GET", "/submit")
    if status != 200:
        return Failure(f"GET /submit on master {form_on}", status, location, page)
    body, content_type = multipart({"csrf_token": csrf_token(page), "message": text})
    status, location, page = session.clients[post_on].request(
        "POST", "/submit", body, {"Content-Type": content_type}
    )
    parsed = urllib.parse.urlsplit(location)
    if status != 303 or (parsed.path, parsed.query) != ("/submit", "sent=1"):
        what = f"POST /submit on master {post_on} (form from {form_on})"
        return Failure(what, status, location, page)
    return None


def timed(phases: dict[str, float], name: str, work: Callable[[], None]) -> None:
    start = time.monotonic()
    work()
    phases[name] = time.monotonic() - start


def journalist_login(live: Instance, base: str) -> Client:
    """The admin, logged in to the journalist app over HTTP (passphrase and TOTP)."""
    client = Client(base)
    _, _, page = client.request("GET", "/login")
    status, location, page = client.post_form(
        "/login",
        {
            "csrf_token": csrf_token(page),
            "username": live.admin.username,
            "passphrase": live.admin.passphrase,
            "code": pyotp.TOTP(live.admin.totp_secret).now(),
        },
    )
    assert (status, urllib.parse.urlsplit(location).path) == (303, "/"), page[:300]
    return client


def test_thousand_concurrent_submissions_over_two_source_masters(
    apps: Apps, live_instance: Instance
) -> None:
    live = live_instance
    phases: dict[str, float] = {}
    started = time.monotonic()

    # -- sources, alternating masters -----------------------------------------------
    sessions: list[SourceSession] = []
    busy: list[int] = []

    def setup() -> None:
        with ThreadPoolExecutor(SETUP_CLIENTS) as pool:
            made = pool.map(lambda i: make_source(i, apps.sources, busy), range(SOURCES))
            for pair in made:
                sessions.extend(pair)

    timed(phases, "sources", setup)
    assert len({s.public_id for s in sessions}) == SOURCES

    # -- 1,000 submissions, 32 clients ---------------------------------------------
    # Round-robin over the sessions, so a session's next submission is far down the queue;
    # each session cycles through the four (form master, post master) pairs, and half of
    # all forms and half of all posts go to each master.
    rounds = SUBMISSIONS // len(sessions)
    plan = [
        (r * len(sessions) + s, sessions[s], (s + r) % 2, (s + r // 2) % 2)
        for r in range(rounds)
        for s in range(len(sessions))
    ]
    assert len(plan) == SUBMISSIONS
    run = secrets.token_hex(4)
    expected: dict[str, list[str]] = defaultdict(list)
    texts = {}
    for number, session, _, _ in plan:
        text = f"scale-out {run} submission {number:04d} from source {session.source_index:02d}"
        texts[number] = text
        expected[session.public_id].append(text)
    failures: list[Failure] = []

    def send(step: tuple[int, SourceSession, int, int]) -> None:
        number, session, form_on, post_on = step
        with session.lock:
            failure = submit(session, form_on, post_on, texts[number])
        if failure is not None:
            failures.append(failure)

    def load() -> None:
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(send, plan))

    timed(phases, "submissions", load)
    assert not failures, (
        f"{len(failures)} of {SUBMISSIONS} submissions failed: "
        f"{dict(Counter(f'{f.what} -> {f.status}' for f in failures))}; first: "
        + "\n".join(str(f) for f in failures[:5])
        + "\n"
        + server_logs(live)
    )

    # -- exactly once, in the database and the blob store ----------------------------
    def check_rows() -> None:
        with transaction(live.factory) as session:
            counted = session.execute(select(Item.kind, func.count()).group_by(Item.kind))
            kinds = {kind: count for kind, count in counted}
            assert kinds == {1: SUBMISSIONS}, kinds
            rows = session.execute(
                select(Source.public_id, Source.next_seq, Source.last_source_seq, Item.seq)
                .join(Item, Item.source_id == Source.id)
                .order_by(Source.id, Item.seq)
            ).all()
            blob_ids = list(session.scalars(select(Item.blob_id)))
        seqs: dict[str, list[int]] = defaultdict(list)
        for public_id, next_seq, last_source_seq, seq in rows:
            seqs[public_id.hex()].append(seq)
            n = len(expected[public_id.hex()])
            assert (next_seq, last_source_seq) == (n + 1, n), public_id.hex()
        assert set(seqs) == set(expected)
        for hex_id, numbers in seqs.items():
            assert numbers == list(range(1, len(expected[hex_id]) + 1)), (hex_id, numbers)
        assert len(set(blob_ids)) == SUBMISSIONS
        missing = [b for b in blob_ids if not live.store.path(b).is_file()]
        assert not missing, missing[:5]
        assert set(live.store.ids()) == set(blob_ids), "blobs without a row, or rows without one"

    timed(phases, "rows", check_rows)

    # -- readable: decrypted as the admin, each text exactly once --------------------
    def check_read() -> None:
        for public_id, wanted in expected.items():
            got = live.read_items(bytes.fromhex(public_id))
            assert {kind for kind, _, _ in got} == {1}
            counts = Counter(content.decode() for _, _, content in got)
            assert counts == Counter(wanted), public_id
            assert max(counts.values()) == 1

    timed(phases, "decrypt", check_read)

    # -- the journalist app lists every source and shows every message ---------------
    def check_journalist() -> None:
        desk = journalist_login(live, apps.journalist.base)
        status, _, inbox = desk.request("GET", "/")
        assert status == 200
        assert set(LINK.findall(inbox)) == set(expected)
        for public_id, wanted in expected.items():
            status, _, page = desk.request("GET", f"/sources/{public_id}")
            assert status == 200
            assert all(page.count(text) == 1 for text in wanted), public_id

    timed(phases, "journalist", check_journalist)

    # -- nothing went wrong on the servers' side -------------------------------------
    logs = server_logs(live)
    trouble = [line for line in logs.splitlines() if LOG_TROUBLE.search(line)]
    assert not trouble, logs

    total = time.monotonic() - started
    print(  # shown with -s: how long each phase took
        f"\nscale-out: {SOURCES} sources ({len(busy)} busy answers), {SUBMISSIONS} submissions "
        f"by {CLIENTS} clients; "
        + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in phases.items())
        + f"; total {total:.1f}s ({SUBMISSIONS / phases['submissions']:.0f} submissions/s)"
    )
