"""Source app benchmark: submissions, new sources and a large upload, through gunicorn.

Run from the repository root::

    .venv/bin/python -m benchmarks.source          # 2,000 submissions per path, 200 sources, 1 GiB
    .venv/bin/python -m benchmarks.source --quick  # 200 submissions per path, 32 sources, 64 MiB

Setup: a fresh PostgreSQL database on the server of ``--database-url`` (created for the run,
dropped after), migrated and initialised with ``tipbox.instance.init_instance`` and the
default ``Config`` (the real Argon2id costs), blobs in a temporary folder, and the source app
run as ``python -m tipbox.serve source`` with its default workers and threads. The per-source
submission budget and the new-sources budget are set so high that they are never met: this
benchmark measures what the work costs, benchmarks/flood.py what the budgets do.

1. Submissions: 16 client threads, each its own source (codename got and confirmed first),
   loop GET /submit then POST /submit, on the server path (``message``, encrypted by the
   server) and on the browser path (the envelope made here with ``tipbox.crypto.envelope``,
   exactly as the page's script makes it from the form's data attributes).
2. New sources: 16 client threads each loop landing page, POST /generate, POST /confirm,
   GET /submit, POST /submit. Two Argon2id runs per source; past the app's budget the
   answer is 503 with ``Retry-After``, which the client honours and counts.
3. One upload of 1 GiB on the server path, generated on the fly and streamed, with the
   gunicorn processes' peak RSS (``VmHWM``, reset just before the upload through
   ``/proc/<pid>/clear_refs``).

Every answer is checked (a submission must be a 303 to ``/submit?sent=1``) and errors are
counted. The clients run in this process, on the same machine as the server and PostgreSQL,
so they compete for the same CPUs: the CPU table says how much each side took.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import html
import http.client
import json
import os
import re
import secrets
import time
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

from sqlalchemy import func, select

from benchmarks._common import (
    GIB,
    MIB,
    MemoryWatch,
    ProcessMemory,
    memory_table,
    ms,
    percentile,
    platform_label,
    print_errors,
    print_targets,
    python_label,
    scratch_folder,
    size_label,
    text_table,
    utc_stamp,
)
from benchmarks._database import Database, add_database_url, init_instance
from benchmarks._results import Results, publish
from benchmarks._server import (
    FORM_HEADERS,
    Client,
    Load,
    Response,
    Server,
    Unexpected,
    cpu_snapshot,
    cpu_spent,
    csrf_token,
    run_clients,
    server_label,
    serving,
)
from tipbox.config import Config
from tipbox.crypto import envelope
from tipbox.crypto.directory import Status, verify_entry
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import Role
from tipbox.db import make_engine, make_session_factory, normalise_url, transaction
from tipbox.models import Item, Source
from tipbox.serve import THREADS, default_workers
from tipbox.storage import FilesystemBlobStore

CLIENTS = 16
# About 200 bytes, as a short tip is.
MESSAGE = (
    "Hello. I work in the procurement office of the regional administration and I have "
    "copies of three contracts that were signed without a tender last spring. How can I "
    "send them to you safely?"
)
UPLOAD_TIMEOUT = 600.0
MAX_BUSY_RETRIES = 30
SETUP_PARALLEL = 2  # codenames for phase 1 at most this many at once: within any budget
PEAK_RSS_TARGET_MIB = 200
# Never met here: this benchmark measures what submissions and new sources cost, and its
# 16 sources submit far faster than a person; the budgets are benchmarks/flood.py's subject.
UNMET_BUDGET = "1000000"
SERVER_ENV = {
    "TIPBOX_MAX_FILE_MIB": "2048",  # room for the 1 GiB upload (the default is 500 MiB a file)
    "TIPBOX_SUBMISSIONS_PER_HOUR": UNMET_BUDGET,  # per source
    "TIPBOX_NEW_SOURCES_PER_MINUTE": UNMET_BUDGET,  # instance-wide
}


@dataclass(frozen=True)
class Plan:
    """How much each phase does."""

    quick: bool
    submissions: int  # per path
    sources: int
    upload_bytes: int
    phase_seconds: float  # a phase takes no new work after this long


QUICK = Plan(quick=True, submissions=200, sources=32, upload_bytes=64 * MIB, phase_seconds=60)
FULL = Plan(quick=False, submissions=2000, sources=200, upload_bytes=GIB, phase_seconds=900)


# --------------------------------------------------------------------------- requests


def expect(answer: Response, status: int, what: str, location: str | None = None) -> Response:
    """``answer`` if it has ``status`` (and a Location ending in ``location``), else raise."""
    if answer.status != status or (location is not None and not answer.location.endswith(location)):
        raise Unexpected(f"{what}: {answer.status} {answer.location}".rstrip())
    return answer


@dataclass(frozen=True)
class Part:
    """One multipart/form-data part: a field, or a file when it has a file name."""

    name: str
    value: bytes
    filename: str | None = None
    content_type: str | None = None


def part_head(part: Part, boundary: str) -> bytes:
    disposition = f'form-data; name="{part.name}"'
    if part.filename is not None:
        disposition += f'; filename="{part.filename}"'
    head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
    if part.content_type is not None:
        head += f"Content-Type: {part.content_type}\r\n"
    return (head + "\r\n").encode()


def multipart(parts: list[Part]) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type."""
    boundary = "tipboxbench" + secrets.token_hex(12)
    body = b"".join(part_head(part, boundary) + part.value + b"\r\n" for part in parts)
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def form_attributes(page: str) -> dict[str, str]:
    """The ``data-*`` attributes of the submit form, as the page's script reads them."""
    match = re.search(r'<form id="submit-form"(.*?)>', page, re.DOTALL)
    if not match:
        raise Unexpected("no submit form on the page")
    return {k: html.unescape(v) for k, v in re.findall(r'(data-[a-z0-9-]+)="([^"]*)"', match[1])}


