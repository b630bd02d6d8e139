"""Journalist devices authorized on the journalist onion service (Tor v3 client
authorization, issue #6).

Tor serves the journalist onion only to a client whose x25519 public key is in the
service's ``authorized_clients/`` directory: one file ``<name>.auth`` per client, holding
the single line ``descriptor:x25519:<52 base32 characters>``. Here each file is named
``<username>--<device>.auth``, so that removing or deactivating a journalist can revoke
every device of theirs. The key pair is made on the journalist's device and only the
public line reaches the server (``INSTRUCTIONS``); a private key offered by mistake is
refused.

The files are written atomically (a temporary name without ``.auth``, which Tor ignores,
then a hard link that refuses to replace anything) with mode 0600 in a 0700 directory
(Tor's own), or 0640 in a 0750 one (the deployment's spool). Tor reads them again on
reload: nothing here signals Tor. In the deployment the journalist app writes into its
spool, and ``sync_clients`` (``tipbox onion sync``, run as Tor's user by
``tipbox-onion-sync.service`` whenever the spool changes) checks every file again, copies
them into Tor's directory and has Tor reloaded; elsewhere the caller tells the operator to
run ``systemctl reload tor``. The functions with a session check the journalist in the
database and record audit events in the caller's transaction, without committing.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from nacl.bindings import crypto_scalarmult_ed25519_base_noclamp
from sqlalchemy import select
from sqlalchemy.orm import Session

from tipbox import audit
from tipbox.config import Config
from tipbox.models import Journalist

PREFIX: Final = "descriptor:x25519:"
KEY_CHARS: Final = 52  # 32 bytes in unpadded RFC 4648 base32
KEY_BYTES: Final = 32
SUFFIX: Final = ".auth"
SEPARATOR: Final = "--"
# A username or device name as it may appear in a file name: short, lower case, no "--"
# (the separator), not starting with a dot or a hyphen.
NAME: Final = re.compile(r"[a-z0-9_](?:[a-z0-9_]|-(?!-)){0,31}")
_BASE32: Final = re.compile(r"[A-Z2-7]{52}")
# What a private key line looks like (an .auth_private file): refused with its own message.
_PRIVATE: Final = re.compile(r"[a-z2-7]{56}(?:\.onion)?:descriptor:x25519:", re.IGNORECASE)
RELOAD_HINT: Final = (
    "Tor reads authorized clients on reload. With deploy/install.sh this happens by itself "
    "within seconds (tipbox-onion-sync); otherwise run `systemctl reload tor` as root."
)
NOT_CONFIGURED: Final = "this instance has no journalist onion service configured"


class OnionError(Exception):
    """A device operation was refused; the message says why."""


class InvalidKey(OnionError, ValueError):  # noqa: N818 - a refusal the caller explains
    """Not a Tor client authorization public key line."""


class InvalidName(OnionError, ValueError):  # noqa: N818 - a refusal the caller explains
    """A username or device name that cannot be part of a client file name."""


class NotConfigured(OnionError):  # noqa: N818 - a refusal the caller explains
    """``Config.onion_clients_dir`` is not set."""


@dataclass(frozen=True)
class Device:
    """One authorized client file. ``username`` is None for a file not named
    ``<username>--<device>.auth`` (such as one the installer wrote from ``--client-auth``)."""

    username: str | None
    device: str
    path: Path


# --- validation --------------------------------------------------------------------------


def parse_key_line(text: str) -> str:
    """The canonical line ``descriptor:x25519:<key>`` of ``text``, or ``InvalidKey``.

    Accepts exactly one such line, optionally ending in one newline; no other whitespace,
    no padding, no second line, and a key that decodes to 32 bytes with no stray bits.
    """
    line = text.removesuffix("\n").removesuffix("\r")
    if _PRIVATE.match(line):
        raise InvalidKey(
            "this is a PRIVATE key (<onion>:descriptor:x25519:…): it must never leave the "
            "journalist's device. Give the public line, descriptor:x25519:<52 characters>"
        )
    expected = f"expected one line {PREFIX}<52 base32 characters A-Z 2-7, no '=' padding>"
    if not line.startswith(PREFIX):
        raise InvalidKey(f"not a Tor client authorization public key: {expected}")
    key = line.removeprefix(PREFIX)
    if len(key) != KEY_CHARS or not _BASE32.fullmatch(key):
        raise InvalidKey(f"the key is not 52 base32 characters: {expected}")
    try:
        raw = base64.b32decode(key + "====")
    except binascii.Error:  # pragma: no cover - the pattern already excludes this
        raise InvalidKey(f"the key is not valid base32: {expected}") from None
    if len(raw) != KEY_BYTES or base64.b32encode(raw).decode("ascii").rstrip("=") != key:
        raise InvalidKey("the key does not decode to a 32-byte x25519 public key")
    return PREFIX + key


def check_name(name: str, what: str) -> str:
    """``name`` if it can be part of a client file name, else ``InvalidName``."""
    if not NAME.fullmatch(name):
        raise InvalidName(
            f"the {what} {name!r} cannot name a device file: 1 to 32 lower-case letters, "
            f"digits, _ or -, not starting with '-' and without '--'"
        )
    return name


def file_name(username: str, device: str) -> str:
    """``<username>--<device>.auth``, both parts checked."""
    return (
        f"{check_name(username, 'username')}{SEPARATOR}{check_name(device, 'device name')}{SUFFIX}"
    )


# --- the directory -----------------------------------------------------------------------


def _clients_dir(config: Config, *, create: bool = False) -> Path:
    directory = config.onion_clients_dir
    if directory is None:
        raise NotConfigured(NOT_CONFIGURED)
    if create and not directory.exists():
        directory.mkdir(mode=0o700)
    try:
        mode = directory.stat().st_mode
    except FileNotFoundError:
        raise OnionError(f"{directory} does not exist") from None
    if not stat.S_ISDIR(mode):
        raise OnionError(f"{directory} is not a directory")
    # 0700: Tor's own authorized_clients/. 0750: the deployment's spool, which the sync
    # service reads through the group (tipbox-onion-sync.service). Never more.
    if mode & 0o027:
        raise OnionError(
            f"{directory} must be mode 0700 (Tor's directory) or 0750 (a spool read by "
            "`tipbox onion sync`): Tor refuses anything looser"
        )
    return directory


def _file_mode(directory: Path) -> int:
    """0600, or 0640 in a group-readable spool: a file is as readable as its directory."""
    return 0o600 | (directory.stat().st_mode & 0o040)


def _split(name: str) -> tuple[str | None, str] | None:
    """(username, device) of a client file name, (None, stem) for another ``.auth`` file,
    None for a file Tor ignores."""
    if not name.endswith(SUFFIX) or name.startswith("."):
        return None
    stem = name.removesuffix(SUFFIX)
    username, sep, device = stem.partition(SEPARATOR)
    if sep and NAME.fullmatch(username) and NAME.fullmatch(device):
        return username, device
    return None, stem


def list_devices(config: Config) -> list[Device]:
    """Every authorized client file, by username then device (others first)."""
    directory = _clients_dir(config)
    found = []
    for entry in directory.iterdir():
        parts = _split(entry.name)
        if parts is not None:
            found.append(Device(parts[0], parts[1], entry))
    return sorted(found, key=lambda d: (d.username is not None, d.username or "", d.device))


def add_device(config: Config, username: str, device_name: str, key_line: str) -> Device:
    """Write ``<username>--<device>.auth`` with the checked key line, atomically, mode 0600.

    Refuses a device name the journalist already uses (revoke it first) and a key already
    authorized under another name. Does not check the journalist: see ``authorize``.
    """
    line = parse_key_line(key_line)
    name = file_name(username, device_name)
    directory = _clients_dir(config, create=True)
    for existing in list_devices(config):
        try:
            held = existing.path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if held == line:
            raise OnionError(f"this key is already authorized as {existing.path.name}")
    target = directory / name
    temporary = directory / f".{name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        # Explicitly: the services' UMask=0077 would strip a spool file's group bit.
        os.fchmod(fd, _file_mode(directory))
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(line + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temporary, target)
        except FileExistsError:
            raise OnionError(
                f"{username} already has a device named {device_name!r}; revoke it first"
            ) from None
    finally:
        temporary.unlink(missing_ok=True)
    _sync_dir(directory)
    return Device(username, device_name, target)


def revoke_device(config: Config, username: str, device_name: str) -> bool:
    """Delete one device's file; return whether there was one."""
    directory = _clients_dir(config)
    path = directory / file_name(username, device_name)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    _sync_dir(directory)
    return True


