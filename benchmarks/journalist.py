"""Journalist app benchmark: the inbox under a large newsroom, and a large download.

Run from the repository root::

    .venv/bin/python benchmarks/journalist.py           # 10,000 sources, 100,000 items, 1 GiB
    .venv/bin/python benchmarks/journalist.py --quick   # 1,000 sources, 10,000 items, 64 MiB
    .venv/bin/python benchmarks/journalist.py --sqlite  # the same on SQLite

Setup: a fresh PostgreSQL database on the server of ``--database-url`` (created for the run,
dropped after; with ``--sqlite``, a SQLite file in a temporary folder), migrated and
initialised with ``tipbox.instance.init_instance`` and the default ``Config`` (the real
Argon2id costs), blobs in a temporary folder, and the journalist app run as ``python -m
tipbox.serve journalist`` with its default workers and threads.

Seeding (``seed_inbox``): sources, items and wraps go straight into their tables with bulk
inserts (SQLAlchemy Core ``insert`` with ``executemany``), in the columns ``tipbox.models``
has today. The inbox never opens an item, a wrap or a blob, so the seeded rows hold random
bytes of the right sizes (public ids, lookup hashes, X25519 keys, 1,064-byte sealed metas,
80-byte wraps, 64-byte signatures) and name blobs that do not exist: opening one of those
sources' pages would show damaged items. Everything else is as the app would write it:
unique two-word designations drawn from the codename word list, every source with at least
one item (so every source is listed) and the rest spread with a long tail, ``seq`` numbering
per source with ``next_seq`` after it, kinds 1..4 (the first item a message; replies and
notes signed by the admin's key id, replies also wrapped to the source's key), last activity
spread over the past year, statuses, stars and assignees varied. PostgreSQL then gets a
``VACUUM ANALYZE``, as autovacuum would have done in a database that grew to this size.

1. Login: GET /login, then POST the admin's username, passphrase and a TOTP code (one
   Argon2id run at 256 MiB). The session cookie is shared by every client thread.
2. Inbox: for each kind of inbox request (first page, a middle page, the last page, searches
   by designation; each a row of ``inbox_requests``), a warm-up round and then ``N`` requests
   from ``CLIENTS`` threads, each on its own keep-alive connection. Every answer must be a
   200 listing exactly the rows the seeded data says it should.
3. Download: one file item, added to a seeded source through the server path's own code
   (``tipbox.uploads.EncryptingUpload`` and ``tipbox.submissions.accept_server_submission``:
   a real envelope, wrapped to the current newsroom key), with deterministic content (a
   random 1 MiB block, each copy numbered), so it can be made again rather than kept. It is
   downloaded ``--repeat`` times (3 by default) through GET /items/<id>/download, streamed
   and discarded; each download must have exactly ``Content-Length`` bytes, the content's
   size, and equal the content byte for byte (each MiB compared with the same MiB made
   again: a running BLAKE2b would cost the client as much CPU as the whole download costs
   the server, and halved the measured MB/s on a 2-CPU machine). The gunicorn processes'
   peak RSS (``VmHWM``, reset just before the first download through
   ``/proc/<pid>/clear_refs``: the login's Argon2id would otherwise dominate it) is read
   after the last. Then, in this process, the same blob is decrypted from the page cache
   with ``envelope.decrypt_body`` and with raw libsodium secretstream (PyNaCl's
   ``crypto_secretstream_xchacha20poly1305_pull``, 64 KiB chunks, as benchmarks/crypto.py
   does), so the download's MB/s can be compared with raw decryption on the same machine in
   the same run. Best of ``--repeat`` runs each.

The clients run in this process, on the same machine as the server and PostgreSQL, so they
compete for the same CPUs: the tables say how much CPU each side took.
"""

from __future__ import annotations

import argparse
import datetime
import html
import http.client
import math
import os
import platform
import random
import re
import secrets
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import nacl.bindings as sodium
import pyotp
from sqlalchemy import Engine, Table, create_engine, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from journalist_ui.listing import PAGE_SIZE
from tipbox import directory, instance, models
from tipbox.accounts import Credentials
from tipbox.config import Config
from tipbox.crypto import envelope
from tipbox.crypto.keys import PublicKeys, Role
from tipbox.crypto.wordlist import words
from tipbox.db import make_engine, make_session_factory, normalise_url, transaction, upgrade
from tipbox.models import (
    KIND_FILE,
    KIND_MESSAGE,
    KIND_NOTE,
    KIND_REPLY,
    SOURCE_STATUS_NEW,
    Base,
    Journalist,
)
from tipbox.serve import KEEPALIVE_SECONDS, THREADS, default_workers
from tipbox.storage import FilesystemBlobStore
from tipbox.submission_rules import Limits
from tipbox.submissions import accept_server_submission
from tipbox.uploads import EncryptingUpload

MIB = 1 << 20
GIB = 1 << 30
CHUNK = envelope.CHUNK_BYTES
CLIENTS = 4
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REQUEST_TIMEOUT = 60.0
DOWNLOAD_TIMEOUT = 600.0
SERVER_START_SECONDS = 60.0
# gunicorn closes a keep-alive connection idle for KEEPALIVE_SECONDS; a request sent as it
# closes would fail, so a connection idle for less than that is replaced, not reused.
IDLE_RECONNECT_SECONDS = KEEPALIVE_SECONDS / 2
PEAK_RSS_TARGET_MIB = 200
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SEED = 20240601  # the seeded data and the file's content are the same on every run
INSERT_BATCH = 5000  # rows per executemany
SEARCH_SAMPLES = 20  # different search strings per kind of search


