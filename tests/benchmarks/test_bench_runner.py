"""The benchmark runner (``python -m benchmarks``): figures handed over, one table, failures.

No benchmark is run here (the smallest takes tens of seconds of real Argon2id and
gunicorn); fake ones are, as child processes, the way the runner runs the real ones.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from pathlib import Path

import pytest

import benchmarks.__main__ as runner
from benchmarks import flood
from benchmarks._results import (
    HOW_WIDTH,
    RESULTS_ENV,
    Figure,
    Outcome,
    Results,
    publish,
    read_results,
    summary_table,
)

CRYPTO = Results(
    "crypto",
    "--quick: 64 MiB streams",
    [Figure("envelope body encrypt", "1,234 MB/s", "0.98 x raw"), Figure("target: x", "met")],
)
SOURCE = Results(
    "source",
    "--quick: PostgreSQL 15.2",
    [Figure("server-path submission, p50 / p99", "12.0 / 30.5 ms", "16 clients")],
)


def outcome(results: Results | None, exit_code: int | None = 0, name: str = "") -> Outcome:
    name = name or (results.benchmark if results else "broken")
    return Outcome(name, f"python -m benchmarks.{name} --quick", exit_code, 12.0, 0.5, results)


def table_lines(table: str) -> list[str]:
    return table.splitlines()


def test_two_result_files_make_one_table(tmp_path: Path) -> None:
    files = []
    for results in (CRYPTO, SOURCE):
        path = tmp_path / f"{results.benchmark}.json"
        path.write_text(results.to_json(), encoding="utf-8")
        files.append(path)

    table = summary_table([outcome(read_results(path)) for path in files])

    lines = table_lines(table)
    assert lines[0].split() == ["benchmark", "figure", "value", "how", "measured"]
    assert set(lines[1]) == {"-", " "}  # one rule, under the one header
    assert sum(1 for line in lines if set(line) <= {"-", " "}) == 1
    assert len(lines) == 2 + 2 + len(CRYPTO.figures) + len(SOURCE.figures)  # a run row each
    assert lines[2].startswith("crypto")
    assert " ok " in lines[2]
    assert "64 MiB streams" in lines[2]
    assert "envelope body encrypt" in lines[3]
    assert "1,234 MB/s" in lines[3]
    assert "0.98 x raw" in lines[3]
    assert "target: x" in lines[4]
    assert "met" in lines[4]
    assert lines[5].startswith("source")
    assert "PostgreSQL 15.2" in lines[5]
    assert "12.0 / 30.5 ms" in lines[6]
    # Aligned: every figure's value ends in the same column.
    ends = {
        line.index(value) + len(value) for line, value in [(lines[3], "MB/s"), (lines[6], "ms")]
    }
    assert len(ends) == 1


def test_a_failed_benchmark_is_reported() -> None:
    failed = Outcome(
        "flood", "python -m benchmarks.flood --quick", 1, 3.0, 0.2, None, "/x/flood.log"
    )
    limited = outcome(None, exit_code=None, name="journalist")
    missed = outcome(SOURCE, exit_code=1)
    quiet = outcome(None, exit_code=0, name="keys")

    # Words only: a long "how measured" cell is wrapped onto the next lines.
    table = " ".join(summary_table([outcome(CRYPTO), failed, limited, missed, quiet]).split())

    assert "FAILED: exit 1" in table
    assert "/x/flood.log" in table
    assert "ended before its figures" in table
    assert "FAILED: time limit" in table
    assert "FAILED: no figures" in table
    assert "a target not met or an error" in table  # exit 1 after its figures
    assert "12.0 / 30.5 ms" in table  # a failed benchmark's figures are still shown
    assert [o.ok for o in (outcome(CRYPTO), failed, limited, missed, quiet)] == [
        True, False, False, False, False
    ]  # fmt: skip


def test_long_how_cells_wrap_onto_rows_of_their_own() -> None:
    long = Results("source", "word " * 60, [Figure("f", "1 ms", "how " * 40)])
    lines = table_lines(summary_table([outcome(long)]))
    assert all(len(line) <= len(lines[0]) + HOW_WIDTH for line in lines)
    assert len(lines) > 2 + 2  # header, rule, run row, figure row, and continuations
    assert lines[3].split() == ["word"] * (HOW_WIDTH // 5)  # only the how column goes on
    assert " ".join(" ".join(lines).split()).count("how") == 40 + 1  # + the header's


def test_results_round_trip_and_broken_files(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(CRYPTO.to_json(), encoding="utf-8")
    assert read_results(path) == CRYPTO
    assert read_results(tmp_path / "missing.json") is None
    path.write_text("{not json", encoding="utf-8")
    assert read_results(path) is None
    path.write_text(json.dumps({"benchmark": "x"}), encoding="utf-8")
    assert read_results(path) is None


def test_publish_prints_and_writes_where_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(RESULTS_ENV, raising=False)
    publish(SOURCE)
    assert "12.0 / 30.5 ms" in capsys.readouterr().out

    target = tmp_path / "out.json"
    monkeypatch.setenv(RESULTS_ENV, str(target))
    publish(SOURCE)
    assert read_results(target) == SOURCE


WRITES_FIGURES = f"""
import os, sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
from benchmarks._results import Results, publish
results = Results("fake", "--quick: nothing")
results.add("answer", "42 units", "asked")
publish(results)
sys.exit(int(sys.argv[1]))
"""


def test_run_one_collects_figures_and_exit_codes(tmp_path: Path) -> None:
    command = [sys.executable, "-c", WRITES_FIGURES]

    good = runner.run_one("fake", [*command, "0"], tmp_path, 60, {})
    bad = runner.run_one("fake", [*command, "1"], tmp_path, 60, {})
    none = runner.run_one("crash", [sys.executable, "-c", "raise SystemExit(3)"], tmp_path, 60, {})

    assert good.ok
    assert good.results is not None
    assert good.results.figures == [Figure("answer", "42 units", "asked")]
    assert "42 units" in (tmp_path / "fake.log").read_text()  # its own table, in its log
    assert not bad.ok
    assert bad.exit_code == 1
    assert bad.results is not None
    assert none.exit_code == 3
    assert none.results is None
    assert none.status() == "FAILED: exit 3"


def test_run_one_stops_a_benchmark_at_its_time_limit(tmp_path: Path) -> None:
    start = time.monotonic()
    ended = runner.run_one(
        "slow", [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path, 0.5, {}
    )
    assert ended.exit_code is None
    assert ended.status() == "FAILED: time limit"
    assert time.monotonic() - start < 30


def test_main_prints_one_table_and_fails_when_one_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ran: list[list[str]] = []

    def fake_run_one(
        name: str, argv: list[str], log_dir: Path | None, limit: float, env: dict[str, str]
    ) -> Outcome:
        ran.append(argv)
        return outcome(CRYPTO) if name == "crypto" else outcome(None, 1, name)

    monkeypatch.setattr(runner, "run_one", fake_run_one)
    monkeypatch.setattr(runner, "postgres_version", lambda: "15.2 (fake)")

    assert runner.main(["crypto", "keys", "--logs", str(tmp_path)]) == 1

    out = capsys.readouterr().out
    assert [argv[-2:] for argv in ran] == [
        ["benchmarks.crypto", "--quick"],
        ["benchmarks.keys", "--quick"],
    ]
    assert out.count("how measured") == 1  # one table
    assert "load" in out
    assert "15.2 (fake)" in out
    assert f"cpus      {os.cpu_count()}" in out
    assert "FAILED: keys" in out
    assert runner.main(["crypto", "--full", "--logs", str(tmp_path)]) == 0
    assert ran[-1][-1] == "benchmarks.crypto"  # no --quick


def test_benchmark_names_skip_helpers(tmp_path: Path) -> None:
    for name in ("__init__", "__main__", "_common", "crypto", "flood"):
        (tmp_path / f"{name}.py").write_text("")
    assert runner.benchmark_names(tmp_path) == ["crypto", "flood"]


@pytest.mark.parametrize("name", runner.benchmark_names())
def test_every_benchmark_imports_and_has_a_main(name: str) -> None:
    """Each benchmark still imports against today's ``tipbox`` (its names may move)."""
    module = importlib.import_module(f"benchmarks.{name}")
    assert callable(module.main)


