"""Journalist devices from the journalist app's spool into Tor's ``authorized_clients/``
(``tipbox onion sync``).

In the deployment the journalist app (user tipbox-journalist) cannot write Tor's
authorized_clients/ (Tor wants its onion directories 0700 debian-tor). It writes device
files into a spool of its own instead; tipbox-onion-sync.service, as debian-tor, copies
them into Tor's directory with ``sync_clients`` and reloads Tor. The spool's writer is
less trusted than Tor, so every file is checked again here as if it came from outside.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from tipbox.onion import KEY_BYTES, PREFIX, SUFFIX, InvalidKey, OnionError, parse_key_line

SPOOL_FILE: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,99}\.auth")
# A key nobody holds, written when no device is left: an empty authorized_clients/ would
# make the journalist onion public, so the last revocation closes it instead.
PLACEHOLDER: Final = "_no-device.auth"
MAX_SPOOL_FILE_BYTES: Final = 128
_SYNC_TEMP: Final = re.compile(r"\.sync-[0-9a-f]{16}\.tmp")


@dataclass(frozen=True)
class SyncResult:
    """What ``sync_clients`` changed in the target, and what it refused from the spool."""

    added: tuple[str, ...]
    updated: tuple[str, ...]
    removed: tuple[str, ...]
    refused: tuple[tuple[str, str], ...]
    kept: tuple[str, ...]
    locked: bool

    @property
    def changed(self) -> bool:
        """True when Tor has something new to read."""
        return bool(self.added or self.updated or self.removed)


def _open_dir(path: Path, what: str) -> int:
    """An fd of directory ``path``, itself not a symlink; every later access is relative to
    it, so nothing can swap a path component underneath."""
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise OnionError(f"the {what} {path} does not exist") from None
    except OSError as exc:
        raise OnionError(f"the {what} {path} is not a directory one can open: {exc}") from None


def _read_bounded(dir_fd: int, name: str) -> bytes | str:
    """The bytes of regular file ``name`` (at most ``MAX_SPOOL_FILE_BYTES``), or why not."""
    try:
        fd = os.open(
            name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd
        )
    except OSError as exc:
        return f"cannot open it ({exc.strerror}; symbolic links are refused)"
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return "not a regular file"
        if info.st_size > MAX_SPOOL_FILE_BYTES:
            return f"larger than {MAX_SPOOL_FILE_BYTES} bytes"
        data = os.read(fd, MAX_SPOOL_FILE_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_SPOOL_FILE_BYTES:
        return f"larger than {MAX_SPOOL_FILE_BYTES} bytes"
    return data


def _wanted(spool_fd: int) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """The spool's valid files (name to canonical line) and the refused ones, with reasons."""
    wanted: dict[str, str] = {}
    refused: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for name in sorted(os.listdir(spool_fd)):
        if name.startswith("."):
            continue  # a writer's temporary file (add_device), never a device
        if name == PLACEHOLDER or not SPOOL_FILE.fullmatch(name):
            refused.append((name, "not a device file name (<name>.auth, A-Z a-z 0-9 _ -)"))
            continue
        data = _read_bounded(spool_fd, name)
        if isinstance(data, str):
            refused.append((name, data))
            continue
        try:
            line = parse_key_line(data.decode("ascii"))
        except (UnicodeDecodeError, InvalidKey) as exc:
            refused.append((name, f"not a client key line: {exc}"))
            continue
        if line in seen:
            refused.append((name, f"the same key as {seen[line]}"))
            continue
        seen[line] = name
        wanted[name] = line + "\n"
    return wanted, refused


def _placeholder_line() -> str:
    # A fresh random public key whose private half is never made: nobody can connect.
    return PREFIX + base64.b32encode(secrets.token_bytes(KEY_BYTES)).decode().rstrip("=") + "\n"


def _write_target(target_fd: int, name: str, text: str) -> None:
    temporary = f".sync-{secrets.token_hex(8)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(temporary, flags, 0o600, dir_fd=target_fd)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.rename(temporary, name, src_dir_fd=target_fd, dst_dir_fd=target_fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary, dir_fd=target_fd)
        raise