# --------------------------------------------------------------------------- source steps


@dataclass
class Busy:
    """The 503 "busy" answers one client got, and how long it waited for them."""

    answers: int = 0
    waited: float = 0.0


def post_form(
    client: Client, path: str, fields: dict[str, str], busy: Busy
) -> tuple[Response, float]:
    """POST a form; on 503 wait ``Retry-After`` and send it again. Returns the answer and
    the time of the attempt that got it."""
    body = urllib.parse.urlencode(fields).encode()
    for _ in range(MAX_BUSY_RETRIES):
        start = time.perf_counter()
        answer = client.request("POST", path, body, FORM_HEADERS)
        seconds = time.perf_counter() - start
        if answer.status != 503:
            return answer, seconds
        wait = float(answer.retry_after or 5)
        busy.answers += 1
        busy.waited += wait
        client.close()  # it would sit idle past the keep-alive timeout
        time.sleep(wait)
    raise Unexpected(f"POST {path}: still busy after {MAX_BUSY_RETRIES} tries")


def new_codename(client: Client, busy: Busy) -> tuple[str, dict[str, float]]:
    """Landing page, POST /generate, POST /confirm: the codename (which exists only in the
    codename page) and the two Argon2id requests' times."""
    landing = expect(client.request("GET", "/"), 200, "GET /")
    answer, generate = post_form(
        client, "/generate", {"csrf_token": csrf_token(landing.text)}, busy
    )
    page = expect(answer, 200, "POST /generate").text
    match = re.search(r'class="codename"[^>]*>([^<]+)<', page)
    if not match:
        raise Unexpected("POST /generate: no codename on the page")
    codename = " ".join(html.unescape(match.group(1)).split())
    answer, confirm = post_form(
        client, "/confirm", {"csrf_token": csrf_token(page), "codename": codename}, busy
    )
    expect(answer, 303, "POST /confirm", "/submit")
    return codename, {"generate": generate, "confirm": confirm}