def test_flood_classifies_login_answers() -> None:
    failed_page = f'<div {flood.FAILED_LOGIN_MARK} role="alert">'
    assert flood.classify(503, "5", "busy") == ("busy", "")
    assert flood.classify(503, "", "busy")[0] == "other"
    assert flood.classify(200, "", failed_page) == ("processed", "")
    assert flood.classify(200, "", "<form>")[0] == "other"  # not the failed-login page
    assert flood.classify(429, "60", "") == ("refused", "")
    assert flood.classify(303, "", "") == ("other", "POST /login answered 303")


def test_flood_settings_say_what_the_app_reads() -> None:
    chosen = flood.settings({"TIPBOX_ARGON2_CONCURRENCY": "3"})
    by_name = {s.name: s for s in chosen}
    assert [s.name for s in chosen] == list(flood.BUDGET_SETTINGS)
    assert by_name["TIPBOX_ARGON2_CONCURRENCY"].read  # read by the app today
    assert by_name["TIPBOX_ARGON2_CONCURRENCY"].label() == "TIPBOX_ARGON2_CONCURRENCY=3 (set here)"
    assert flood.settings_env(chosen) == {"TIPBOX_ARGON2_CONCURRENCY": "3"}
    unread = flood.Setting("TIPBOX_NOT_A_SETTING", "1", None, read=False)
    assert "NOT READ" in unread.label()