@dataclass(frozen=True)
class Plan:
    """How much the run does."""

    quick: bool
    sources: int
    items: int
    requests: int  # per kind of inbox request
    file_bytes: int
    repeats: int  # downloads and in-process decryptions; the best is reported


QUICK = Plan(quick=True, sources=1_000, items=10_000, requests=100, file_bytes=64 * MIB, repeats=3)
FULL = Plan(quick=False, sources=10_000, items=100_000, requests=400, file_bytes=GIB, repeats=3)


class Unexpected(Exception):  # noqa: N818 - reads as "an unexpected answer"
    """The server answered something other than what the step expects."""


def progress(message: str) -> None:
    """A line on stderr while the run goes on (the report itself goes to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- HTTP client


@dataclass(frozen=True)
class Response:
    status: int
    location: str
    text: str


class Client:
    """One browser tab: cookies and a keep-alive connection of its own."""

    def __init__(self, port: int, cookies: Mapping[str, str] | None = None) -> None:
        self.port = port
        self.cookies: dict[str, str] = dict(cookies or {})
        self._conn: http.client.HTTPConnection | None = None
        self._last_used = 0.0

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is not None and time.monotonic() - self._last_used > IDLE_RECONNECT_SECONDS:
            self.close()
        if self._conn is None:
            self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
        return self._conn

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """Send one request on the kept connection and read the whole answer."""
        conn = self._connection()
        try:
            conn.request(
                method, path, body=body, headers={**(headers or {}), **cookie_header(self.cookies)}
            )
            answer = conn.getresponse()
            content = answer.read().decode("utf-8", "replace")
        except BaseException:
            self.close()
            raise
        self.keep_cookies(answer)
        self._last_used = time.monotonic()
        if answer.will_close:
            self.close()
        return Response(answer.status, answer.getheader("Location", ""), content)

    def keep_cookies(self, answer: http.client.HTTPResponse) -> None:
        # Cookies are Secure, which a browser keeps for loopback addresses over plain HTTP
        # (tipbox.web.cookies); this client sends them back as such a browser would.
        for header in answer.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            if value and "max-age=0" not in header.lower():
                self.cookies[name.strip()] = value
            else:
                self.cookies.pop(name.strip(), None)


def cookie_header(cookies: Mapping[str, str]) -> dict[str, str]:
    """The ``Cookie`` header that sends ``cookies`` back (none if there are none)."""
    if not cookies:
        return {}
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}


def csrf_token(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if not match:
        raise Unexpected("no CSRF token on the page")
    return html.unescape(match.group(1))


def listed_rows(page: str) -> int:
    """How many sources an inbox page lists: the rows of its table's body."""
    body = re.search(r"<tbody>(.*?)</tbody>", page, re.DOTALL)
    return 0 if body is None else len(re.findall(r"<tr[\s>]", body.group(1)))


# --------------------------------------------------------------------------- seeding


@dataclass(frozen=True)
class SeededSource:
    """What the inbox shows of a seeded source (to know what each page must list)."""

    public_id: bytes
    designation: str
    last_active_on: datetime.date
    status: int
    starred: bool
    assigned: bool
    items: int


@dataclass(frozen=True)
class Seeded:
    """What ``seed_inbox`` put in the database, and how long it took."""

    sources: list[SeededSource]
    kinds: Counter[int]
    wraps: int
    seconds: float


def items_per_source(n_sources: int, n_items: int, rng: random.Random) -> list[int]:
    """At least one item per source, the rest with a long tail (a few sources send a lot)."""
    if n_items < n_sources:
        raise ValueError("every source needs at least one item")
    weights = [rng.paretovariate(1.5) for _ in range(n_sources)]
    extra = Counter(rng.choices(range(n_sources), weights, k=n_items - n_sources))
    return [1 + extra[index] for index in range(n_sources)]


def designations(n: int, rng: random.Random) -> list[str]:
    """``n`` unique two-word designations, as ``tipbox.sources`` draws them."""
    wordlist = words()
    pairs = rng.sample(range(len(wordlist) ** 2), n)
    return [f"{wordlist[p // len(wordlist)]} {wordlist[p % len(wordlist)]}" for p in pairs]


# Kinds after a source's first item (a message): mostly messages, some files, replies, notes.
LATER_KINDS = [KIND_MESSAGE, KIND_FILE, KIND_REPLY, KIND_NOTE]
LATER_KIND_WEIGHTS = [70, 15, 10, 5]
SEEDED_TABLES = ("sources", "items", "wraps")


def seeded_statuses() -> tuple[list[int], list[float]]:
    """The triage statuses seeded sources get, and their weights: half new, the rest spread
    over the others. Never spam (where spam is a status), so that every seeded source is in
    the default listing; a spam share belongs with a spam filter's row in ``inbox_requests``.
    Read from ``tipbox.models`` at run time, as the set of statuses is being reworked."""
    statuses = [int(s) for s in getattr(models, "SOURCE_STATUSES", (0, 1, 2))]
    spam = getattr(models, "SOURCE_STATUS_SPAM", None)
    others = [s for s in statuses if s not in (SOURCE_STATUS_NEW, spam)]
    return [SOURCE_STATUS_NEW, *others], [50.0] + [50.0 / len(others)] * len(others)


def blob_size_of(kind: int, rng: random.Random) -> int:
    """A plausible blob size: short texts for messages, replies and notes; files of a few
    kilobytes to hundreds of megabytes."""
    if kind == KIND_FILE:
        content = min(int(rng.lognormvariate(12.5, 2.0)), 500 * MIB)
    else:
        content = rng.randrange(40, 4000)
    return envelope.blob_length(content)


