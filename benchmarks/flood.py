"""Login flood benchmark: a logged-in source's submissions while 200 codename logins hammer
the source app.

Run from the repository root::

    .venv/bin/python -m benchmarks.flood           # 200 logins in flight, 200 submissions
    .venv/bin/python -m benchmarks.flood --quick   # 200 logins in flight, 20 submissions
    .venv/bin/python -m benchmarks.flood --argon2-concurrency 1 --logins-in-flight 2

Setup: a fresh PostgreSQL database on the server of ``--database-url`` (created for the run,
dropped after; ``--sqlite`` for a SQLite file), initialised with the default ``Config`` (the
real Argon2id costs), and the source app run as ``python -m tipbox.serve source`` with its
default workers and threads, as deployed. The budget settings go to the server through its
environment (``TIPBOX_*``): a variable the app does not read yet is simply ignored there, and
the report says, for each, whether this tree's ``tipbox`` package reads it. The per-source
submission budget (``TIPBOX_SUBMISSIONS_PER_HOUR``) is set high, so the legitimate source
is never refused for its own rate: what is measured is the flood's effect alone.

1. A legitimate source: a codename (GET /, POST /generate, POST /confirm), then a real
   codename login with it in a fresh client (GET /login, POST /login -> 303 /replies).
   Three warm-up submissions, then ``idle`` follow-up submissions without the flood, the
   baseline.
2. The flood: a child process (so that its 200 threads do not hold this process's GIL while
   the legitimate client's latency is timed) makes 200 attackers, each with its own cookies
   and CSRF token from GET /login. At "go" each sends POST /login with a wrong but
   well-formed codename (7 words of the list, so the app runs Argon2id, or answers "busy"
   when no slot is free) and, as soon as it has an answer, the next one: 200 attempts stay
   in flight until the measured submissions are done. Retry-After is ignored, as an
   attacker would. Each answer is classified: busy (503 with Retry-After), processed (200,
   the failed-login page), refused (429), or anything else (an error).
3. One second after "go", the logged-in source makes ``submissions`` follow-up submissions
   one after the other (``--gap`` seconds apart), each GET /submit and POST /submit with a
   short message and a small file (``--file-kib``), each on a new connection, as a source
   over Tor would come back. Each must be a 303 to ``/submit?sent=1``; the database must hold
   one message per 303.

While the flood runs, the server's memory is sampled from ``/proc`` every 50 ms: the sum of
VmRSS over the gunicorn master and its workers (its peak), and each process's VmHWM (reset
at "go"). CPU time is read for gunicorn, the attackers' process and the whole machine.
Everything runs on one machine, so the attackers compete with the server for the CPUs: the
report says how much each side took.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import IO, Any

from benchmarks._common import (
    MemoryWatch,
    ProcessMemory,
    cpu_seconds,
    machine_busy,
    memory_table,
    ms,
    percentile,
    platform_label,
    print_errors,
    print_targets,
    python_label,
    read_status,
    scratch_folder,
    text_table,
    utc_stamp,
)
from benchmarks._database import Database, add_database_url, init_instance
from benchmarks._results import Results, publish
from benchmarks._server import (
    FORM_HEADERS,
    REQUEST_TIMEOUT,
    Client,
    Server,
    csrf_token,
    server_label,
    serving,
)
from benchmarks.source import MESSAGE, Busy, Part, expect, multipart, new_codename, stored_messages
from tipbox.config import Config
from tipbox.crypto.wordlist import words
from tipbox.db import normalise_url
from tipbox.serve import THREADS, default_workers

ROOT = Path(__file__).resolve().parents[1]
CONCURRENT_LOGINS = 200
CODENAME_WORDS = 7
P99_TARGET_SECONDS = 2.0
WARM_UPS = 3
SETTLE_SECONDS = 1.0  # after "go", before the first measured submission: the flood is on
SAMPLE_SECONDS = 0.05  # memory and in-flight sampling period
READY_TIMEOUT = 300.0  # the attackers' setup: 200 GET /login
PREPARE_PARALLEL = 8  # GET /login requests at once while the attackers get their tokens
# Set so high that the legitimate source never meets its own budget.
HIGH_SUBMISSIONS_PER_HOUR = 1_000_000
# Budget settings the report shows; those given on the command line are passed on.
BUDGET_SETTINGS = (
    "TIPBOX_ARGON2_CONCURRENCY",
    "TIPBOX_LOGINS_IN_FLIGHT",
    "TIPBOX_NEW_SOURCES_PER_MINUTE",
    "TIPBOX_SUBMISSIONS_PER_HOUR",
)
FAILED_LOGIN_MARK = 'class="notice notice-error"'  # the failed-login page's notice


@dataclass(frozen=True)
class Plan:
    """How much the run does."""

    quick: bool
    idle: int  # follow-up submissions without the flood (the baseline)
    submissions: int  # follow-up submissions under the flood
    flood_seconds: float  # no new submission is started after this long under the flood


QUICK = Plan(quick=True, idle=10, submissions=20, flood_seconds=90)
FULL = Plan(quick=False, idle=30, submissions=200, flood_seconds=900)


# --------------------------------------------------------------------------- settings


@cache
def app_sources() -> str:
    """The text of every module of this tree's ``tipbox`` package (to see what it reads)."""
    return "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tipbox").rglob("*.py"))