def sync_clients(spool: Path, target: Path) -> SyncResult:
    """Make Tor's ``authorized_clients/`` (``target``) hold exactly the spool's valid device
    files: each ``<name>.auth`` a regular file (no symlink) of at most 128 bytes holding
    exactly one client key line (``parse_key_line``), each key once. Refused files are
    reported and left out (so a damaged file revokes its device rather than reaching Tor).

    Files are written 0600, atomically (temporary name, fsync, rename); ``.auth`` files no
    longer wanted are removed. With no valid file left, the target gets ``PLACEHOLDER``, a
    key nobody holds, because an empty directory would make the onion public. The target
    must be a directory of the calling user with no access for others (mode 0700); it is
    made 0700 if missing. ``OnionError`` when either directory is unusable.
    """
    # A change made while this runs may not start another run (systemd's path unit may not
    # watch while its service runs): read the spool again after applying it, until stable.
    total: list[SyncResult] = []
    wanted, refused = _read_spool(spool)
    for _ in range(SYNC_PASSES):
        total.append(_sync_once(wanted, refused, target))
        again = _read_spool(spool)
        if again == (wanted, refused):
            break
        wanted, refused = again
    return _merged(total)


SYNC_PASSES: Final = 5


def _read_spool(spool: Path) -> tuple[dict[str, str], list[tuple[str, str]]]:
    spool_fd = _open_dir(spool, "spool")
    try:
        if os.fstat(spool_fd).st_mode & 0o002:
            raise OnionError(f"the spool {spool} is writable by anyone: refusing to read it")
        return _wanted(spool_fd)
    finally:
        os.close(spool_fd)


def _merged(results: list[SyncResult]) -> SyncResult:
    """One result for several passes: what changed in any, what the last one refused."""
    last = results[-1]

    def union(pick: str) -> tuple[str, ...]:
        return tuple(sorted({n for r in results for n in getattr(r, pick)}))

    return SyncResult(
        union("added"), union("updated"), union("removed"), last.refused, last.kept, last.locked
    )


def _sync_once(wanted: dict[str, str], refused: list[tuple[str, str]], target: Path) -> SyncResult:
    wanted = dict(wanted)
    locked = not wanted
    if locked:
        wanted = {PLACEHOLDER: ""}
    if not target.exists() and not target.is_symlink():
        try:
            target.mkdir(mode=0o700)
        except OSError as exc:
            raise OnionError(f"cannot make the target {target}: {exc.strerror}") from None
    target_fd = _open_dir(target, "target")
    try:
        info = os.fstat(target_fd)
        if info.st_uid != os.geteuid() or info.st_mode & 0o077:
            raise OnionError(
                f"{target} must be this user's directory with mode 0700 (Tor's own rule)"
            )
        return _apply(target_fd, wanted, refused, locked)
    finally:
        os.close(target_fd)


def _apply(
    target_fd: int, wanted: dict[str, str], refused: list[tuple[str, str]], locked: bool
) -> SyncResult:
    added: list[str] = []
    updated: list[str] = []
    removed: list[str] = []
    kept: list[str] = []
    present = set(os.listdir(target_fd))
    for name in sorted(present):
        if _SYNC_TEMP.fullmatch(name):
            os.unlink(name, dir_fd=target_fd)  # left by a sync that crashed
        elif name.endswith(SUFFIX) and name not in wanted:
            try:
                os.unlink(name, dir_fd=target_fd)
            except IsADirectoryError:
                raise OnionError(f"{name} in the target is a directory: remove it") from None
            removed.append(name)
    for name, text in sorted(wanted.items()):
        current = _read_bounded(target_fd, name) if name in present else None
        if name == PLACEHOLDER and isinstance(current, bytes) and current:
            kept.append(name)  # any placeholder key will do: keep the one Tor has
            continue
        if name == PLACEHOLDER:
            text = _placeholder_line()
        if current == text.encode("ascii"):
            kept.append(name)
            continue
        _write_target(target_fd, name, text)
        (updated if current is not None else added).append(name)
    if added or updated or removed:
        os.fsync(target_fd)
    return SyncResult(
        tuple(added), tuple(updated), tuple(removed), tuple(refused), tuple(kept), locked
    )
