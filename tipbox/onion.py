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
spool, and ``tipbox.onion_sync.sync_clients`` (``tipbox onion sync``, run as Tor's user by
``tipbox-onion-sync.service`` whenever the spool changes) checks every file again, copies
them into Tor's directory and has Tor reloaded; elsewhere the caller tells the operator to
run ``systemctl reload tor``. The functions with a session check the journalist in the
database and record audit events in the caller's transaction, without committing.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

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
    sync_dir(directory)
    return Device(username, device_name, target)


def revoke_device(config: Config, username: str, device_name: str) -> bool:
    """Delete one device's file; return whether there was one."""
    directory = _clients_dir(config)
    path = directory / file_name(username, device_name)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    sync_dir(directory)
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
        sync_dir(_clients_dir(config))
    return revoked


def sync_dir(directory: Path) -> None:
    """fsync ``directory``, so that a file just linked or removed in it stays so."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
