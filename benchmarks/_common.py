"""What every benchmark shares: units, the report's tables and figures, how the run was made,
and what Linux's ``/proc`` says of a process's memory and CPU time.

Standard library only, and none of its heavier modules: benchmarks/crypto.py reports the peak
RSS of child processes that import this module, so whatever it imports is in those figures.
The parts that need the apps (a database of the run's own, an app under gunicorn, an HTTP
client) are in benchmarks/_server.py.
"""

from __future__ import annotations

import datetime
import math
import os
import platform
import resource
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

MIB = 1 << 20
GIB = 1 << 30
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- report


def text_table(rows: list[list[str]], header: list[str]) -> str:
    """``rows`` under ``header`` and a rule, in aligned columns: the first one left-aligned,
    the others right-aligned."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    """``seconds`` in milliseconds, one decimal: ``1,234.5``."""
    return f"{seconds * 1000:,.1f}"


def size_label(total: int) -> str:
    """A size of whole MiB as ``64 MiB``, or ``1 GiB`` when it is whole GiB."""
    return f"{total // GIB} GiB" if total % GIB == 0 else f"{total // MIB} MiB"


def print_errors(counts: Iterable[Counter[str]]) -> Counter[str]:
    """Print the ten most frequent errors of all ``counts``; return them summed."""
    errors: Counter[str] = Counter()
    for count in counts:
        errors.update(count)
    for reason, times in errors.most_common(10):
        print(f"error x{times}: {reason}")
    return errors


def print_targets(checks: Mapping[str, bool]) -> int:
    """Print whether each target is met; the exit code: 0 when every one is."""
    print("targets:")
    for check, ok in checks.items():
        print(f"  {'met    ' if ok else 'NOT MET'}  {check}")
    return 0 if all(checks.values()) else 1


# --------------------------------------------------------------------------- how it was run


def utc_stamp(when: datetime.datetime | None = None) -> str:
    """``when`` (by default now), to the minute: ``2024-06-01 12:00 UTC``."""
    return (when or datetime.datetime.now(datetime.UTC)).strftime("%Y-%m-%d %H:%M UTC")


def python_label() -> str:
    """This Python's version and implementation: ``3.11.7 (CPython)``."""
    return f"{platform.python_version()} ({platform.python_implementation()})"


def platform_label() -> str:
    """The operating system and the machine's architecture: ``Linux x86_64``."""
    return f"{platform.system()} {platform.machine()}"


@contextmanager
def scratch_folder(name: str) -> Iterator[Path]:
    """A temporary folder of the run, named after the benchmark; removed after."""
    tmp = Path(tempfile.mkdtemp(prefix=f"tipbox-bench-{name}-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def peak_rss_kib() -> int:
    """This process's peak RSS so far, in KiB (``ru_maxrss``, which Linux gives in KiB)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


# --------------------------------------------------------------------------- /proc


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


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy since boot (``/proc/stat``, all CPUs)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / CLOCK_TICKS  # less idle and iowait


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


def children(pid: int) -> list[int]:
    """The pids of a process's children, in order."""
    return sorted(child for child, parent, _ in processes() if parent == pid)


def postgres_backends(database: str) -> list[int]:
    """The PostgreSQL backends connected to ``database`` (named in their process titles)."""
    found = []
    for pid, _, comm in processes():
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes() if comm == "postgres" else b""
        except OSError:
            continue
        if f" {database} ".encode() in title.replace(b"\0", b" "):
            found.append(pid)
    return found


@dataclass(frozen=True)
class ProcessMemory:
    """A server's processes' memory over one measured step, in KiB."""

    master: int  # the pid of the process that was started; the others are its workers
    # pid -> (VmHWM before the step, VmRSS at its start, VmHWM at its end)
    pids: dict[int, tuple[int, int, int]]
    reset: bool  # VmHWM was reset at the start; if not, the last figure is the peak ever

    @property
    def worker_peak_mib(self) -> float:
        """The largest worker's peak at the end of the step (0 without workers)."""
        peaks = [during for pid, (_, _, during) in self.pids.items() if pid != self.master]
        return max(peaks, default=0) / 1024


class MemoryWatch:
    """Memory over a step: made at its start, it reads every process's ``VmHWM``, resets it
    and reads ``VmRSS``; ``stop`` at its end reads ``VmHWM`` again, the step's peak."""

    def __init__(self, master: int, pids: list[int]) -> None:
        self.master = master
        self.pids = pids
        self.before = {pid: read_status(pid)["VmHWM"] for pid in pids}
        self.reset = all([reset_peak(pid) for pid in pids])  # every one, even after a refusal
        self.at_start = {pid: read_status(pid)["VmRSS"] for pid in pids}

    def stop(self) -> ProcessMemory:
        during = {pid: read_status(pid)["VmHWM"] for pid in self.pids}
        return ProcessMemory(
            self.master,
            {pid: (self.before[pid], self.at_start[pid], during[pid]) for pid in self.pids},
            self.reset,
        )


def memory_table(memory: ProcessMemory, step: str) -> str:
    """The memory table of ``memory`` in MiB, the master first, then the workers by peak;
    ``step`` names the last column's step (``VmHWM in <step>``)."""
    rows = []
    for pid, (before, at_start, during) in sorted(
        memory.pids.items(), key=lambda item: (item[0] != memory.master, -item[1][2])
    ):
        role = "master" if pid == memory.master else "worker"
        rows.append(
            [
                f"gunicorn {role} {pid}",
                f"{before / 1024:,.0f}",
                f"{at_start / 1024:,.0f}",
                f"{during / 1024:,.0f}",
            ]
        )
    during_label = f"VmHWM in {step}" if memory.reset else "VmHWM (not reset)"
    return text_table(rows, ["server memory, MiB", "VmHWM before", "VmRSS at start", during_label])
