"""Look for a canary anywhere a seized tipbox host keeps data (DESIGN invariant 1).

A canary is searched raw, as hex (both cases) and as base64 (standard and URL-safe, at
each of the three byte alignments), in files under the given roots and, on PostgreSQL,
in the test database's own files and the server's WAL on disk.
"""

from __future__ import annotations

import base64
import mmap
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from sqlalchemy import Engine, text


def patterns(canary: bytes) -> list[bytes]:
    """Every encoding of ``canary`` a careless writer might have produced."""
    found = [canary, canary.hex().encode(), canary.hex().upper().encode()]
    for skip in range(3):
        # Whatever the canary's offset in a base64 stream, one of these three runs of
        # characters appears in it (the last group is cut: it depends on what follows).
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            found.append(encode(canary[skip:])[:-4])
    return found


def _files(roots: Iterable[Path], exclude: Iterable[Path]) -> Iterator[Path]:
    excluded = [p.resolve() for p in exclude]
    for root in roots:
        if root.is_file():
            yield root
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            here = Path(dirpath).resolve()
            if any(here == e or e in here.parents for e in excluded):
                dirnames.clear()
                continue
            for name in filenames:
                path = here / name
                if path.is_file() and not path.is_symlink():
                    yield path


def _contains(path: Path, needles: list[bytes]) -> bool:
    try:
        with path.open("rb") as handle:
            if os.fstat(handle.fileno()).st_size == 0:
                return False
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return any(data.find(needle) != -1 for needle in needles)
    except (PermissionError, FileNotFoundError, ValueError, OSError):
        return False


def files_with(canary: bytes, roots: Iterable[Path], exclude: Iterable[Path] = ()) -> list[Path]:
    """The files under ``roots`` (less ``exclude``) that hold ``canary`` in any encoding."""
    needles = patterns(canary)
    return [path for path in _files(roots, exclude) if _contains(path, needles)]


def postgres_files(engine: Engine) -> list[Path]:
    """The on-disk files of the engine's PostgreSQL database, and the server's WAL."""
    with engine.connect() as conn:
        data_dir = Path(conn.execute(text("SHOW data_directory")).scalar_one())
        oid = conn.execute(
            text("SELECT oid FROM pg_database WHERE datname = current_database()")
        ).scalar_one()
        conn.execute(text("CHECKPOINT"))
    return [data_dir / "base" / str(oid), data_dir / "pg_wal"]