def table(name: str) -> Table:
    return Base.metadata.tables[name]


def next_ids(engine: Engine) -> dict[str, int]:
    """The first free primary key of each seeded table (the tables may hold rows already)."""
    with engine.connect() as conn:
        return {
            name: int(conn.scalar(select(func.coalesce(func.max(table(name).c.id), 0))) or 0) + 1
            for name in SEEDED_TABLES
        }


def seed_inbox(engine: Engine, n_sources: int, n_items: int, rng: random.Random) -> Seeded:
    """Insert ``n_sources`` sources with ``n_items`` items between them, and their wraps.

    Bulk Core inserts with explicit primary keys (so that items can name their source and
    wraps their item without reading anything back), in batches, in one transaction; on
    PostgreSQL the id sequences are moved past them and the tables vacuumed and analysed.
    Rows are made with every column the app may know and cut to the columns the models have
    when it runs (``spam`` went, ``last_source_seq`` came with migration 0002); a column not
    made here gets its default. More (tags, read markers) can be seeded here from ``rng``.
    """
    start = time.perf_counter()
    with transaction(make_session_factory(engine)) as session:
        identity = directory.identity_public(session)
        newsroom_key_id = directory.current_newsroom_key(session, identity).key_id
        admin = session.scalars(select(Journalist).where(Journalist.is_admin)).first()
        if admin is None or admin.key_id is None:
            raise RuntimeError("the instance has no admin with a key")
        admin_id, admin_key_id = admin.id, admin.key_id
    ids = next_ids(engine)
    today = datetime.datetime.now(datetime.UTC).date()
    statuses, status_weights = seeded_statuses()
    counts = items_per_source(n_sources, n_items, rng)
    names = designations(n_sources, rng)
    seeded: list[SeededSource] = []
    kinds: Counter[int] = Counter()
    wraps = 0
    # Sources first: items name them, wraps name items.
    batches: dict[str, list[dict[str, Any]]] = {name: [] for name in SEEDED_TABLES}
    sources_rows, item_rows, wrap_rows = batches.values()
    columns = {name: set(table(name).c.keys()) for name in SEEDED_TABLES}
    with engine.begin() as conn:

        def flush(force: bool = False) -> None:
            if not force and len(item_rows) < INSERT_BATCH:
                return
            for name, rows in batches.items():
                if rows:
                    keep = columns[name]
                    conn.execute(
                        insert(table(name)),
                        [{k: v for k, v in r.items() if k in keep} for r in rows],
                    )
                    rows.clear()

        for index, (count, designation) in enumerate(zip(counts, names, strict=True)):
            source_id = ids["sources"] + index
            public_id = rng.randbytes(16)
            x25519 = rng.randbytes(32)
            source_key_id = PublicKeys(Role.SOURCE, x25519).key_id
            last_active = today - datetime.timedelta(days=rng.randrange(365))
            created = last_active - datetime.timedelta(days=rng.randrange(90))
            status = rng.choices(statuses, status_weights)[0]
            starred = rng.random() < 0.1
            assigned = status != SOURCE_STATUS_NEW and rng.random() < 0.5
            sources_rows.append(
                {
                    "id": source_id,
                    "public_id": public_id,
                    "lookup_hash": rng.randbytes(32),
                    "x25519": x25519,
                    "designation": designation,
                    "created_on": created,
                    "last_active_on": last_active,
                    "next_seq": count + 1,
                    "last_source_seq": 0,  # set below, once the kinds are drawn
                    "status": status,
                    "starred": starred,
                    "spam": False,
                    "assignee_id": admin_id if assigned else None,
                }
            )
            seeded.append(
                SeededSource(public_id, designation, last_active, status, starred, assigned, count)
            )
            source_row = sources_rows[-1]
            span = (last_active - created).days
            days = sorted(rng.randrange(span + 1) for _ in range(count - 1))
            for seq in range(1, count + 1):
                kind = KIND_MESSAGE if seq == 1 else rng.choices(LATER_KINDS, LATER_KIND_WEIGHTS)[0]
                signed = kind in (KIND_REPLY, KIND_NOTE)
                if not signed:
                    source_row["last_source_seq"] = seq
                item_id = ids["items"] + sum(kinds.values())
                kinds[kind] += 1
                day = last_active if seq == count else created + datetime.timedelta(days[seq - 1])
                item_rows.append(
                    {
                        "id": item_id,
                        "public_id": rng.randbytes(16),
                        "source_id": source_id,
                        "seq": seq,
                        "kind": kind,
                        "version": envelope.VERSION,
                        "blob_id": rng.randbytes(16).hex(),
                        "blob_size": blob_size_of(kind, rng),
                        "sealed_meta": rng.randbytes(envelope.SEALED_META_BYTES),
                        "signer_key_id": admin_key_id if signed else None,
                        "signature": rng.randbytes(envelope.SIGNATURE_BYTES) if signed else None,
                        "author_journalist_id": admin_id if signed else None,
                        "created_on": day,
                    }
                )
                recipients = [newsroom_key_id] + ([source_key_id] if kind == KIND_REPLY else [])
                for key_id in recipients:
                    wrap_rows.append(
                        {
                            "id": ids["wraps"] + wraps,
                            "item_id": item_id,
                            "key_id": key_id,
                            "algorithm": envelope.WRAP_ALGORITHM,
                            "wrap": rng.randbytes(envelope.WRAP_BYTES),
                        }
                    )
                    wraps += 1
            flush()
        flush(force=True)
        if conn.dialect.name == "postgresql":
            for name in SEEDED_TABLES:
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'),"
                        f" (SELECT max(id) FROM {name}))"
                    )
                )
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE sources, items, wraps")
    return Seeded(seeded, kinds, wraps, time.perf_counter() - start)