def revoke_devices(config: Config, username: str) -> list[str]:
    """Delete every device file of ``username``; return the device names revoked.

    A username that cannot name a device file has none: nothing to do.
    """
    if not NAME.fullmatch(username):
        _clients_dir(config)
        return []
    revoked = []
    for device in list_devices(config):
        if device.username == username:
            device.path.unlink(missing_ok=True)
            revoked.append(device.device)
    if revoked:
        _sync_dir(_clients_dir(config))
    return revoked


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- sync: from the journalist app's spool into Tor's directory ----------------------------
#
# In the deployment the journalist app (user tipbox-journalist) cannot write Tor's
# authorized_clients/ (Tor wants its onion directories 0700 debian-tor). It writes device
# files into a spool of its own instead; tipbox-onion-sync.service, as debian-tor, copies
# them into Tor's directory with ``sync_clients`` and reloads Tor. The spool's writer is
# less trusted than Tor, so every file is checked again here as if it came from outside.

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


# --- onion service keys (Tor's HiddenServiceDir) ------------------------------------------
#
# A v3 onion service is its Ed25519 key: Tor keeps the expanded secret key (a clamped
# scalar and a nonce prefix, 64 bytes) after a 32-byte header, and derives the public key
# and the address from it. Backups carry the secret key file sealed (tipbox.backup);
# restoring writes it back with the public key file and the hostname derived here.