def get_codename(client: Client, busy: Busy) -> dict[str, float]:
    """Landing page, POST /generate, POST /confirm; the two Argon2id requests' times."""
    return new_codename(client, busy)[1]


def server_post(page: str) -> list[Part]:
    """What the form posts without JavaScript: the message in clear, over loopback."""
    return [Part("csrf_token", csrf_token(page).encode()), Part("message", MESSAGE.encode())]


def browser_post(page: str) -> list[Part]:
    """What the page's script posts (docs/source-app.md 4.2): the message sealed here."""
    form = form_attributes(page)
    entry = verify_entry(
        bytes.fromhex(form["data-identity-ed25519"]),
        bytes.fromhex(form["data-newsroom-entry"]),
        bytes.fromhex(form["data-newsroom-signature"]),
    )
    if entry.role != Role.NEWSROOM or entry.status != Status.CURRENT:
        raise Unexpected("the form's newsroom entry is not a current newsroom key")
    source_id = bytes.fromhex(form["data-source-id"])
    item_id = bytes.fromhex(form["data-item-ids"].split(",")[0])
    sealed = envelope.seal_item(
        envelope.Kind.MESSAGE, source_id, item_id, MESSAGE.encode(), {entry.key_id: entry.x25519}
    )
    manifest = {
        "version": 1,
        "source_id": source_id.hex(),
        "items": [
            {
                "item_id": item_id.hex(),
                "kind": int(envelope.Kind.MESSAGE),
                "key_id": entry.key_id.hex(),
                "sealed_meta": base64.b64encode(sealed.sealed_meta).decode(),
                "wrap": base64.b64encode(sealed.wraps[entry.key_id]).decode(),
                "part": "blob0",
            }
        ],
    }
    return [
        Part("csrf_token", csrf_token(page).encode()),
        Part("mode", b"browser"),
        Part("manifest", json.dumps(manifest).encode()),
        Part("blob0", sealed.blob, filename="blob", content_type="application/octet-stream"),
    ]


POSTS: dict[str, Callable[[str], list[Part]]] = {"server": server_post, "browser": browser_post}


@dataclass(frozen=True)
class Sample:
    """One unit of work: its time, the times of some of its steps, and its 503s."""

    seconds: float
    steps: dict[str, float]
    busy: int = 0
    waited: float = 0.0


def submit(client: Client, path: str) -> Sample:
    """GET /submit (fresh ids and token), then POST /submit on ``path``: one submission."""
    try:
        start = time.perf_counter()
        page = expect(client.request("GET", "/submit"), 200, "GET /submit").text
        body, content_type = multipart(POSTS[path](page))
        post_start = time.perf_counter()
        answer = client.request("POST", "/submit", body, {"Content-Type": content_type})
        end = time.perf_counter()
        expect(answer, 303, "POST /submit", "/submit?sent=1")
    finally:
        # A fresh connection per submission lets the kernel spread the clients over the
        # workers, rather than pinning each client to the worker that accepted it first.
        client.close()
    return Sample(end - start, {"post": end - post_start})


def new_source(port: int) -> Sample:
    """A new source: codename, confirmation and a first (server path) submission."""
    client = Client(port)
    busy = Busy()
    start = time.perf_counter()
    try:
        steps = get_codename(client, busy)
        first = submit(client, "server")
    finally:
        client.close()
    return Sample(time.perf_counter() - start, {**steps, **first.steps}, busy.answers, busy.waited)


# --------------------------------------------------------------------------- phases


def codenames_for(clients: list[Client]) -> None:
    """Give every client a confirmed codename, ``SETUP_PARALLEL`` at a time (not measured)."""
    with ThreadPoolExecutor(max_workers=SETUP_PARALLEL) as pool:
        list(pool.map(get_codename, clients, [Busy() for _ in clients]))
    for client in clients:
        client.close()