# --------------------------------------------------------------------------- the server


def read_status(pid: int) -> dict[str, int]:
    """The ``Vm*`` lines of ``/proc/<pid>/status``, in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Vm"):
            name, value = line.split(":", 1)
            out[name] = int(value.split()[0])
    return out


def reset_peak(pid: int) -> bool:
    """Reset a process's ``VmHWM`` to its current RSS (Linux 4.0+); False if refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (0 if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)"; comm may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def processes() -> Iterator[tuple[int, int, str]]:
    """(pid, parent pid, command name) of every process."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        yield int(entry.name), int(stat.rsplit(")", 1)[1].split()[1]), comm


@dataclass
class Server:
    """The journalist app under gunicorn: the master is the process we started."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    database: str | None  # its PostgreSQL database's name (None on SQLite)

    def workers(self) -> list[int]:
        return sorted(pid for pid, ppid, _ in processes() if ppid == self.process.pid)

    def backends(self) -> list[int]:
        """The PostgreSQL backends connected to its database (named in their titles)."""
        if self.database is None:
            return []
        found = []
        for pid, _, comm in processes():
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes() if comm == "postgres" else b""
            except OSError:
                continue
            if f" {self.database} ".encode() in title.replace(b"\0", b" "):
                found.append(pid)
        return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(config: Config, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIPBOX_")}
    env.update(
        TIPBOX_DATA_DIR=str(config.data_dir),
        TIPBOX_DATABASE_URL=config.database_url,
        TIPBOX_KEYS_DIR=str(config.keys_dir),
        TIPBOX_BLOB_DIR=str(config.blob_dir),
        TMPDIR=str(tmp),
    )
    return env


def start_server(config: Config, tmp: Path) -> Server:
    """Start ``python -m tipbox.serve journalist`` with default workers; wait for /healthz."""
    port = free_port()
    log = tmp / "server.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tipbox.serve", "journalist", "--bind", f"127.0.0.1:{port}"],
            env=server_env(config, tmp),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    url = make_url(config.database_url)
    server = Server(
        process, port, log, url.database if url.get_backend_name() != "sqlite" else None
    )
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        probe = Client(port)
        try:
            healthy = probe.request("GET", "/healthz").status == 200
        except OSError:
            healthy = False
        finally:
            probe.close()
        # Every worker must have been forked before anything is measured.
        if healthy and len(server.workers()) == default_workers():
            return server
        time.sleep(0.2)
    stop_server(server)
    raise RuntimeError(f"the journalist app did not start; its log:\n{log.read_text()[-3000:]}")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=30)


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy since boot (``/proc/stat``, all CPUs)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / CLOCK_TICKS  # less idle and iowait


def cpu_snapshot(server: Server) -> dict[str, float]:
    """CPU seconds so far: this process (the clients), gunicorn, each PostgreSQL backend of
    the run's database, and the whole machine."""
    snap = {"client": time.process_time(), "machine": machine_busy()}
    snap["gunicorn"] = sum(cpu_seconds(pid) for pid in [server.process.pid, *server.workers()])
    for pid in server.backends():
        snap[f"pg{pid}"] = cpu_seconds(pid)
    return snap


def cpu_spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds between two snapshots, postgres backends summed; "others" is the rest of
    the machine (PostgreSQL's background writers included)."""
    spent = {key: after[key] - before[key] for key in ("client", "gunicorn")}
    spent["postgres"] = sum(
        value - before.get(key, 0.0) for key, value in after.items() if key.startswith("pg")
    )
    ours = sum(spent.values())
    spent["others"] = max(0.0, after["machine"] - before["machine"] - ours)
    return spent


# --------------------------------------------------------------------------- login


FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}


def log_in(port: int, admin: Credentials) -> tuple[dict[str, str], float]:
    """Log in as a browser does; the session's cookies and the POST's time (Argon2id)."""
    client = Client(port)
    try:
        page = client.request("GET", "/login")
        if page.status != 200:
            raise Unexpected(f"GET /login: {page.status}")
        fields = {
            "csrf_token": csrf_token(page.text),
            "username": admin.username,
            "passphrase": admin.passphrase,
            "code": pyotp.TOTP(admin.totp_secret).now(),
        }
        start = time.perf_counter()
        answer = client.request(
            "POST", "/login", urllib.parse.urlencode(fields).encode(), FORM_HEADERS
        )
        seconds = time.perf_counter() - start
        if answer.status != 303 or not answer.location.endswith("/"):
            raise Unexpected(f"POST /login: {answer.status} {answer.location}".rstrip())
        return dict(client.cookies), seconds
    finally:
        client.close()


# --------------------------------------------------------------------------- inbox


@dataclass(frozen=True)
class Variant:
    """One inbox URL and how many rows its page must list."""

    path: str
    rows: int


@dataclass(frozen=True)
class InboxRequest:
    """One kind of inbox request: the URLs it goes through in turn."""

    label: str
    variants: list[Variant]


def rows_on_page(matching: int, page: int) -> int:
    return max(0, min(PAGE_SIZE, matching - (page - 1) * PAGE_SIZE))


def inbox_variant(
    seeded: list[SeededSource],
    params: Mapping[str, str],
    matches: Callable[[SeededSource], bool] = lambda _: True,
) -> Variant:
    """The URL of ``params`` and the rows it lists: the page's share of the seeded sources
    that ``matches`` (what the query parameters should select)."""
    query = urllib.parse.urlencode(params)
    matching = sum(1 for source in seeded if matches(source))
    return Variant(
        "/" + (f"?{query}" if query else ""), rows_on_page(matching, int(params.get("page", "1")))
    )