@dataclass(frozen=True)
class Setting:
    """A budget setting as this run has it."""

    name: str  # the environment variable
    value: str | None  # what this run sets it to; None: left to the app's default
    default: Any  # the app's default (Config's field), None if it has no such field
    read: bool  # whether the app reads the variable at all

    def short(self) -> str:
        """``NAME=value (set)``, ``NAME=value (default)`` or ``NAME (not read)``."""
        if not self.read:
            return f"{self.name}{'=' + self.value if self.value else ''} (not read by the app)"
        if self.value is not None:
            return f"{self.name}={self.value} (set)"
        return f"{self.name}={self.default} (default)"

    def label(self) -> str:
        if not self.read:
            state = "NOT READ by this app yet"
            return f"{self.name}={self.value} ({state})" if self.value else f"{self.name}: {state}"
        if self.value is not None:
            return f"{self.name}={self.value} (set here)"
        return f"{self.name} unset: app default {self.default}"


def settings(given: Mapping[str, str | None]) -> list[Setting]:
    """Every budget setting: its value here (``given``), its default and whether it is read."""
    out = []
    # An instance's defaults (some, like the host's Argon2id slots, depend on the machine).
    defaults = Config.for_data_dir(Path("."))
    for name in BUDGET_SETTINGS:
        field_name = name.removeprefix("TIPBOX_").lower()
        default = getattr(defaults, field_name, None)
        out.append(Setting(name, given.get(name), default, f'"{name}"' in app_sources()))
    return out


def settings_env(chosen: list[Setting]) -> dict[str, str]:
    """The server's environment for the settings this run sets (every one, read or not: a
    variable the app does not know is ignored there)."""
    return {s.name: s.value for s in chosen if s.value is not None}


# --------------------------------------------------------------------------- attackers (child)


def wrong_codename(rng: random.Random) -> str:
    """Seven words of the list: well-formed, so the app spends Argon2id on it (or says busy)."""
    return " ".join(rng.choice(words()) for _ in range(CODENAME_WORDS))


