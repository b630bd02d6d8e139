"""What the app benchmarks share: an app under gunicorn and the CPU its processes take, an
HTTP client, and threads of clients under load.

Apart from benchmarks/_common.py and benchmarks/_database.py, which the benchmarks that report
their own peak RSS import: gunicorn, Flask and ``http.client`` would weigh on it.
"""

from __future__ import annotations

import html
import http.client
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from sqlalchemy.engine import make_url

from benchmarks._common import children, cpu_seconds, machine_busy, postgres_backends
from tipbox.config import Config
from tipbox.serve import KEEPALIVE_SECONDS, THREADS, default_workers

REQUEST_TIMEOUT = 60.0
SERVER_START_SECONDS = 60.0
# gunicorn closes a keep-alive connection idle for KEEPALIVE_SECONDS; a request sent as it
# closes would fail, so a connection idle for less than that is replaced, not reused.
IDLE_RECONNECT_SECONDS = KEEPALIVE_SECONDS / 2
FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}


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
    """One browser (tab): cookies and a keep-alive connection of its own."""

    def __init__(
        self,
        port: int,
        cookies: Mapping[str, str] | None = None,
        timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        self.port = port
        self.timeout = timeout
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
            self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        return self._conn

    def request(
        self,
        method: str,
        path: str,
        body: bytes | Iterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Send one request on the kept connection and read the whole answer."""
        conn = self._connection()
        try:
            conn.request(
                method, path, body=body, headers={**(headers or {}), **cookie_header(self.cookies)}
            )
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
    """The CSRF token of the page's form."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if not match:
        raise Unexpected("no CSRF token on the page")
    return html.unescape(match.group(1))


# --------------------------------------------------------------------------- the server


@dataclass
class Server:
    """An app under gunicorn: the master is the process we started."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    database: str | None  # its PostgreSQL database's name (None on SQLite)

    def workers(self) -> list[int]:
        return children(self.process.pid)

    def backends(self) -> list[int]:
        """The PostgreSQL backends connected to its database."""
        return [] if self.database is None else postgres_backends(self.database)


def server_label(app: str) -> str:
    """The report's line about the server of ``app`` (``source`` or ``journalist``)."""
    return (
        f"python -m tipbox.serve {app}: gunicorn gthread, {default_workers()} workers"
        f" x {THREADS} threads (the default), keep-alive {KEEPALIVE_SECONDS} s"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(config: Config, tmp: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without its ``TIPBOX_*`` variables, then the instance's
    and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIPBOX_")}
    env.update(
        TIPBOX_DATA_DIR=str(config.data_dir),
        TIPBOX_DATABASE_URL=config.database_url,
        TIPBOX_KEYS_DIR=str(config.keys_dir),
        TIPBOX_BLOB_DIR=str(config.blob_dir),
        TMPDIR=str(tmp),
    )
    env.update(extra)
    return env


def start_server(
    app: str, config: Config, tmp: Path, extra_env: Mapping[str, str] | None = None
) -> Server:
    """Start ``python -m tipbox.serve <app>`` with default workers, its log in ``tmp``; wait
    for /healthz and for every worker."""
    port = free_port()
    log = tmp / "server.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tipbox.serve", app, "--bind", f"127.0.0.1:{port}"],
            env=server_env(config, tmp, extra_env or {}),
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
    raise RuntimeError(f"the {app} app did not start; its log:\n{log.read_text()[-3000:]}")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=30)


@contextmanager
def serving(
    app: str, config: Config, tmp: Path, extra_env: Mapping[str, str] | None = None
) -> Iterator[Server]:
    """The app started (``start_server``), stopped after; its log's end goes to stderr if
    anything fails while it runs."""
    server = start_server(app, config, tmp, extra_env)
    try:
        yield server
    except BaseException:
        print(f"server log:\n{server.log.read_text()[-3000:]}", file=sys.stderr)
        raise
    finally:
        stop_server(server)


def cpu_snapshot(server: Server) -> dict[str, float]:
    """CPU seconds so far: this process (the clients), gunicorn, each PostgreSQL backend of
    the run's database, and the whole machine."""
    snap = {"client": time.process_time(), "machine": machine_busy()}
    snap["gunicorn"] = sum(cpu_seconds(pid) for pid in [server.process.pid, *server.workers()])
    for pid in server.backends():
        snap[f"pg{pid}"] = cpu_seconds(pid)
    return snap


def cpu_spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds between two snapshots, postgres backends summed (a backend that ended in
    between is missed: backends live as long as the app's pooled connections); "others" is
    the rest of the machine (PostgreSQL's background writers included)."""
    spent = {key: after[key] - before[key] for key in ("client", "gunicorn")}
    spent["postgres"] = sum(
        value - before.get(key, 0.0) for key, value in after.items() if key.startswith("pg")
    )
    ours = sum(spent.values())
    spent["others"] = max(0.0, after["machine"] - before["machine"] - ours)
    return spent


# --------------------------------------------------------------------------- load


T = TypeVar("T")


@dataclass
class Load(Generic[T]):
    """What client threads did: a sample per unit of work done, errors by reason."""

    samples: list[T]
    errors: Counter[str]
    seconds: float
    cpu: dict[str, float]
    finished: bool  # False when the time limit stopped it early

    @property
    def done(self) -> int:
        return len(self.samples)

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0


def run_clients(
    server: Server, units: Sequence[Callable[[], T]], total: int, time_limit: float
) -> Load[T]:
    """Run ``total`` units of work on one thread per entry of ``units`` (each thread calls
    its own function, so keeps its own client); take no new unit after ``time_limit``
    seconds. A unit that raises is counted as an error; the thread goes on."""
    lock = threading.Lock()
    samples: list[T] = []
    errors: Counter[str] = Counter()
    issued = 0
    deadline = time.monotonic() + time_limit
    barrier = threading.Barrier(len(units) + 1, timeout=60)

    def loop(unit: Callable[[], T]) -> None:
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