def inbox_requests(seeded: list[SeededSource], rng: random.Random) -> list[InboxRequest]:
    """The kinds of inbox request measured. A filter or sort is one more row here: its query
    parameters and the predicate over ``SeededSource`` that says which sources it lists."""
    pages = max(1, math.ceil(len(seeded) / PAGE_SIZE))
    middle = max(1, pages // 2)
    picks = rng.sample(seeded, min(SEARCH_SAMPLES, len(seeded)))

    def search(fragment: str) -> Variant:
        return inbox_variant(seeded, {"q": fragment}, lambda s: fragment in s.designation.lower())

    return [
        InboxRequest("first page", [inbox_variant(seeded, {})]),
        InboxRequest(f"page {middle} of {pages}", [inbox_variant(seeded, {"page": str(middle)})]),
        InboxRequest(f"page {pages} of {pages}", [inbox_variant(seeded, {"page": str(pages)})]),
        InboxRequest("search: a designation", [search(s.designation) for s in picks]),
        InboxRequest("search: 3 letters", [search(s.designation[:3]) for s in picks]),
    ]


@dataclass
class Load:
    """What one kind of inbox request did."""

    latencies: list[float]
    errors: Counter[str]
    seconds: float
    cpu: dict[str, float]
    rows: int  # rows listed, summed over the answers

    @property
    def done(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0


def get_inbox(client: Client, variant: Variant) -> tuple[float, int]:
    """One inbox request: its time and the rows it listed (checked against the variant)."""
    start = time.perf_counter()
    answer = client.request("GET", variant.path)
    seconds = time.perf_counter() - start
    if answer.status != 200:
        raise Unexpected(f"GET {variant.path}: {answer.status} {answer.location}".rstrip())
    rows = listed_rows(answer.text)
    if rows != variant.rows:
        raise Unexpected(f"GET {variant.path}: {rows} rows listed, {variant.rows} expected")
    return seconds, rows


def run_inbox(
    server: Server, cookies: Mapping[str, str], request: InboxRequest, total: int
) -> Load:
    """``total`` requests of ``request`` from ``CLIENTS`` threads, each on its own connection."""
    lock = threading.Lock()
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    listed = 0
    issued = 0
    barrier = threading.Barrier(CLIENTS + 1, timeout=60)

    def loop() -> None:
        nonlocal issued, listed
        client = Client(server.port, cookies)
        barrier.wait()
        try:
            while True:
                with lock:
                    if issued >= total:
                        return
                    variant = request.variants[issued % len(request.variants)]
                    issued += 1
                try:
                    seconds, rows = get_inbox(client, variant)
                except Exception as exc:  # counted and reported; the client goes on
                    with lock:
                        errors[f"{type(exc).__name__}: {exc}"[:120]] += 1
                    continue
                with lock:
                    latencies.append(seconds)
                    listed += rows
        finally:
            client.close()

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    before = cpu_snapshot(server)
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join(timeout=total * REQUEST_TIMEOUT)
    seconds = time.perf_counter() - start
    cpu = cpu_spent(before, cpu_snapshot(server))
    if any(thread.is_alive() for thread in threads):
        errors["a client thread did not finish"] += 1
    return Load(latencies, errors, seconds, cpu, listed)


def phase_inbox(
    server: Server, cookies: Mapping[str, str], requests: list[InboxRequest], plan: Plan
) -> tuple[dict[str, tuple[InboxRequest, Load]], list[Load]]:
    """Every kind of inbox request: a warm-up round (checked, not reported), then measured."""
    loads, warm_ups = {}, []
    for request in requests:
        progress(f"inbox: {request.label}")
        warm_ups.append(run_inbox(server, cookies, request, 2 * CLIENTS))
        loads[request.label] = (request, run_inbox(server, cookies, request, plan.requests))
    return loads, warm_ups


# --------------------------------------------------------------------------- download


def file_blocks(total: int, seed: int) -> Iterator[bytes]:
    """``total`` bytes of deterministic content: one random 1 MiB block, each copy starting
    with its own number (so no two MiB are alike), cut at ``total``."""
    base = random.Random(seed).randbytes(MIB)
    for index in range(math.ceil(total / MIB)):
        block = index.to_bytes(8, "big") + base[8:]
        yield block[: min(MIB, total - index * MIB)]


@dataclass(frozen=True)
class StoredFile:
    """The file item made for the download."""

    item_id: bytes
    source_id: bytes
    blob_id: str
    blob_size: int
    size: int
    content_key: bytes = field(repr=False)
    seconds: float  # to encrypt and store it


def add_file(config: Config, source_id: bytes, total: int) -> StoredFile:
    """Encrypt ``total`` bytes into a file item of ``source_id`` through the server path's
    own code (``EncryptingUpload``, ``accept_server_submission``), as an upload would."""
    store = FilesystemBlobStore(config.blob_dir)
    limits = replace(Limits.from_config(config), max_file_bytes=total)
    start = time.perf_counter()
    upload = EncryptingUpload(store, source_id, "benchmark.bin", "application/octet-stream", total)
    for block in file_blocks(total, SEED):
        upload.write(block)
    upload.finish()
    engine = make_engine(config)
    try:
        with transaction(make_session_factory(engine)) as session:
            identity = directory.identity_public(session)
            accept_server_submission(session, store, identity, source_id, "", [upload], limits)
    finally:
        engine.dispose()
    assert upload.info is not None
    return StoredFile(
        upload.item_id,
        source_id,
        upload.blob_id,
        upload.info.blob_length,
        total,
        upload.content_key,
        time.perf_counter() - start,
    )


@dataclass(frozen=True)
class Download:
    """One download through the journalist app."""

    seconds: float
    received: int
    content_length: int
    same_content: bool  # every byte read equals the file's, and none is missing
    cpu: dict[str, float]
    error: str = ""


def download(server: Server, cookies: Mapping[str, str], stored: StoredFile) -> Download:
    """GET the file a MiB at a time, comparing each MiB with the content made again."""
    before = cpu_snapshot(server)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=DOWNLOAD_TIMEOUT)
    expected = file_blocks(stored.size, SEED)
    same = True
    received = content_length = 0
    error = ""
    start = time.perf_counter()
    try:
        path = f"/items/{stored.item_id.hex()}/download"
        conn.request("GET", path, headers=cookie_header(cookies))
        answer = conn.getresponse()
        content_length = int(answer.getheader("Content-Length", "-1"))
        if answer.status != 200:
            error = f"GET download: {answer.status}"
        # read(n) gives n bytes until the body ends (fewer if the server cut it short), so
        # the pieces line up with the content's MiB blocks.
        while not error and (piece := answer.read(MIB)):
            received += len(piece)
            same = same and piece == next(expected, b"")
    except (OSError, http.client.HTTPException) as exc:
        error = f"{type(exc).__name__}: {exc}"[:120]
    finally:
        seconds = time.perf_counter() - start
        conn.close()
    same = same and next(expected, None) is None
    return Download(
        seconds, received, content_length, same, cpu_spent(before, cpu_snapshot(server)), error
    )


def decrypt_in_process(stored: StoredFile, blob_path: Path, variant: str) -> float:
    """Decrypt the stored blob here, discarding the plaintext: with ``envelope.decrypt_body``
    (every check of the format) or with raw secretstream pulls (as benchmarks/crypto.py)."""
    ad = envelope.additional_data(envelope.Kind.FILE, stored.source_id, stored.item_id)
    with blob_path.open("rb") as blob:
        start = time.perf_counter()
        if variant == "raw":
            state = sodium.crypto_secretstream_xchacha20poly1305_state()
            body_key, _ = envelope.content_subkeys(stored.content_key)
            sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, blob.read(24), body_key)
            chunk_ad: bytes | None = ad
            while sealed := blob.read(CHUNK + 17):
                sodium.crypto_secretstream_xchacha20poly1305_pull(state, sealed, chunk_ad)
                chunk_ad = None
        else:
            for _ in envelope.decrypt_body(stored.content_key, ad, blob, stored.size):
                pass
        return time.perf_counter() - start