@dataclass
class Tally:
    """What the attackers got, kept under a lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    answers: Counter[str] = field(default_factory=Counter)
    first_wave: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: dict[str, list[float]] = field(default_factory=dict)
    in_flight: int = 0
    in_flight_samples: list[tuple[float, int]] = field(default_factory=list)

    def record(self, kind: str, seconds: float, first: bool, error: str = "") -> None:
        with self.lock:
            self.in_flight -= 1
            self.answers[kind] += 1
            if first:
                self.first_wave[kind] += 1
            if error:
                self.errors[error[:120]] += 1
            self.seconds.setdefault(kind, []).append(seconds)


def classify(status: int, retry_after: str, text: str) -> tuple[str, str]:
    """(kind, error) of one login answer: busy, processed, refused, or other with why."""
    if status == 503:
        return ("busy", "") if retry_after else ("other", "503 without Retry-After")
    if status == 200 and FAILED_LOGIN_MARK in text:
        return "processed", ""
    if status == 429:
        return "refused", ""
    return "other", f"POST /login answered {status}"


def attack(
    client: Client, token: str, go: threading.Event, stop: threading.Event, tally: Tally
) -> None:
    """One attacker: POST /login with wrong codenames, one in flight at a time, until stop."""
    rng = random.Random()
    go.wait()
    first = True
    while not stop.is_set():
        fields = {"csrf_token": token, "codename": wrong_codename(rng)}
        body = urllib.parse.urlencode(fields).encode()
        with tally.lock:
            tally.in_flight += 1
        start = time.perf_counter()
        try:
            answer = client.request("POST", "/login", body, FORM_HEADERS)
        except Exception as exc:  # counted; the attacker goes on
            tally.record(
                "other", time.perf_counter() - start, first, f"{type(exc).__name__}: {exc}"
            )
            time.sleep(0.1)  # a refused connection would otherwise spin
        else:
            kind, error = classify(answer.status, answer.retry_after, answer.text)
            tally.record(kind, time.perf_counter() - start, first, error)
        first = False


def prepare_attacker(port: int) -> tuple[Client, str]:
    """A client with the cookies and CSRF token of a GET /login."""
    client = Client(port)
    page = expect(client.request("GET", "/login"), 200, "GET /login").text
    client.close()  # it will wait for "go"; the first POST opens a new connection
    return client, csrf_token(page)


def sample_in_flight(tally: Tally, stop: threading.Event, start: float) -> None:
    while not stop.wait(SAMPLE_SECONDS):
        with tally.lock:
            tally.in_flight_samples.append((time.perf_counter() - start, tally.in_flight))


def attackers_main(port: int, count: int, stdin: IO[str], stdout: IO[str]) -> int:
    """The child process: prepare ``count`` attackers, say "ready"; attack from "go" to
    "stop" (lines on ``stdin``); then print the tally as JSON."""
    with ThreadPoolExecutor(max_workers=PREPARE_PARALLEL) as pool:
        prepared = list(pool.map(prepare_attacker, [port] * count))
    tally, go, stop = Tally(), threading.Event(), threading.Event()
    threads = [
        threading.Thread(target=attack, args=(client, token, go, stop, tally), daemon=True)
        for client, token in prepared
    ]
    for thread in threads:
        thread.start()
    print("ready", file=stdout, flush=True)
    if stdin.readline().strip() != "go":
        return 1
    start = time.perf_counter()
    go.set()
    sampler = threading.Thread(target=sample_in_flight, args=(tally, stop, start), daemon=True)
    sampler.start()
    stdin.readline()  # "stop", or the end of the input if the parent is gone
    stop.set()
    seconds = time.perf_counter() - start
    for thread in threads:  # each finishes the attempt it has in flight
        thread.join(timeout=REQUEST_TIMEOUT + 5)
    stragglers = sum(thread.is_alive() for thread in threads)
    with tally.lock:
        in_flight = [n for t, n in tally.in_flight_samples if t >= SETTLE_SECONDS] or [0]
        summary = {
            "seconds": seconds,
            "answers": dict(tally.answers),
            "first_wave": dict(tally.first_wave),
            "errors": dict(tally.errors),
            "p50": {kind: percentile(v, 0.5) for kind, v in tally.seconds.items()},
            "p99": {kind: percentile(v, 0.99) for kind, v in tally.seconds.items()},
            "in_flight_min": min(in_flight),
            "in_flight_mean": sum(in_flight) / len(in_flight),
            "stragglers": stragglers,
        }
    print(json.dumps(summary), file=stdout, flush=True)
    return 0


# --------------------------------------------------------------------------- attackers (parent)


@dataclass
class Flood:
    """The attackers' child process, seen from here."""

    process: subprocess.Popen[str]

    @classmethod
    def start(cls, port: int, count: int) -> Flood:
        """Start the child and wait until its attackers are ready."""
        process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.flood", "--attackers", str(port), str(count)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        flood = cls(process)
        ready = threading.Timer(READY_TIMEOUT, process.kill)  # a stuck setup must not hang us
        ready.start()
        try:
            line = flood.stdout.readline().strip()
        finally:
            ready.cancel()
        if line != "ready":
            flood.process.kill()
            raise RuntimeError(f"the attackers did not get ready ({line or 'no answer'})")
        return flood

    @property
    def stdout(self) -> IO[str]:
        assert self.process.stdout is not None
        return self.process.stdout

    def tell(self, word: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(word + "\n")
        self.process.stdin.flush()

    def stop(self) -> dict[str, Any]:
        """Stop the attackers; their tally."""
        self.tell("stop")
        line = self.stdout.readline()
        self.process.wait(timeout=REQUEST_TIMEOUT + 30)
        if not line:
            raise RuntimeError(f"the attackers gave no tally (exit {self.process.returncode})")
        tally: dict[str, Any] = json.loads(line)
        return tally

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


# --------------------------------------------------------------------------- memory


class RssSampler:
    """The sum of VmRSS over a server's master and workers, every ``SAMPLE_SECONDS``, in a
    thread of its own; its peak."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.peak_kib = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        pids: list[int] = []
        refreshed = 0.0
        while not self._stop.wait(SAMPLE_SECONDS):
            if time.monotonic() - refreshed > 1.0:  # a restarted worker is a new pid
                pids = [self.server.process.pid, *self.server.workers()]
                refreshed = time.monotonic()
            total = 0
            for pid in pids:
                try:
                    total += read_status(pid)["VmRSS"]
                except (OSError, KeyError):
                    continue
            self.peak_kib = max(self.peak_kib, total)
            self.samples += 1

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# --------------------------------------------------------------------------- the source


@dataclass
class Submissions:
    """A series of follow-up submissions: the seconds of each (GET + POST, and the POST
    alone) and the errors."""

    total: list[float] = field(default_factory=list)
    post: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def done(self) -> int:
        return len(self.total)


def logged_in_source(port: int) -> Client:
    """A new source, then a codename login with its codename in a fresh client: that
    client's session is the logged-in source."""
    generating = Client(port)
    try:
        codename, _ = new_codename(generating, Busy())
    finally:
        generating.close()
    client = Client(port)
    page = expect(client.request("GET", "/login"), 200, "GET /login").text
    body = urllib.parse.urlencode({"csrf_token": csrf_token(page), "codename": codename}).encode()
    expect(client.request("POST", "/login", body, FORM_HEADERS), 303, "POST /login", "/replies")
    client.close()
    return client


def follow_up(client: Client, attachment: bytes) -> tuple[float, float]:
    """One follow-up submission: GET /submit, POST /submit with the message and a file.
    Its seconds (both requests, the POST alone)."""
    try:
        start = time.perf_counter()
        page = expect(client.request("GET", "/submit"), 200, "GET /submit").text
        parts = [Part("csrf_token", csrf_token(page).encode()), Part("message", MESSAGE.encode())]
        if attachment:
            parts.append(Part("files", attachment, "notes.bin", "application/octet-stream"))
        body, content_type = multipart(parts)
        post_start = time.perf_counter()
        answer = client.request("POST", "/submit", body, {"Content-Type": content_type})
        end = time.perf_counter()
        expect(answer, 303, "POST /submit", "/submit?sent=1")
    finally:
        client.close()  # a source over Tor comes back on a new connection
    return end - start, end - post_start


def submit_series(
    client: Client, count: int, gap: float, attachment: bytes, time_limit: float
) -> Submissions:
    """``count`` follow-up submissions, ``gap`` seconds apart, none started after
    ``time_limit`` seconds."""
    out = Submissions()
    start = time.perf_counter()
    for index in range(count):
        if time.perf_counter() - start > time_limit:
            out.errors["time limit: submissions left undone"] += count - index
            break
        try:
            total, post = follow_up(client, attachment)
        except Exception as exc:  # counted and reported; the source goes on
            out.errors[f"{type(exc).__name__}: {exc}"[:120]] += 1
        else:
            out.total.append(total)
            out.post.append(post)
        time.sleep(gap)
    out.seconds = time.perf_counter() - start
    return out


# --------------------------------------------------------------------------- the run


@dataclass
class Run:
    """What the run measured."""

    idle: Submissions
    flooded: Submissions
    tally: dict[str, Any]
    peak_rss_kib: int  # the sampled peak of the sum over master and workers
    rss_samples: int
    memory: ProcessMemory
    cpu: dict[str, float]  # seconds over the flood: gunicorn, attackers, machine
    flood_seconds: float
    workers_before: list[int]
    workers_after: list[int]
    stored: int  # messages in the database
    expected: int  # 303s counted, warm-ups included


def gunicorn_cpu(server: Server) -> float:
    return sum(cpu_seconds(pid) for pid in [server.process.pid, *server.workers()])


def run_flood(server: Server, config: Config, plan: Plan, gap: float, attachment: bytes) -> Run:
    source = logged_in_source(server.port)
    warm = submit_series(source, WARM_UPS, 0.0, attachment, REQUEST_TIMEOUT)
    idle = submit_series(source, plan.idle, gap, attachment, plan.flood_seconds)

    flood = Flood.start(server.port, CONCURRENT_LOGINS)
    try:
        workers_before = server.workers()
        memory = MemoryWatch(server.process.pid, [server.process.pid, *workers_before])
        with RssSampler(server) as sampler:
            before = (gunicorn_cpu(server), cpu_seconds(flood.process.pid), machine_busy())
            start = time.perf_counter()
            flood.tell("go")
            time.sleep(SETTLE_SECONDS)
            flooded = submit_series(source, plan.submissions, gap, attachment, plan.flood_seconds)
            attackers_cpu = cpu_seconds(flood.process.pid)  # read while it is still there
            tally = flood.stop()
            seconds = time.perf_counter() - start
            after = (gunicorn_cpu(server), attackers_cpu, machine_busy())
        memory_over_flood = memory.stop()
    finally:
        flood.kill()
    cpu = {
        "gunicorn": after[0] - before[0],
        "attackers": after[1] - before[1],
        "machine": after[2] - before[2],
    }
    return Run(
        idle=idle,
        flooded=flooded,
        tally=tally,
        peak_rss_kib=sampler.peak_kib,
        rss_samples=sampler.samples,
        memory=memory_over_flood,
        cpu=cpu,
        flood_seconds=seconds,
        workers_before=workers_before,
        workers_after=server.workers(),
        stored=stored_messages(config),
        expected=warm.done + idle.done + flooded.done,
    )


# --------------------------------------------------------------------------- report


def submissions_table(run: Run) -> str:
    rows = []
    for label, series in (("no flood (baseline)", run.idle), ("under the flood", run.flooded)):
        total = series.total or [0.0]
        post = series.post or [0.0]
        rows.append(
            [
                label,
                f"{series.done:,}",
                f"{sum(series.errors.values())}",
                ms(percentile(total, 0.5)),
                ms(percentile(total, 0.99)),
                ms(max(total)),
                ms(percentile(post, 0.5)),
                ms(percentile(post, 0.99)),
            ]
        )
    header = ["legitimate follow-up submissions", "303s", "errors", "p50 ms", "p99 ms", "max ms"]
    return text_table(rows, [*header, "POST p50 ms", "POST p99 ms"])


def logins_table(tally: Mapping[str, Any]) -> str:
    answers: dict[str, int] = tally["answers"]
    first: dict[str, int] = tally["first_wave"]
    kinds = ("busy", "processed", "refused", "other")
    rows = []
    for label, counts in (
        (f"first wave ({CONCURRENT_LOGINS} at once)", first),
        ("whole flood", answers),
    ):
        total = sum(counts.values())
        rows.append([label, f"{total:,}", *(f"{counts.get(kind, 0):,}" for kind in kinds)])
    header = ["login attempts answered", "total", "busy 503", "processed 200", "refused 429"]
    table = text_table(rows, [*header, "other"])
    p50, p99 = tally["p50"], tally["p99"]
    latency = ", ".join(
        f"{kind} p50 {ms(p50[kind])} / p99 {ms(p99[kind])} ms" for kind in kinds if kind in p50
    )
    rate = sum(answers.values()) / tally["seconds"] if tally["seconds"] else 0.0
    return (
        table + f"\nanswered {rate:,.0f} per s over {tally['seconds']:,.1f} s; in flight after the"
        f" first second: mean {tally['in_flight_mean']:,.0f}, min {tally['in_flight_min']}"
        f"\nanswer times: {latency}"
    )


def gunicorn_per_answer(run: Run) -> float:
    """gunicorn's CPU seconds over the flood per login answered (busy or not; the legitimate
    submissions are in it too, a few dozen against thousands)."""
    answers: dict[str, int] = run.tally["answers"]
    return run.cpu["gunicorn"] / max(1, sum(answers.values()))


def server_lines(run: Run, cpus: int) -> str:
    changed = sorted(set(run.workers_before) ^ set(run.workers_after))
    available = run.flood_seconds * cpus or 1.0
    return "\n".join(
        [
            f"server peak RSS (sum over master + {len(run.workers_before)} workers, sampled every"
            f" {SAMPLE_SECONDS * 1000:.0f} ms, {run.rss_samples:,} samples):"
            f" {run.peak_rss_kib / 1024:,.0f} MiB; sum of each process's VmHWM:"
            f" {sum(p[2] for p in run.memory.pids.values()) / 1024:,.0f} MiB",
            f"CPU over the flood ({run.flood_seconds:,.1f} s, {cpus} CPUs): gunicorn"
            f" {run.cpu['gunicorn']:,.1f} s ({ms(gunicorn_per_answer(run))} ms per login"
            f" answered), attackers' process {run.cpu['attackers']:,.1f} s, machine busy"
            f" {100 * run.cpu['machine'] / available:.0f}%",
            "workers: unchanged"
            if not changed
            else f"workers: CHANGED during the flood ({len(changed)} pids came or went)",
        ]
    )


def print_header(
    plan: Plan,
    db: Database,
    started: datetime.datetime,
    load: tuple[float, float, float],
    chosen: list[Setting],
    gap: float,
    file_kib: int,
) -> None:
    print("tipbox login flood benchmark (benchmarks/flood.py)")
    print(f"  date      {utc_stamp(started)}")
    print(f"  python    {python_label()}, {platform_label()}")
    print(
        f"  cpus      {os.cpu_count()}, shared by server, database, attackers and source;"
        f" load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} before the run"
    )
    print(f"  database  {db.describe()}")
    print(f"  server    {server_label('source')}")
    for index, setting in enumerate(chosen):
        print(f"  {'budgets' if index == 0 else '':8}  {setting.label()}")
    print(
        f"  flood     {CONCURRENT_LOGINS} attackers in a child process, each its own cookies and"
        " CSRF token; each keeps one POST /login with a wrong 7-word codename in flight"
        " (Retry-After ignored)"
    )
    print(
        f"  source    one, logged in with its codename; {WARM_UPS} warm-up, {plan.idle} baseline"
        f" and {plan.submissions} flooded follow-ups (the first {SETTLE_SECONDS:.0f} s after the"
        f" flood starts), {gap} s apart, each GET + POST /submit on a new connection:"
        f" {len(MESSAGE.encode())}-byte message + {file_kib} KiB file;"
        f" {'--quick' if plan.quick else 'full run'}"
    )
    print()


def report(run: Run, plan: Plan, db: Database, chosen: list[Setting], file_kib: int) -> int:
    """Print the tables, the errors and the targets; publish the figures; the exit code."""
    print(submissions_table(run))
    print()
    print(logins_table(run.tally))
    print()
    print(server_lines(run, os.cpu_count() or 1))
    print()
    print(memory_table(run.memory, "flood"))
    print()
    print_errors([run.idle.errors, run.flooded.errors, Counter(run.tally["errors"])])
    flooded = run.flooded.total or [float("inf")]
    p50, p99 = percentile(flooded, 0.5), percentile(flooded, 0.99)
    answers: dict[str, int] = run.tally["answers"]
    checks = {
        f"flooded submission p99 < {P99_TARGET_SECONDS:.0f} s ({p99:,.2f} s)": (
            p99 < P99_TARGET_SECONDS
        ),
        "every legitimate submission a 303 (0 errors)": not run.idle.errors
        and not run.flooded.errors,
        f"messages stored = 303s counted ({run.stored:,} / {run.expected:,})": (
            run.stored == run.expected
        ),
        "every login answered busy, processed or refused (nothing else)": (
            answers.get("other", 0) == 0 and run.tally["stragglers"] == 0
        ),
        "no worker restarted": set(run.workers_before) == set(run.workers_after),
    }
    code = print_targets(checks)

    budgets = ", ".join(s.short() for s in chosen if s.value is not None or s.read)
    settings_text = (
        f"{'--quick' if plan.quick else 'full run'}: {db.label()}, gunicorn {default_workers()}"
        f" workers x {THREADS} threads; {budgets}"
    )
    results = Results("flood", settings_text)
    results.add(
        "flooded follow-up submission, p50 / p99",
        f"{ms(p50)} / {ms(p99)} ms",
        f"GET + POST /submit ({len(MESSAGE.encode())} B message + {file_kib} KiB file),"
        f" {run.flooded.done} one after the other with {CONCURRENT_LOGINS} wrong-codename logins"
        f" in flight; max {ms(max(flooded))} ms",
    )
    idle = run.idle.total or [0.0]
    results.add(
        "same without the flood, p50 / p99",
        f"{ms(percentile(idle, 0.5))} / {ms(percentile(idle, 0.99))} ms",
        f"{run.idle.done} submissions just before the flood",
    )
    first: dict[str, int] = run.tally["first_wave"]
    total = sum(answers.values())
    results.add(
        "logins answered busy",
        f"{answers.get('busy', 0):,} of {total:,}",
        f"503 + Retry-After over {run.tally['seconds']:,.0f} s; processed (Argon2id, failed-login"
        f" page) {answers.get('processed', 0):,}, refused (429) {answers.get('refused', 0):,},"
        f" other {answers.get('other', 0):,}",
    )
    results.add(
        "first wave answered busy",
        f"{first.get('busy', 0):,} of {sum(first.values()):,}",
        f"the {CONCURRENT_LOGINS} first attempts, sent at once; processed"
        f" {first.get('processed', 0):,}, other {first.get('other', 0):,}",
    )
    results.add(
        "server peak RSS",
        f"{run.peak_rss_kib / 1024:,.0f} MiB",
        f"sum of VmRSS over gunicorn master + workers, sampled every"
        f" {SAMPLE_SECONDS * 1000:.0f} ms during the flood; sum of each one's VmHWM"
        f" {sum(p[2] for p in run.memory.pids.values()) / 1024:,.0f} MiB",
    )
    results.add(
        "gunicorn CPU per login answered",
        f"{ms(gunicorn_per_answer(run))} ms",
        f"{run.cpu['gunicorn']:,.1f} s over the flood / logins answered (busy ones and Argon2id"
        " runs together)",
    )
    for check, ok in checks.items():
        results.target(check, ok)
    print()
    publish(results)
    return code


# --------------------------------------------------------------------------- main


def run(plan: Plan, db: Database, given: dict[str, str | None], gap: float, file_kib: int) -> int:
    started = datetime.datetime.now(datetime.UTC)
    load = os.getloadavg()
    chosen = settings(given)
    attachment = os.urandom(file_kib * 1024)
    with scratch_folder("flood") as tmp, db:
        config, _ = init_instance(tmp / "instance", db)
        with serving("source", config, tmp, settings_env(chosen)) as server:
            measured = run_flood(server, config, plan, gap, attachment)
    print_header(plan, db, started, load, chosen, gap, file_kib)
    return report(measured, plan, db, chosen, file_kib)


def main() -> int:
    parser = argparse.ArgumentParser(description="tipbox login flood benchmark")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="20 flooded submissions instead of 200 (still 200 logins)",
    )
    add_database_url(parser)
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file instead of PostgreSQL")
    parser.add_argument("--gap", type=float, default=0.25, help="seconds between submissions")
    parser.add_argument("--file-kib", type=int, default=16, help="the file in each submission")
    parser.add_argument("--argon2-concurrency", help="TIPBOX_ARGON2_CONCURRENCY (per process)")
    parser.add_argument("--logins-in-flight", help="TIPBOX_LOGINS_IN_FLIGHT (host-wide slots)")
    parser.add_argument("--new-sources-per-minute", help="TIPBOX_NEW_SOURCES_PER_MINUTE")
    parser.add_argument(
        "--submissions-per-hour",
        default=str(HIGH_SUBMISSIONS_PER_HOUR),
        help="TIPBOX_SUBMISSIONS_PER_HOUR, per source (default: high, never met here)",
    )
    parser.add_argument(
        "--attackers", nargs=2, type=int, metavar=("PORT", "COUNT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.attackers:
        port, count = args.attackers
        return attackers_main(port, count, sys.stdin, sys.stdout)
    given = {
        "TIPBOX_ARGON2_CONCURRENCY": args.argon2_concurrency,
        "TIPBOX_LOGINS_IN_FLIGHT": args.logins_in_flight,
        "TIPBOX_NEW_SOURCES_PER_MINUTE": args.new_sources_per_minute,
        "TIPBOX_SUBMISSIONS_PER_HOUR": args.submissions_per_hour,
    }
    plan = QUICK if args.quick else FULL
    database = Database(None if args.sqlite else normalise_url(args.database_url))
    return run(plan, database, given, args.gap, args.file_kib)


if __name__ == "__main__":
    raise SystemExit(main())
