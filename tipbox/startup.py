"""Start-up checks both web apps make before they serve anything.

An app refuses to start, with a ``StartupError`` that says what to do, when ``keys/``
holds no valid identity key, the database holds no instance, or the two name different
identity keys (DESIGN 4.1: the trust anchor is the file, and a database that disagrees
with it may have been tampered with).
"""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from tipbox import directory
from tipbox.config import Config
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import PublicKeys, read_identity_file


class StartupError(RuntimeError):
    """A web app must not start: its trust anchor or its instance is not right."""


def checked_identity(config: Config, db_read: sessionmaker[Session]) -> PublicKeys:
    """The identity key from ``keys/``, after checking that the database names the same one.

    Both apps call it at start-up. (``tipbox.instance.check_identity_file`` does the same
    for the CLI, but that module reaches the private-key side, which the source app may
    not import: DESIGN invariant 2.)
    """
    try:
        on_disk = read_identity_file(config.keys_dir)
    except OSError:
        raise StartupError(
            f"no identity key in {config.keys_dir}: run `tipbox init`, or set TIPBOX_KEYS_DIR"
        ) from None
    except Rejected as exc:
        raise StartupError(
            f"the identity key file in {config.keys_dir} is invalid: {exc}"
        ) from None
    try:
        with db_read() as db:
            in_database = directory.identity_public(db)
    except directory.NotInitialised:
        raise StartupError("the database holds no tipbox instance: run `tipbox init`") from None
    except SQLAlchemyError as exc:
        raise StartupError(
            f"cannot read the instance from the database ({type(exc).__name__})"
        ) from None
    if in_database != on_disk:
        raise StartupError(
            f"the identity key in {config.keys_dir} ({on_disk.fingerprint}) is not the one the "
            f"database names ({in_database.fingerprint}): refusing to start. Restore the "
            "right keys/ directory or database; never copy the database's key over keys/."
        )
    return on_disk