@dataclass
class DownloadResult:
    """Phase 3's result."""

    stored: StoredFile
    downloads: list[Download]
    in_process: dict[str, list[float]]  # variant -> seconds of each run
    peak_reset: bool
    # pid -> (VmHWM before, VmRSS at the first download's start, VmHWM over the downloads), KiB
    memory: dict[int, tuple[int, int, int]]
    master: int

    @property
    def downloads_ok(self) -> bool:
        return all(
            not d.error and d.received == d.content_length == self.stored.size and d.same_content
            for d in self.downloads
        )


def phase_download(
    server: Server, cookies: Mapping[str, str], config: Config, plan: Plan, source_id: bytes
) -> DownloadResult:
    """Phase 3: store one file, download it ``plan.repeats`` times, then decrypt it here."""
    progress(f"download: encrypting a {size_label(plan.file_bytes)} file item")
    stored = add_file(config, source_id, plan.file_bytes)
    blob_path = FilesystemBlobStore(config.blob_dir).path(stored.blob_id)

    pids = [server.process.pid, *server.workers()]
    since_start = {pid: read_status(pid)["VmHWM"] for pid in pids}
    # The login's Argon2id (256 MiB) is in some worker's peak: start afresh.
    peak_reset = all([reset_peak(pid) for pid in pids])
    at_start = {pid: read_status(pid)["VmRSS"] for pid in pids}
    downloads = []
    for run in range(plan.repeats):
        progress(f"download {run + 1} of {plan.repeats}")
        downloads.append(download(server, cookies, stored))
    during = {pid: read_status(pid)["VmHWM"] for pid in pids}

    in_process: dict[str, list[float]] = {"envelope": [], "raw": []}
    for run in range(plan.repeats):
        progress(f"in-process decryption {run + 1} of {plan.repeats}")
        for variant in in_process:  # interleaved, as benchmarks/crypto.py does
            in_process[variant].append(decrypt_in_process(stored, blob_path, variant))
    return DownloadResult(
        stored,
        downloads,
        in_process,
        peak_reset,
        {pid: (since_start[pid], at_start[pid], during[pid]) for pid in pids},
        server.process.pid,
    )


# --------------------------------------------------------------------------- setup


