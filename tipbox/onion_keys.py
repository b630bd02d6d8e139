"""Onion service keys: Tor's ``HiddenServiceDir`` files, read and written again.

A v3 onion service is its Ed25519 key: Tor keeps the expanded secret key (a clamped
scalar and a nonce prefix, 64 bytes) after a 32-byte header, and derives the public key
and the address from it. Backups carry the secret key file sealed (tipbox.backup);
restoring writes it back with the public key file and the hostname derived here.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path
from typing import Final

from nacl.bindings import crypto_scalarmult_ed25519_base_noclamp

from tipbox.onion import OnionError, sync_dir

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
    sync_dir(directory)
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