def phase_submissions(
    server: Server, plan: Plan
) -> tuple[dict[str, Load[Sample]], list[Load[Sample]]]:
    """Phase 1: submissions on each path by 16 sources that already have codenames.
    Returns the measured loads by path, and the warm-ups (checked, not reported)."""
    clients = [Client(server.port) for _ in range(CLIENTS)]
    codenames_for(clients)
    loads, warm_ups = {}, []
    for path in POSTS:
        units: list[Callable[[], Sample]] = [partial(submit, client, path) for client in clients]
        # One submission per client first: connections to PostgreSQL, caches, lazy imports.
        warm_ups.append(run_clients(server, units, CLIENTS, plan.phase_seconds))
        loads[path] = run_clients(server, units, plan.submissions, plan.phase_seconds)
    return loads, warm_ups


def phase_new_sources(server: Server, plan: Plan) -> Load[Sample]:
    """Phase 2: new sources, from the landing page to a first submission."""
    units: list[Callable[[], Sample]] = [partial(new_source, server.port)] * CLIENTS
    return run_clients(server, units, plan.sources, plan.phase_seconds)


@dataclass
class Upload:
    """Phase 3's result."""

    total: int
    seconds: float
    answer: str  # "303" when stored, else what came back
    blob_size: int | None  # as recorded in the database
    disk_size: int | None  # as found in the blob store
    bucket_ok: bool  # the blob's size is that of the content's padded bucket, exactly
    memory: ProcessMemory  # gunicorn's processes over the upload
    cpu: dict[str, float]

    @property
    def stored(self) -> bool:
        expected = envelope.blob_length(self.total)
        return (
            self.answer == "303" and self.bucket_ok and self.blob_size == expected == self.disk_size
        )