@dataclass
class Database:
    """A database of the run's own: on the server of ``--database-url``, or a SQLite file."""

    server_url: str | None  # None for SQLite
    name: str = field(default_factory=lambda: f"tipbox_bench_{secrets.token_hex(6)}")
    version: str = ""
    created: bool = False

    def url(self, data_dir: Path) -> str:
        if self.server_url is None:
            return f"sqlite:///{data_dir / 'tipbox.sqlite'}"
        return make_url(self.server_url).set(database=self.name).render_as_string(False)

    def _admin(self, sql: str) -> str:
        assert self.server_url is not None
        engine = create_engine(self.server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            with engine.connect() as conn:
                result = conn.exec_driver_sql(sql)
                return str(result.scalar()) if result.returns_rows else ""
        finally:
            engine.dispose()

    def create(self) -> None:
        if self.server_url is None:
            self.version = sqlite3.sqlite_version
            return
        self.version = self._admin("SHOW server_version")
        self.created = True  # from here on, drop() must run whatever happens
        self._admin(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        if self.created:
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def describe(self) -> str:
        if self.server_url is None:
            return f"SQLite {self.version}, a file in a temporary folder (deleted after)"
        url = make_url(self.server_url)
        return (
            f"PostgreSQL {self.version} at {url.host}:{url.port},"
            f" fresh database {self.name} (dropped after)"
        )


def init(data_dir: Path, db: Database) -> tuple[Config, Credentials]:
    """Migrate the database and initialise an instance with the default (real) costs."""
    data_dir.mkdir(mode=0o700)
    config = Config.for_data_dir(data_dir, database_url=db.url(data_dir))
    upgrade(config)
    engine = make_engine(config)
    try:
        with transaction(make_session_factory(engine)) as session:
            result = instance.init_instance(
                session, config, name="Benchmark newsroom", admin_username="admin"
            )
    finally:
        engine.dispose()
    return config, result.admin


# --------------------------------------------------------------------------- report


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def text_table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def size_label(total: int) -> str:
    return f"{total // GIB} GiB" if total % GIB == 0 else f"{total // MIB} MiB"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def seeding_table(seeded: Seeded) -> str:
    kinds = seeded.kinds
    items = sum(kinds.values())
    per_source = [s.items for s in seeded.sources]
    rows = [
        [
            "sources",
            f"{len(seeded.sources):,}",
            f"items per source: median {statistics.median(per_source):g}, max {max(per_source):,}",
        ],
        [
            "items",
            f"{items:,}",
            f"{kinds[KIND_MESSAGE]:,} messages, {kinds[KIND_FILE]:,} files,"
            f" {kinds[KIND_REPLY]:,} replies, {kinds[KIND_NOTE]:,} notes",
        ],
        ["wraps", f"{seeded.wraps:,}", "newsroom key; replies also the source's key"],
    ]
    done = f"seeded in {seeded.seconds:,.1f} s"
    return text_table(rows, [done, "rows", "spread"])


def inbox_table(loads: dict[str, tuple[InboxRequest, Load]], postgres: bool) -> str:
    """Latency and CPU per kind of inbox request (SQLite's CPU is in gunicorn's)."""
    rows = []
    for request, load in loads.values():
        latencies = load.latencies or [0.0]
        per = max(load.done, 1)
        rows.append(
            [
                request.label,
                f"{load.done:,}",
                f"{sum(load.errors.values())}",
                f"{load.rate:,.1f}",
                ms(percentile(latencies, 0.5)),
                ms(percentile(latencies, 0.99)),
                ms(max(latencies)),
                f"{load.rows / per:,.0f}",
                ms(load.cpu["gunicorn"] / per),
                ms(load.cpu["postgres"] / per) if postgres else "-",
                request.variants[0].path,
            ]
        )
    header = [f"inbox GET, {CLIENTS} clients", "200s", "errors", "per s", "p50 ms", "p99 ms"]
    extra = ["max ms", "rows", "gunicorn CPU ms", "postgres CPU ms", "first URL"]
    return text_table(rows, [*header, *extra])


def mb_s(total: int, seconds: float) -> float:
    return total / seconds / 1e6 if seconds else 0.0


def download_table(result: DownloadResult) -> str:
    total = result.stored.size
    raw_best = mb_s(total, min(result.in_process["raw"]))
    timed = {
        "GET /items/<id>/download (HTTP, gunicorn)": [d.seconds for d in result.downloads],
        "envelope.decrypt_body, in-process": result.in_process["envelope"],
        "raw secretstream pull, in-process": result.in_process["raw"],
    }
    rows = []
    for label, seconds in timed.items():
        best = mb_s(total, min(seconds))
        rows.append(
            [
                label,
                f"{min(seconds):,.2f}",
                f"{best:,.0f}",
                f"{mb_s(total, statistics.median(seconds)):,.0f}",
                f"{best / raw_best:.2f}" if raw_best else "-",
            ]
        )
    header = [f"{size_label(total)} file, decrypting", "best s", "best MB/s", "median MB/s"]
    main = text_table(rows, [*header, "of raw"])
    cpu_rows = []
    for index, d in enumerate(result.downloads, 1):
        checked = d.error or ("every byte as sent" if d.same_content else "CONTENT DIFFERS")
        cpu_rows.append(
            [
                f"download {index}",
                f"{d.received:,}",
                f"{d.content_length:,}",
                f"{mb_s(total, d.seconds):,.0f}",
                f"{d.cpu['gunicorn']:,.2f}",
                f"{d.cpu['client']:,.2f}",
                f"{d.cpu['others']:,.2f}",
                checked,
            ]
        )
    header = ["each download", "bytes read", "Content-Length", "MB/s", "gunicorn CPU s"]
    each = text_table(cpu_rows, [*header, "client CPU s", "others CPU s", "check"])
    return main + "\n\n" + each


def memory_table(result: DownloadResult) -> str:
    rows = []
    for pid, (since_start, at_start, during) in sorted(
        result.memory.items(), key=lambda item: (item[0] != result.master, -item[1][2])
    ):
        role = "master" if pid == result.master else "worker"
        rows.append(
            [
                f"gunicorn {role} {pid}",
                f"{since_start / 1024:,.0f}",
                f"{at_start / 1024:,.0f}",
                f"{during / 1024:,.0f}",
            ]
        )
    during_label = "VmHWM in downloads" if result.peak_reset else "VmHWM (not reset)"
    return text_table(rows, ["server memory, MiB", "VmHWM before", "VmRSS at start", during_label])


def print_header(
    plan: Plan,
    db: Database,
    started: datetime.datetime,
    load_before: float,
    seeded: Seeded,
    login_seconds: float,
    stored: StoredFile,
) -> None:
    print("tipbox journalist app benchmark (benchmarks/journalist.py)")
    print(f"  date      {started.strftime('%Y-%m-%d %H:%M UTC')}")
    print(
        f"  python    {platform.python_version()} ({platform.python_implementation()}),"
        f" {platform.system()} {platform.machine()}"
    )
    print(
        f"  machine   {os.cpu_count()} CPUs ({cpu_model()}), shared by server, database and"
        f" clients; load average {load_before:.2f} before the run"
    )
    print(f"  database  {db.describe()}")
    print(
        f"  server    python -m tipbox.serve journalist: gunicorn gthread, {default_workers()}"
        f" workers x {THREADS} threads (the default), keep-alive {KEEPALIVE_SECONDS} s"
    )
    print(
        f"  data      {len(seeded.sources):,} sources, {sum(seeded.kinds.values()):,} items,"
        f" {seeded.wraps:,} wraps, bulk-inserted (random bytes for the encrypted columns);"
        f" {'--quick' if plan.quick else 'full run'}"
    )
    print(
        f"  login     once, as the admin (Argon2id opslimit 3, 256 MiB: {login_seconds:.1f} s);"
        " the session cookie is shared by every client"
    )
    print(
        f"  inbox     {plan.requests:,} requests per row after {2 * CLIENTS} warm-up ones;"
        f" {CLIENTS} client threads in this process, one keep-alive connection each;"
        f" {PAGE_SIZE} sources a page"
    )
    print(
        f"  file      {size_label(plan.file_bytes)} ({stored.size:,} bytes, blob"
        f" {stored.blob_size:,} bytes), encrypted and stored in {stored.seconds:.1f} s through"
        f" EncryptingUpload; {plan.repeats} downloads and {plan.repeats} in-process runs each"
    )
    print()


def report_checks(loads: list[Load], result: DownloadResult) -> int:
    """Print the errors and the targets; 0 when all is well."""
    errors: Counter[str] = Counter()
    for load in loads:
        errors.update(load.errors)
    for reason, count in errors.most_common(10):
        print(f"error x{count}: {reason}")
    workers = [during for pid, (_, _, during) in result.memory.items() if pid != result.master]
    peak_mib = max(workers, default=0) / 1024
    checks = {
        "every inbox answer a 200 with the rows expected (0 errors)": not errors,
        "every download complete and equal to the file, byte for byte": result.downloads_ok,
        f"worker peak RSS in the downloads < {PEAK_RSS_TARGET_MIB} MiB ({peak_mib:,.0f} MiB)": (
            peak_mib < PEAK_RSS_TARGET_MIB and result.peak_reset
        ),
    }
    print("targets:")
    for check, ok in checks.items():
        print(f"  {'met    ' if ok else 'NOT MET'}  {check}")
    return 0 if all(checks.values()) else 1


# --------------------------------------------------------------------------- main


def run(plan: Plan, db: Database) -> int:
    started = datetime.datetime.now(datetime.UTC)
    load_before = os.getloadavg()[0]
    rng = random.Random(SEED)
    tmp = Path(tempfile.mkdtemp(prefix="tipbox-bench-journalist-"))
    server: Server | None = None
    try:
        db.create()
        config, admin = init(tmp / "instance", db)
        progress(f"seeding {plan.sources:,} sources and {plan.items:,} items")
        engine = make_engine(config)
        try:
            seeded = seed_inbox(engine, plan.sources, plan.items, rng)
        finally:
            engine.dispose()
        progress(f"seeded in {seeded.seconds:.1f} s; starting the journalist app")
        server = start_server(config, tmp)
        cookies, login_seconds = log_in(server.port, admin)
        inbox, warm_ups = phase_inbox(server, cookies, inbox_requests(seeded.sources, rng), plan)
        result = phase_download(server, cookies, config, plan, seeded.sources[0].public_id)
    except BaseException:
        if server is not None:
            print(f"server log:\n{server.log.read_text()[-3000:]}", file=sys.stderr)
        raise
    finally:
        if server is not None:
            stop_server(server)
        db.drop()
        shutil.rmtree(tmp, ignore_errors=True)

    print_header(plan, db, started, load_before, seeded, login_seconds, result.stored)
    print(seeding_table(seeded))
    print()
    print(inbox_table(inbox, postgres=db.server_url is not None))
    print()
    print(download_table(result))
    print()
    print(memory_table(result))
    print()
    return report_checks([*warm_ups, *(load for _, load in inbox.values())], result)


def main() -> int:
    parser = argparse.ArgumentParser(description="tipbox journalist app benchmark")
    parser.add_argument(
        "--quick", action="store_true", help="1,000 sources, 10,000 items, a 64 MiB file"
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="a PostgreSQL server URL, used only to create and drop the run's own database",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="downloads and in-process decryptions of the file (the best is reported)",
    )
    parser.add_argument(
        "--sqlite", action="store_true", help="use a SQLite file instead of PostgreSQL"
    )
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    plan = replace(QUICK if args.quick else FULL, repeats=args.repeat)
    return run(plan, Database(None if args.sqlite else normalise_url(args.database_url)))


if __name__ == "__main__":
    raise SystemExit(main())