SECRET_KEY_FILE: Final = "hs_ed25519_secret_key"  # noqa: S105 - a file name
PUBLIC_KEY_FILE: Final = "hs_ed25519_public_key"
HOSTNAME_FILE: Final = "hostname"
SECRET_HEADER: Final = b"== ed25519v1-secret: type0 ==\x00\x00\x00"
PUBLIC_HEADER: Final = b"== ed25519v1-public: type0 ==\x00\x00\x00"
SECRET_FILE_BYTES: Final = 96


def service_public_key(secret_file: bytes) -> bytes:
    """The Ed25519 public key of a Tor ``hs_ed25519_secret_key`` file's bytes, checked:
    96 bytes, Tor's header, a clamped scalar. ``OnionError`` otherwise."""
    if len(secret_file) != SECRET_FILE_BYTES or not secret_file.startswith(SECRET_HEADER):
        raise OnionError(f"not a Tor v3 onion service secret key file ({SECRET_KEY_FILE})")
    scalar = secret_file[32:64]
    if scalar[0] & 7 or scalar[31] & 0x80 or not scalar[31] & 0x40:
        raise OnionError("the onion service secret key is not a clamped Ed25519 scalar")
    try:
        return bytes(crypto_scalarmult_ed25519_base_noclamp(scalar))
    except RuntimeError:  # pragma: no cover - a clamped scalar is never zero
        raise OnionError("the onion service secret key is degenerate") from None


def onion_address(public_key: bytes) -> str:
    """The v3 address (``<56 base32>.onion``) of an onion service's Ed25519 public key."""
    version = b"\x03"
    checksum = hashlib.sha3_256(b".onion checksum" + public_key + version).digest()[:2]
    encoded = base64.b32encode(public_key + checksum + version).decode("ascii").lower()
    return encoded + ".onion"


