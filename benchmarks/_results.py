"""How a benchmark hands its figures to the runner (``python -m benchmarks``), and the one
table the runner prints.

A benchmark ends by calling :func:`publish` with its :class:`Results`: every figure it
reports (a name, a value with its unit, how it was measured) and the settings of the run.
``publish`` prints them as a table of their own, and when the runner set
``TIPBOX_BENCH_RESULTS`` (a file path), also writes them there as JSON, for the runner to
collect. The runner turns what each benchmark left, or the lack of it, into one table
(:func:`summary_table`).

Standard library only and light, like benchmarks/_common.py: benchmarks/crypto.py reports
the peak RSS of processes that import it.
"""

from __future__ import annotations

import json
import os
import textwrap
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# The file a benchmark writes its figures to; set by the runner, one file per benchmark.
# (benchmarks/_server.py drops every TIPBOX_* variable from a server's environment.)
RESULTS_ENV = "TIPBOX_BENCH_RESULTS"
HOW_WIDTH = 100  # the "how measured" column of the runner's table wraps at this width


@dataclass(frozen=True)
class Figure:
    """One measured figure: ``value`` carries its unit (``"12.3 ms"``); ``how`` says what
    was measured, and how, in a few words."""

    name: str
    value: str
    how: str = ""


@dataclass
class Results:
    """What one benchmark run reports: its settings (quick or full, database, workers,
    sizes) and its figures, in the order they are read."""

    benchmark: str  # the module's name: "source" for benchmarks/source.py
    settings: str
    figures: list[Figure] = field(default_factory=list)

    def add(self, name: str, value: str, how: str = "") -> None:
        """Add a figure."""
        self.figures.append(Figure(name, value, how))

    def target(self, check: str, met: bool) -> None:
        """Add a target and whether it was met."""
        self.add(f"target: {check}", "met" if met else "NOT MET")

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Results:
        data: dict[str, Any] = json.loads(text)
        figures = [Figure(str(f["name"]), str(f["value"]), str(f["how"])) for f in data["figures"]]
        return cls(str(data["benchmark"]), str(data["settings"]), figures)


def figures_table(figures: list[Figure], first: str = "figure") -> str:
    """``figures`` as a table: name, value (right-aligned), how measured."""
    return columns(
        [[f.name, f.value, f.how] for f in figures], [first, "value", "how measured"], right={1}
    )


def columns(rows: list[list[str]], header: list[str], right: set[int] | None = None) -> str:
    """``rows`` under ``header`` and a rule, in aligned columns: left-aligned but for the
    columns in ``right``. (``_common.text_table`` right-aligns every column after the
    first, which suits numbers but not a column of words.)"""
    right = right or set()
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def publish(results: Results) -> None:
    """Print the figures, and write them where the runner asked (``TIPBOX_BENCH_RESULTS``)."""
    print(f"figures of benchmarks/{results.benchmark}.py ({results.settings})")
    print(figures_table(results.figures))
    target = os.environ.get(RESULTS_ENV)
    if target:
        Path(target).write_text(results.to_json(), encoding="utf-8")


# --------------------------------------------------------------------------- the runner's table


@dataclass(frozen=True)
class Outcome:
    """How one benchmark's run ended, as the runner saw it."""

    benchmark: str
    command: str  # as run, e.g. "python -m benchmarks.source --quick"
    exit_code: int | None  # None: it was stopped after its time limit
    seconds: float
    load_before: float  # the 1-minute load average when it started
    results: Results | None  # None when it left no figures (it failed before the end)
    log: str = ""  # where its whole output is

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.results is not None

    def status(self) -> str:
        """``ok``, or ``FAILED`` and why, in a few words."""
        if self.exit_code is None:
            return "FAILED: time limit"
        if self.exit_code != 0:
            return f"FAILED: exit {self.exit_code}"
        if self.results is None:
            return "FAILED: no figures"
        return "ok"

    def how(self) -> str:
        """The settings it was run with, its time and the load then; and, when it failed,
        what that means and where its output is."""
        settings = self.results.settings if self.results else self.command
        how = f"{settings}; {self.seconds:,.0f} s, load {self.load_before:.2f} at start"
        if not self.ok:
            what = "a target not met or an error" if self.results else "it ended before its figures"
            how += f"; {what}" + (f", see {self.log}" if self.log else "")
        return how


def read_results(path: Path) -> Results | None:
    """The figures a benchmark wrote to ``path``; None if it wrote none (or a broken file)."""
    try:
        return Results.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def summary_table(outcomes: list[Outcome]) -> str:
    """One table of every benchmark's figures: per benchmark a first row with its outcome,
    time and settings, then its figures."""
    rows: list[list[str]] = []
    for outcome in outcomes:
        rows += wrapped([outcome.benchmark, "run", outcome.status(), outcome.how()])
        for figure in outcome.results.figures if outcome.results else []:
            rows += wrapped(["", figure.name, figure.value, figure.how])
    return columns(rows, ["benchmark", "figure", "value", "how measured"], right={2})


def wrapped(row: list[str]) -> list[list[str]]:
    """``row``, its last cell wrapped at ``HOW_WIDTH`` onto rows of their own (a run's
    settings are long; a terminal is not)."""
    lines = textwrap.wrap(row[-1], HOW_WIDTH, break_on_hyphens=False) or [""]
    return [[*row[:-1], lines[0]]] + [[""] * (len(row) - 1) + [line] for line in lines[1:]]
