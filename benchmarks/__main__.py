"""Run every benchmark and print one table of their figures: ``python -m benchmarks``.

Run from the repository root (``make bench`` does)::

    .venv/bin/python -m benchmarks                 # each benchmark with --quick
    .venv/bin/python -m benchmarks --full          # each at its full size (long)
    .venv/bin/python -m benchmarks flood source    # only these

Each benchmark (a module of this package whose name does not start with ``_``) runs in a
process of its own, ``python -m benchmarks.<name> [--quick]``, so that no benchmark's
memory or imports weigh on another's figures; its output goes to a log file (printed where
it is), and its figures come back through the JSON file named in ``TIPBOX_BENCH_RESULTS``
(benchmarks/_results.py). At the end: the machine (CPUs, load average, Python, SQLite and
PostgreSQL versions), then one table with every figure and how it was measured. A
benchmark that fails (non-zero exit, no figures, or its time limit) is shown as failed in
the table, and the run goes on with the others but exits 1.

This process imports only the standard library and benchmarks/_results.py: Linux carries
a parent's peak RSS into its children's ``ru_maxrss``, which benchmarks/crypto.py reports.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._results import RESULTS_ENV, Outcome, read_results, summary_table

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent
# A benchmark still running after this long is stopped and reported as failed.
QUICK_TIME_LIMIT = 1800.0
FULL_TIME_LIMIT = 4 * 3600.0
PG_VERSION_TIMEOUT = 30.0


def benchmark_names(package: Path = PACKAGE) -> list[str]:
    """The benchmarks in ``package``: its modules but the helpers (``_*.py``), sorted."""
    return sorted(p.stem for p in package.glob("*.py") if not p.stem.startswith("_"))


def run_one(
    name: str, argv: list[str], log_dir: Path | None, time_limit: float, env_extra: dict[str, str]
) -> Outcome:
    """Run one benchmark command in a session of its own, its output to ``log_dir/<name>.log``
    (or to this terminal when ``log_dir`` is None); its outcome and figures."""
    results_file = Path(tempfile.mkstemp(prefix=f"tipbox-bench-{name}-", suffix=".json")[1])
    log = log_dir / f"{name}.log" if log_dir else None
    env = {**os.environ, **env_extra, RESULTS_ENV: str(results_file)}
    load_before = os.getloadavg()[0]
    start = time.monotonic()
    exit_code: int | None
    try:
        with open(log or os.devnull, "wb") as out:
            # A session of its own: past its time limit, the benchmark and whatever it
            # started (gunicorn, children) are stopped together, by its process group.
            process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out if log else None,
                stderr=subprocess.STDOUT if log else None,
                start_new_session=True,
            )
            try:
                exit_code = process.wait(timeout=time_limit)
            except subprocess.TimeoutExpired:
                stop_group(process)
                exit_code = None
            except BaseException:  # Ctrl-C: stop what it started before leaving
                stop_group(process)
                raise
        results = read_results(results_file)
    finally:
        results_file.unlink(missing_ok=True)
    command = " ".join(["python", *argv[1:]])
    return Outcome(
        name, command, exit_code, time.monotonic() - start, load_before, results, str(log or "")
    )


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop the process group ``process`` leads: SIGTERM, then SIGKILL after 60 s."""
    for sig, wait in ((signal.SIGTERM, 60.0), (signal.SIGKILL, 30.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


# --------------------------------------------------------------------------- the machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def postgres_version() -> str:
    """The version of the PostgreSQL server the benchmarks use by default, asked in a child
    process (its driver and SQLAlchemy stay out of this one)."""
    code = (
        "from benchmarks._database import DEFAULT_DATABASE_URL, server_version;"
        "print(server_version(DEFAULT_DATABASE_URL))"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=PG_VERSION_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "not reachable (timed out)"
    if done.returncode != 0:
        return "not reachable"
    return done.stdout.strip() + " at 127.0.0.1:5432 (the default --database-url)"


def load_label() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min)"


def machine_lines(pg_version: str) -> list[str]:
    """The lines that say where the figures were measured."""
    return [
        f"  cpus      {os.cpu_count()} ({cpu_model()})",
        f"  python    {platform.python_version()} ({platform.python_implementation()}),"
        f" {platform.system()} {platform.machine()}",
        f"  sqlite    {sqlite3.sqlite_version}",
        f"  postgres  {pg_version}",
    ]


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    known = benchmark_names()
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="run the tipbox benchmarks, one table at the end"
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"only these: {', '.join(known)}")
    parser.add_argument("--full", action="store_true", help="full size (default: --quick)")
    parser.add_argument(
        "--logs", type=Path, help="keep each benchmark's output here (default: a temp folder)"
    )
    parser.add_argument(
        "--verbose", action="store_true", help="each benchmark's output to this terminal, no logs"
    )
    parser.add_argument(
        "--time-limit", type=float, help="seconds per benchmark (default: 1800 quick, 4 h full)"
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(known))
    if unknown:
        parser.error(f"no such benchmark: {', '.join(unknown)} (there are {', '.join(known)})")
    names = args.names or known
    time_limit = args.time_limit or (FULL_TIME_LIMIT if args.full else QUICK_TIME_LIMIT)
    log_dir = None
    if not args.verbose:
        log_dir = args.logs or Path(tempfile.mkdtemp(prefix="tipbox-bench-logs-"))
        log_dir.mkdir(parents=True, exist_ok=True)

    started = datetime.datetime.now(datetime.UTC)
    load_at_start = load_label()
    pg_version = postgres_version()
    print(f"tipbox benchmarks, {'full size' if args.full else '--quick'}", flush=True)
    if log_dir:
        print(f"  each benchmark's output: {log_dir}/<name>.log", flush=True)
    # So that a benchmark's own imports (benchmarks.*, tipbox) resolve from this tree.
    env_extra = {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    }
    outcomes = []
    for name in names:
        command = [sys.executable, "-m", f"benchmarks.{name}", *([] if args.full else ["--quick"])]
        print(f"== python -m benchmarks.{name}{'' if args.full else ' --quick'}", flush=True)
        outcome = run_one(name, command, log_dir, time_limit, env_extra)
        print(f"   {outcome.status()} in {outcome.seconds:,.0f} s", flush=True)
        outcomes.append(outcome)

    print()
    print(f"tipbox benchmarks ({'full size' if args.full else '--quick'})")
    print(f"  date      {started.strftime('%Y-%m-%d %H:%M UTC')}")
    print("\n".join(machine_lines(pg_version)))
    print(f"  load      {load_at_start} at the start; {load_label()} at the end")
    print()
    print(summary_table(outcomes))
    failed = [o.benchmark for o in outcomes if not o.ok]
    if failed:
        print(f"\nFAILED: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