def upload_post(page: str, total: int) -> tuple[Iterator[bytes], dict[str, str]]:
    """A multipart post of the page's token and one file of ``total`` bytes, made as it is
    sent (one random 1 MiB block, repeated), never whole in memory."""
    boundary = "tipboxbench" + secrets.token_hex(12)
    head = part_head(Part("csrf_token", b""), boundary) + csrf_token(page).encode() + b"\r\n"
    head += part_head(Part("files", b"", "big.bin", "application/octet-stream"), boundary)
    tail = f"\r\n--{boundary}--\r\n".encode()
    headers = {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(head) + total + len(tail)),
    }

    def body() -> Iterator[bytes]:
        yield head
        block = os.urandom(MIB)
        for _ in range(total // MIB):
            yield block
        if total % MIB:
            yield block[: total % MIB]
        yield tail

    return body(), headers


def send_upload(client: Client, body: Iterator[bytes], headers: dict[str, str]) -> str:
    """POST the upload; "303" when it was stored, else what happened."""
    try:
        answer = client.request("POST", "/submit", body, headers)
    except (OSError, http.client.HTTPException) as exc:
        return f"{type(exc).__name__}: {exc}"
    if answer.status == 303 and answer.location.endswith("/submit?sent=1"):
        return "303"
    return f"{answer.status} {answer.location}".rstrip()


def phase_upload(server: Server, plan: Plan, config: Config) -> Upload:
    """Phase 3: one large file on the server path, no JavaScript, streamed."""
    client = Client(server.port, timeout=UPLOAD_TIMEOUT)
    get_codename(client, Busy())
    page = expect(client.request("GET", "/submit"), 200, "GET /submit").text
    client.close()
    body, headers = upload_post(page, plan.upload_bytes)

    # The workers' peak so far includes the Argon2id runs (64 MiB each): start afresh.
    memory = MemoryWatch(server.process.pid, [server.process.pid, *server.workers()])
    before = cpu_snapshot(server)
    start = time.perf_counter()
    answer = send_upload(client, body, headers)
    seconds = time.perf_counter() - start
    cpu = cpu_spent(before, cpu_snapshot(server))
    memory_over_upload = memory.stop()

    source_id = bytes.fromhex(form_attributes(page)["data-source-id"])
    blob_size, disk_size = stored_file(config, source_id)
    return Upload(
        total=plan.upload_bytes,
        seconds=seconds,
        answer=answer,
        blob_size=blob_size,
        disk_size=disk_size,
        bucket_ok=blob_size is not None and is_bucket_of(blob_size, plan.upload_bytes),
        memory=memory_over_upload,
        cpu=cpu,
    )


def is_bucket_of(blob_size: int, content_size: int) -> bool:
    """Whether a blob of ``blob_size`` bytes carries exactly the padded bucket of the content."""
    try:
        bucket = envelope.padded_length_of_blob(blob_size)
    except Rejected:
        return False
    return bucket == envelope.padded_length(content_size)


def stored_file(config: Config, source_id: bytes) -> tuple[int | None, int | None]:
    """The uploaded file's blob size as recorded in the database and as found on disk."""
    engine = make_engine(config)
    try:
        with transaction(make_session_factory(engine)) as session:
            row = session.execute(
                select(Item.blob_id, Item.blob_size)
                .join(Source, Item.source_id == Source.id)
                .where(Source.public_id == source_id, Item.kind == int(envelope.Kind.FILE))
            ).one_or_none()
    finally:
        engine.dispose()
    if row is None:
        return None, None
    return row.blob_size, FilesystemBlobStore(config.blob_dir).size(row.blob_id)


def stored_messages(config: Config) -> int:
    """How many messages the database holds (to check against the 303s counted)."""
    engine = make_engine(config)
    try:
        with transaction(make_session_factory(engine)) as session:
            count = session.scalar(
                select(func.count())
                .select_from(Item)
                .where(Item.kind == int(envelope.Kind.MESSAGE))
            )
    finally:
        engine.dispose()
    return int(count or 0)


# --------------------------------------------------------------------------- report


def steps(load: Load[Sample], name: str) -> list[float]:
    return [sample.steps[name] for sample in load.samples]


def submissions_table(loads: dict[str, Load[Sample]]) -> str:
    rows = []
    for path, load in loads.items():
        total = [s.seconds for s in load.samples] or [0.0]
        post = steps(load, "post") or [0.0]
        rows.append(
            [
                f"{path} path" + ("" if load.finished else " (time limit)"),
                f"{load.done:,}",
                f"{sum(load.errors.values())}",
                f"{load.rate:,.1f}",
                ms(percentile(total, 0.5)),
                ms(percentile(total, 0.99)),
                ms(percentile(post, 0.5)),
                ms(percentile(post, 0.99)),
            ]
        )
    header = [f"submissions, {CLIENTS} clients", "303s", "errors", "per s", "p50 ms", "p99 ms"]
    return text_table(rows, [*header, "POST p50 ms", "POST p99 ms"])


def sources_table(load: Load[Sample]) -> str:
    totals = [s.seconds for s in load.samples] or [0.0]
    busy = sum(s.busy for s in load.samples)
    waited = sum(s.waited for s in load.samples)
    row = [
        "new sources" + ("" if load.finished else " (time limit)"),
        f"{load.done:,}",
        f"{sum(load.errors.values())}",
        f"{load.rate:,.2f}",
        f"{percentile(totals, 0.5):,.2f}",
        f"{percentile(totals, 0.99):,.2f}",
        f"{busy:,}",
        f"{sum(1 for s in load.samples if s.busy)}",
        f"{100 * waited / max(sum(totals), 1e-9):.0f}%",
        ms(percentile(steps(load, "generate") or [0.0], 0.5)),
        ms(percentile(steps(load, "confirm") or [0.0], 0.5)),
    ]
    header = ["codename + first submission", "sources", "errors", "per s", "p50 s", "p99 s"]
    extra = ["503s", "sources with 503", "time in waits", "generate p50 ms", "confirm p50 ms"]
    return text_table([row], [*header, *extra])


def cpu_table(loads: dict[str, Load[Sample]], cpus: int) -> str:
    """Where the CPU went, per unit of work; and how busy the machine's CPUs were (others:
    every other process, PostgreSQL's background writers included)."""
    rows = []
    for label, load in loads.items():
        per = max(load.done, 1)
        available = load.seconds * cpus or 1.0
        ours = load.cpu["client"] + load.cpu["gunicorn"] + load.cpu["postgres"]
        rows.append(
            [
                label,
                ms(load.cpu["gunicorn"] / per),
                ms(load.cpu["postgres"] / per),
                ms(load.cpu["client"] / per),
                ms(load.cpu["others"] / per),
                f"{100 * ours / available:.0f}%",
                f"{100 * (ours + load.cpu['others']) / available:.0f}%",
            ]
        )
    header = ["CPU per unit of work", "gunicorn ms", "postgres ms", "clients ms", "others ms"]
    return text_table(rows, [*header, "ours, of all CPUs", "machine busy"])


def upload_tables(up: Upload) -> str:
    mb_s = up.total / up.seconds / 1e6 if up.seconds else 0.0
    blob = f"{up.blob_size:,}" if up.blob_size is not None else "none"
    row = [
        f"{size_label(up.total)} file, server path",
        up.answer,
        f"{up.seconds:,.1f}",
        f"{mb_s:,.0f}",
        blob,
        "yes" if up.stored else "NO",
        f"{up.cpu['gunicorn']:,.1f}",
        f"{up.cpu['client']:,.1f}",
    ]
    header = ["streamed upload", "answer", "s", "MB/s", "blob bytes", "padded bucket"]
    main = text_table([row], [*header, "gunicorn CPU s", "client CPU s"])
    return main + "\n\n" + memory_table(up.memory, "upload")


def print_header(plan: Plan, db: Database, started: datetime.datetime, load_before: float) -> None:
    print("tipbox source app benchmark (benchmarks/source.py)")
    print(f"  date      {utc_stamp(started)}")
    print(f"  python    {python_label()}, {platform_label()}")
    print(
        f"  cpus      {os.cpu_count()}, shared by server, PostgreSQL and clients;"
        f" load average {load_before:.2f} before the run"
    )
    print(f"  database  {db.describe()}")
    print(f"  server    {server_label('source')}")
    print(
        "  argon2id  codename cost of Config (opslimit 3, 64 MiB); default budget of"
        f" {Config.argon2_concurrency} per worker, 503 + Retry-After beyond it"
    )
    print(
        f"  budgets   TIPBOX_SUBMISSIONS_PER_HOUR and TIPBOX_NEW_SOURCES_PER_MINUTE"
        f" {int(UNMET_BUDGET):,}: never met here (benchmarks/flood.py measures the budgets)"
    )
    print(
        f"  clients   {CLIENTS} threads in this process, each its own source and cookies;"
        " one keep-alive connection per submission (GET + POST)"
    )
    print(
        f"  counts    {plan.submissions:,} submissions per path (after {CLIENTS} warm-up),"
        f" {plan.sources:,} new sources, one {size_label(plan.upload_bytes)} upload;"
        f" {'--quick' if plan.quick else 'full run'}"
    )
    print(f"  message   {len(MESSAGE.encode())} bytes; submission = GET /submit + POST /submit")
    print(
        "  source    new source = GET /, POST /generate, POST /confirm, then one submission;"
        " 503s waited out as told"
    )
    print()


# --------------------------------------------------------------------------- main


def run(plan: Plan, db: Database) -> int:
    started = datetime.datetime.now(datetime.UTC)
    load_before = os.getloadavg()[0]
    with scratch_folder("source") as tmp, db:
        config, _ = init_instance(tmp / "instance", db)
        with serving("source", config, tmp, SERVER_ENV) as server:
            submissions, warm_ups = phase_submissions(server, plan)
            sources = phase_new_sources(server, plan)
            upload = phase_upload(server, plan, config)
            stored = stored_messages(config)

    print_header(plan, db, started, load_before)
    print(submissions_table(submissions))
    print()
    print(sources_table(sources))
    print()
    cpu_loads = {f"{path} path submission": load for path, load in submissions.items()}
    cpu_loads["new source"] = sources
    print(cpu_table(cpu_loads, os.cpu_count() or 1))
    print()
    print(upload_tables(upload))
    print()
    results = figures(plan, db, submissions, sources, upload)
    code = report_checks([*warm_ups, *submissions.values(), sources], upload, stored, results)
    print()
    publish(results)
    return code


def figures(
    plan: Plan,
    db: Database,
    submissions: dict[str, Load[Sample]],
    sources: Load[Sample],
    up: Upload,
) -> Results:
    """The run's figures for the runner's table (the targets are added after)."""
    settings = (
        f"{'--quick' if plan.quick else 'full run'}: {db.label()}, gunicorn {default_workers()}"
        f" workers x {THREADS} threads, {CLIENTS} client threads; per-source and new-source"
        " budgets set never to be met"
    )
    results = Results("source", settings)
    for path, load in submissions.items():
        total = [s.seconds for s in load.samples] or [0.0]
        results.add(
            f"{path}-path submission, p50 / p99",
            f"{ms(percentile(total, 0.5))} / {ms(percentile(total, 0.99))} ms",
            f"GET + POST /submit ({len(MESSAGE.encode())}-byte message), {load.done:,} by"
            f" {CLIENTS} sources at once, {load.rate:,.1f} per s",
        )
    totals = [s.seconds for s in sources.samples] or [0.0]
    results.add(
        "new source, p50 / p99",
        f"{percentile(totals, 0.5):,.2f} / {percentile(totals, 0.99):,.2f} s",
        f"GET /, POST /generate, POST /confirm (2 Argon2id), 1 submission; {sources.done:,} by"
        f" {CLIENTS} clients, {sources.rate:,.2f} per s, {sum(s.busy for s in sources.samples):,}"
        " 503s waited out",
    )
    mb_s = up.total / up.seconds / 1e6 if up.seconds else 0.0
    results.add(
        f"{size_label(up.total)} upload",
        f"{mb_s:,.0f} MB/s",
        "one file, server path, streamed and encrypted as it arrives; stored as its padded"
        f" bucket: {'yes' if up.stored else 'NO'}",
    )
    results.add(
        "worker peak RSS in the upload",
        f"{up.memory.worker_peak_mib:,.0f} MiB",
        "largest gunicorn worker's VmHWM, reset just before"
        + ("" if up.memory.reset else " (reset REFUSED: peak since start)"),
    )
    return results


def report_checks(loads: list[Load[Sample]], upload: Upload, stored: int, results: Results) -> int:
    """Print the errors and the targets (and add the targets to ``results``); 0 when all
    is well."""
    errors = print_errors(load.errors for load in loads)
    # Every 303 is one stored message (warm-ups, both paths, one per new source); an error
    # may also have stored one (an answer lost after the commit), which this would show.
    answered = sum(load.done for load in loads)
    peak_mib = upload.memory.worker_peak_mib
    checks = {
        "every answer as expected (0 errors)": not errors and all(x.finished for x in loads),
        f"messages stored = 303s counted ({stored:,} / {answered:,})": stored == answered,
        "upload stored as its padded bucket": upload.stored,
        f"worker peak RSS in the upload < {PEAK_RSS_TARGET_MIB} MiB ({peak_mib:,.0f} MiB)": (
            peak_mib < PEAK_RSS_TARGET_MIB and upload.memory.reset
        ),
    }
    for check, ok in checks.items():
        results.target(check, ok)
    return print_targets(checks)


def main() -> int:
    parser = argparse.ArgumentParser(description="tipbox source app benchmark")
    parser.add_argument(
        "--quick", action="store_true", help="200 submissions per path, 32 sources, 64 MiB"
    )
    add_database_url(parser)
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    return run(plan, Database(normalise_url(args.database_url)))


if __name__ == "__main__":
    raise SystemExit(main())