def read_service_secret(directory: Path) -> bytes:
    """The checked secret key file of the onion service in ``directory``."""
    path = directory / SECRET_KEY_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise OnionError(f"cannot read {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(SECRET_FILE_BYTES + 1)
    service_public_key(data)
    return data


def write_service_keys(directory: Path, secret_file: bytes) -> str:
    """Put an onion service's key into ``directory`` as Tor keeps it: the secret key file,
    the public key file and ``hostname``, each 0600 and written atomically; the directory
    is made 0700 if missing. Refuses a directory that holds another service's key (the
    same key again changes nothing). Returns the address."""
    address = onion_address(service_public_key(secret_file))
    if not directory.exists() and not directory.is_symlink():
        try:
            directory.mkdir(mode=0o700)
        except OSError as exc:
            raise OnionError(f"cannot make {directory}: {exc.strerror}") from None
    if directory.is_symlink() or not directory.is_dir() or directory.stat().st_mode & 0o077:
        raise OnionError(f"{directory} must be a directory of mode 0700 (Tor's rule)")
    existing = directory / SECRET_KEY_FILE
    held = existing.exists() or existing.is_symlink()
    if held and read_service_secret(directory) != secret_file:
        raise OnionError(f"{directory} holds another onion service's key: not replaced")
    public = PUBLIC_HEADER + service_public_key(secret_file)
    for name, data in (
        (SECRET_KEY_FILE, secret_file),
        (PUBLIC_KEY_FILE, public),
        (HOSTNAME_FILE, (address + "\n").encode("ascii")),
    ):
        _write_private(directory, name, data)
    _sync_dir(directory)
    return address


def _write_private(directory: Path, name: str, data: bytes) -> None:
    temporary = directory / f".{name}.{secrets.token_hex(8)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(temporary, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.rename(temporary, directory / name)
    finally:
        temporary.unlink(missing_ok=True)


# --- with the database and the audit log ---------------------------------------------------


def authorize(
    session: Session,
    config: Config,
    actor_id: int,
    username: str,
    device_name: str,
    key_line: str,
) -> Device:
    """``add_device`` for an existing, active (not removed) journalist, audited."""
    parse_key_line(key_line)
    file_name(username, device_name)
    _clients_dir(config, create=True)
    row = session.scalars(select(Journalist).where(Journalist.username == username)).one_or_none()
    if row is None or row.removed_on is not None or not row.is_active:
        raise OnionError(f"no active journalist named {username!r}")
    audit.record(session, actor_id, "onion.device_add", username=username, device=device_name)
    return add_device(config, username, device_name, key_line)


def revoke(
    session: Session,
    config: Config,
    actor_id: int | None,
    username: str,
    device_name: str | None = None,
) -> list[str]:
    """Revoke one device of ``username``, or all of them; audit each; return their names.

    The journalist need not exist any more (a leftover file can always be revoked).
    """
    if device_name is None:
        revoked = revoke_devices(config, username)
    else:
        revoked = [device_name] if revoke_device(config, username, device_name) else []
    for device in revoked:
        audit.record(session, actor_id, "onion.device_revoke", username=username, device=device)
    return revoked


INSTRUCTIONS: Final = """\
How a journalist makes a key pair for the journalist onion service
==================================================================

Do this on the journalist's own device. The PRIVATE key never leaves it; only the
PUBLIC line is given to the admin.

1. Make the key pair (Linux or macOS, with openssl 1.1.1 or newer and coreutils):

     openssl genpkey -algorithm x25519 -out tipbox.prv.pem
     grep -v ' PRIVATE KEY' tipbox.prv.pem | base64 -d | tail -c 32 \\
         | base32 | tr -d '=' > tipbox.prv.key
     openssl pkey -in tipbox.prv.pem -pubout | grep -v ' PUBLIC KEY' | base64 -d \\
         | tail -c 32 | base32 | tr -d '=' > tipbox.pub.key

   (On macOS use `base64 -D`; `base32` is in coreutils. The basez package's
   `base64pem -d` and `base32` do the same.) Each .key file holds 52 characters.

2. Give the admin only the public line, by a channel you trust (read it out, or a
   USB stick), for example in a file named after the device:

     echo "descriptor:x25519:$(cat tipbox.pub.key)" > laptop.auth

   The admin runs:  tipbox onion add-device USERNAME laptop --key "$(cat laptop.auth)"
   (an install made by deploy/install.sh reloads Tor by itself; otherwise the admin
   then runs systemctl reload tor on the server).

3. Give Tor Browser the private key: open the journalist onion address; Tor Browser
   asks for a key ("Onion site requires authentication"): paste the 52 characters of
   tipbox.prv.key and tick "Remember this key". Saved keys are listed, and can be
   removed, in about:preferences#privacy, under "Onion Services Authentication",
   "Saved Keys...".

   For a tor daemon instead of Tor Browser: set ClientOnionAuthDir in its torrc and
   put in that directory a file tipbox.auth_private (mode 0600) holding one line:

     <journalist onion address without .onion>:descriptor:x25519:<contents of tipbox.prv.key>

4. Delete the key files the device no longer needs (shred -u tipbox.prv.pem
   tipbox.prv.key tipbox.pub.key laptop.auth) once Tor Browser has saved the key.

Lose the device, or leave the newsroom: the admin runs
  tipbox onion revoke USERNAME [DEVICE]   (removing the journalist does it too)
"""
