"""Source app benchmark: submissions, new sources and a large upload, through gunicorn.

Run from the repository root::

    .venv/bin/python benchmarks/source.py          # 2,000 submissions per path, 200 sources, 1 GiB
    .venv/bin/python benchmarks/source.py --quick  # 200 submissions per path, 32 sources, 64 MiB

Setup: a fresh PostgreSQL database on the server of ``--database-url`` (created for the run,
dropped after), migrated and initialised with ``tipbox.instance.init_instance`` and the
default ``Config`` (the real Argon2id costs), blobs in a temporary folder, and the source app
run as ``python -m tipbox.serve source`` with its default workers and threads.

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
import math
import os
import platform
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from tipbox import instance
from tipbox.config import Config
from tipbox.crypto import envelope
from tipbox.crypto.directory import Status, verify_entry
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import Role
from tipbox.db import make_engine, make_session_factory, normalise_url, transaction, upgrade
from tipbox.models import Item, Source
from tipbox.serve import KEEPALIVE_SECONDS, THREADS, default_workers
from tipbox.storage import FilesystemBlobStore

MIB = 1 << 20
GIB = 1 << 30
CLIENTS = 16
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
# About 200 bytes, as a short tip is.
MESSAGE = (
    "Hello. I work in the procurement office of the regional administration and I have "
    "copies of three contracts that were signed without a tender last spring. How can I "
    "send them to you safely?"
)
REQUEST_TIMEOUT = 60.0
UPLOAD_TIMEOUT = 600.0
SERVER_START_SECONDS = 60.0
# gunicorn closes a keep-alive connection idle for KEEPALIVE_SECONDS; a request sent as it
# closes would fail, so a connection idle for less than that is replaced, not reused.
IDLE_RECONNECT_SECONDS = KEEPALIVE_SECONDS / 2
MAX_BUSY_RETRIES = 30
SETUP_PARALLEL = 2  # codenames for phase 1 at most this many at once: within any budget
PEAK_RSS_TARGET_MIB = 200
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


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


class Unexpected(Exception):  # noqa: N818 - reads as "an unexpected answer"
    """The server answered something other than what the step expects."""


# --------------------------------------------------------------------------- HTTP client


@dataclass(frozen=True)
class Response:
    status: int
    location: str
    retry_after: str
    text: str


class Client:
    """One source's browser: its own cookies and its own keep-alive connection."""

    def __init__(self, port: int, timeout: float = REQUEST_TIMEOUT) -> None:
        self.port = port
        self.timeout = timeout
        self.cookies: dict[str, str] = {}
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
            self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        return self._conn

    def request(
        self,
        method: str,
        path: str,
        body: bytes | Iterable[bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """Send one request on the kept connection and read the whole answer."""
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        conn = self._connection()
        try:
            conn.request(method, path, body=body, headers=sent)
            answer = conn.getresponse()
            text = answer.read().decode("utf-8", "replace")
        except BaseException:
            self.close()
            raise
        self._keep_cookies(answer)
        self._last_used = time.monotonic()
        if answer.will_close:
            self.close()
        return Response(
            answer.status,
            answer.getheader("Location", ""),
            answer.getheader("Retry-After", ""),
            text,
        )

    def _keep_cookies(self, answer: http.client.HTTPResponse) -> None:
        # Cookies are Secure, which a browser would not send over plain HTTP; this client
        # sends them anyway (only loopback traffic here).
        for header in answer.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            if value and "max-age=0" not in header.lower():
                self.cookies[name.strip()] = value
            else:
                self.cookies.pop(name.strip(), None)


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


FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}


def csrf_token(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if not match:
        raise Unexpected("no CSRF token on the page")
    return html.unescape(match.group(1))


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


def get_codename(client: Client, busy: Busy) -> dict[str, float]:
    """Landing page, POST /generate, POST /confirm; the two Argon2id requests' times."""
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
    return {"generate": generate, "confirm": confirm}


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
    """The source app under gunicorn: the master is the process we started."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    database: str  # its PostgreSQL database's name

    def workers(self) -> list[int]:
        return sorted(pid for pid, ppid, _ in processes() if ppid == self.process.pid)

    def backends(self) -> list[int]:
        """The PostgreSQL backends connected to its database (named in their titles)."""
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
        # Room for the 1 GiB upload (the default limit is 500 MiB per file).
        TIPBOX_MAX_FILE_MIB="2048",
        TMPDIR=str(tmp),
    )
    return env


def start_server(config: Config, tmp: Path) -> Server:
    """Start ``python -m tipbox.serve source`` with default workers; wait for /healthz."""
    port = free_port()
    log = tmp / "server.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tipbox.serve", "source", "--bind", f"127.0.0.1:{port}"],
            env=server_env(config, tmp),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = Server(process, port, log, str(make_url(config.database_url).database))
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        probe = Client(port, timeout=2)
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
    raise RuntimeError(f"the source app did not start; its log:\n{log.read_text()[-3000:]}")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=30)


# --------------------------------------------------------------------------- load


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy since boot (``/proc/stat``, all CPUs)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / CLOCK_TICKS  # less idle and iowait


def cpu_snapshot(server: Server) -> dict[str, float]:
    """CPU seconds so far: this process (the clients), gunicorn, each PostgreSQL backend of
    the run's database, and the whole machine (other work, including PostgreSQL's own
    background writers, shows as the difference)."""
    snap = {"client": time.process_time(), "machine": machine_busy()}
    snap["gunicorn"] = sum(cpu_seconds(pid) for pid in [server.process.pid, *server.workers()])
    for pid in server.backends():
        snap[f"pg{pid}"] = cpu_seconds(pid)
    return snap


def cpu_spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds between two snapshots, postgres processes summed (a process that ended
    in between is missed: backends live as long as the app's pooled connections)."""
    spent = {key: after[key] - before[key] for key in ("client", "gunicorn")}
    spent["postgres"] = sum(
        value - before.get(key, 0.0) for key, value in after.items() if key.startswith("pg")
    )
    ours = sum(spent.values())
    spent["others"] = max(0.0, after["machine"] - before["machine"] - ours)
    return spent


@dataclass
class Load:
    """What one phase did."""

    samples: list[Sample]
    errors: Counter[str]
    seconds: float
    cpu: dict[str, float]
    finished: bool  # False when the time limit stopped the phase early

    @property
    def done(self) -> int:
        return len(self.samples)

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0


def run_load(
    units: list[Callable[[], Sample]], total: int, time_limit: float, server: Server
) -> Load:
    """Run ``total`` units of work on one thread per entry of ``units`` (each thread calls
    its own function, so keeps its own client); take no new unit after ``time_limit``."""
    lock = threading.Lock()
    samples: list[Sample] = []
    errors: Counter[str] = Counter()
    issued = 0
    deadline = time.monotonic() + time_limit
    barrier = threading.Barrier(len(units) + 1, timeout=60)

    def loop(unit: Callable[[], Sample]) -> None:
        nonlocal issued
        barrier.wait()
        while True:
            with lock:
                if issued >= total or time.monotonic() > deadline:
                    return
                issued += 1
            try:
                sample = unit()
            except Exception as exc:  # counted and reported; the client goes on
                with lock:
                    errors[f"{type(exc).__name__}: {exc}"[:120]] += 1
                continue
            with lock:
                samples.append(sample)

    threads = [threading.Thread(target=loop, args=(unit,), daemon=True) for unit in units]
    for thread in threads:
        thread.start()
    before = cpu_snapshot(server)
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        # Past the deadline a thread only finishes the unit it has (each request is bounded).
        thread.join(timeout=max(0.0, deadline - time.monotonic()) + 3 * REQUEST_TIMEOUT)
    seconds = time.perf_counter() - start
    cpu = cpu_spent(before, cpu_snapshot(server))
    if any(thread.is_alive() for thread in threads):
        errors["a client thread did not finish"] += 1
    return Load(samples, errors, seconds, cpu, finished=issued >= total)


# --------------------------------------------------------------------------- phases


def codenames_for(clients: list[Client]) -> None:
    """Give every client a confirmed codename, ``SETUP_PARALLEL`` at a time (not measured)."""
    with ThreadPoolExecutor(max_workers=SETUP_PARALLEL) as pool:
        list(pool.map(get_codename, clients, [Busy() for _ in clients]))
    for client in clients:
        client.close()


def phase_submissions(server: Server, plan: Plan) -> tuple[dict[str, Load], list[Load]]:
    """Phase 1: submissions on each path by 16 sources that already have codenames.
    Returns the measured loads by path, and the warm-ups (checked, not reported)."""
    clients = [Client(server.port) for _ in range(CLIENTS)]
    codenames_for(clients)
    loads, warm_ups = {}, []
    for path in POSTS:
        units: list[Callable[[], Sample]] = [partial(submit, client, path) for client in clients]
        # One submission per client first: connections to PostgreSQL, caches, lazy imports.
        warm_ups.append(run_load(units, CLIENTS, plan.phase_seconds, server))
        loads[path] = run_load(units, plan.submissions, plan.phase_seconds, server)
    return loads, warm_ups


def phase_new_sources(server: Server, plan: Plan) -> Load:
    """Phase 2: new sources, from the landing page to a first submission."""
    units: list[Callable[[], Sample]] = [partial(new_source, server.port)] * CLIENTS
    return run_load(units, plan.sources, plan.phase_seconds, server)


@dataclass
class Upload:
    """Phase 3's result."""

    total: int
    seconds: float
    answer: str  # "303" when stored, else what came back
    blob_size: int | None  # as recorded in the database
    disk_size: int | None  # as found in the blob store
    bucket_ok: bool  # the blob's size is that of the content's padded bucket, exactly
    peak_reset: bool
    # pid -> (VmHWM since start, VmRSS at the upload's start, VmHWM during the upload), KiB
    memory: dict[int, tuple[int, int, int]]
    master: int
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

    pids = [server.process.pid, *server.workers()]
    since_start = {pid: read_status(pid)["VmHWM"] for pid in pids}
    # The workers' peak so far includes the Argon2id runs (64 MiB each): start afresh.
    peak_reset = all([reset_peak(pid) for pid in pids])
    at_start = {pid: read_status(pid)["VmRSS"] for pid in pids}
    before = cpu_snapshot(server)
    start = time.perf_counter()
    answer = send_upload(client, body, headers)
    seconds = time.perf_counter() - start
    cpu = cpu_spent(before, cpu_snapshot(server))
    during = {pid: read_status(pid)["VmHWM"] for pid in pids}

    source_id = bytes.fromhex(form_attributes(page)["data-source-id"])
    blob_size, disk_size = stored_file(config, source_id)
    return Upload(
        total=plan.upload_bytes,
        seconds=seconds,
        answer=answer,
        blob_size=blob_size,
        disk_size=disk_size,
        bucket_ok=blob_size is not None and is_bucket_of(blob_size, plan.upload_bytes),
        peak_reset=peak_reset,
        memory={pid: (since_start[pid], at_start[pid], during[pid]) for pid in pids},
        master=server.process.pid,
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


# --------------------------------------------------------------------------- setup


@dataclass
class Database:
    """A database of the run's own on the server of ``--database-url``."""

    server_url: str
    name: str = field(default_factory=lambda: f"tipbox_bench_{secrets.token_hex(6)}")
    version: str = ""
    created: bool = False

    @property
    def url(self) -> str:
        return make_url(self.server_url).set(database=self.name).render_as_string(False)

    def _admin(self, sql: str) -> str:
        engine = create_engine(self.server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            with engine.connect() as conn:
                result = conn.exec_driver_sql(sql)
                return str(result.scalar()) if result.returns_rows else ""
        finally:
            engine.dispose()

    def create(self) -> None:
        self.version = self._admin("SHOW server_version")
        self.created = True  # from here on, drop() must run whatever happens
        self._admin(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        if self.created:
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def init(data_dir: Path, database_url: str) -> Config:
    """Migrate the database and initialise an instance with the default (real) costs."""
    data_dir.mkdir(mode=0o700)
    config = Config.for_data_dir(data_dir, database_url=database_url)
    upgrade(config)
    engine = make_engine(config)
    try:
        with transaction(make_session_factory(engine)) as session:
            instance.init_instance(
                session, config, name="Benchmark newsroom", admin_username="admin"
            )
    finally:
        engine.dispose()
    return config


# --------------------------------------------------------------------------- report


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def table(rows: list[list[str]], header: list[str]) -> str:
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


def steps(load: Load, name: str) -> list[float]:
    return [sample.steps[name] for sample in load.samples]


def submissions_table(loads: dict[str, Load]) -> str:
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
    return table(rows, [*header, "POST p50 ms", "POST p99 ms"])


def sources_table(load: Load) -> str:
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
    return table([row], [*header, *extra])


def cpu_table(loads: dict[str, Load], cpus: int) -> str:
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
    return table(rows, [*header, "ours, of all CPUs", "machine busy"])


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
    main = table([row], [*header, "gunicorn CPU s", "client CPU s"])
    rows = []
    for pid, (since_start, at_start, during) in sorted(
        up.memory.items(), key=lambda item: (item[0] != up.master, -item[1][2])
    ):
        role = "master" if pid == up.master else "worker"
        rows.append(
            [
                f"gunicorn {role} {pid}",
                f"{since_start / 1024:,.0f}",
                f"{at_start / 1024:,.0f}",
                f"{during / 1024:,.0f}",
            ]
        )
    during_label = "VmHWM in upload" if up.peak_reset else "VmHWM (not reset)"
    memory = table(rows, ["server memory, MiB", "VmHWM before", "VmRSS at start", during_label])
    return main + "\n\n" + memory


def print_header(plan: Plan, db: Database, started: datetime.datetime, load_before: float) -> None:
    print("tipbox source app benchmark (benchmarks/source.py)")
    print(f"  date      {started.strftime('%Y-%m-%d %H:%M UTC')}")
    print(
        f"  python    {platform.python_version()} ({platform.python_implementation()}),"
        f" {platform.system()} {platform.machine()}"
    )
    print(
        f"  cpus      {os.cpu_count()}, shared by server, PostgreSQL and clients;"
        f" load average {load_before:.2f} before the run"
    )
    url = make_url(db.server_url)
    print(
        f"  database  PostgreSQL {db.version} at {url.host}:{url.port},"
        f" fresh database {db.name} (dropped after)"
    )
    print(
        f"  server    python -m tipbox.serve source: gunicorn gthread, {default_workers()} workers"
        f" x {THREADS} threads (the default), keep-alive {KEEPALIVE_SECONDS} s"
    )
    print(
        "  argon2id  codename cost of Config (opslimit 3, 64 MiB); default budget of"
        f" {Config.argon2_concurrency} per worker, 503 + Retry-After beyond it"
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


def run(plan: Plan, database_url: str) -> int:
    started = datetime.datetime.now(datetime.UTC)
    load_before = os.getloadavg()[0]
    db = Database(normalise_url(database_url))
    tmp = Path(tempfile.mkdtemp(prefix="tipbox-bench-source-"))
    server: Server | None = None
    try:
        db.create()
        config = init(tmp / "instance", db.url)
        server = start_server(config, tmp)
        submissions, warm_ups = phase_submissions(server, plan)
        sources = phase_new_sources(server, plan)
        upload = phase_upload(server, plan, config)
        stored = stored_messages(config)
    except BaseException:
        if server is not None:
            print(f"server log:\n{server.log.read_text()[-3000:]}", file=sys.stderr)
        raise
    finally:
        if server is not None:
            stop_server(server)
        db.drop()
        shutil.rmtree(tmp, ignore_errors=True)

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
    return report_checks([*warm_ups, *submissions.values(), sources], upload, stored)


def report_checks(loads: list[Load], upload: Upload, stored: int) -> int:
    """Print the errors and the targets; 0 when all is well."""
    errors: Counter[str] = Counter()
    for load in loads:
        errors.update(load.errors)
    for reason, count in errors.most_common(10):
        print(f"error x{count}: {reason}")
    # Every 303 is one stored message (warm-ups, both paths, one per new source); an error
    # may also have stored one (an answer lost after the commit), which this would show.
    answered = sum(load.done for load in loads)
    workers = [during for pid, (_, _, during) in upload.memory.items() if pid != upload.master]
    peak_mib = max(workers, default=0) / 1024
    checks = {
        "every answer as expected (0 errors)": not errors and all(x.finished for x in loads),
        f"messages stored = 303s counted ({stored:,} / {answered:,})": stored == answered,
        "upload stored as its padded bucket": upload.stored,
        f"worker peak RSS in the upload < {PEAK_RSS_TARGET_MIB} MiB ({peak_mib:,.0f} MiB)": (
            peak_mib < PEAK_RSS_TARGET_MIB and upload.peak_reset
        ),
    }
    print("targets:")
    for check, ok in checks.items():
        print(f"  {'met    ' if ok else 'NOT MET'}  {check}")
    return 0 if all(checks.values()) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description="tipbox source app benchmark")
    parser.add_argument(
        "--quick", action="store_true", help="200 submissions per path, 32 sources, 64 MiB"
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="a PostgreSQL server URL, used only to create and drop the run's own database",
    )
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    return run(plan, args.database_url)


if __name__ == "__main__":
    raise SystemExit(main())
