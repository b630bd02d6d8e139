"""What the journalist app holds for its lifetime: config, database, blob store, the
identity public key (read from ``keys/`` at start-up) and the Argon2id gate.

One ``JournalistState`` per app object, in ``app.extensions``. The gate has one slot per
process: every journalist Argon2id run takes 256 MiB, and a second one waits for no one
(``tipbox.journalist_auth.Argon2Gate`` refuses instead of queuing).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tipbox.config import Config
from tipbox.crypto.keys import PublicKeys
from tipbox.journalist_auth import Argon2Gate
from tipbox.storage import BlobStore

EXTENSION = "tipbox_journalist"
# Argon2id runs allowed at once in one process (256 MiB each).
GATE_SLOTS = 1
# What a "busy" answer tells the browser to wait, in seconds.
RETRY_AFTER_SECONDS = 5


@dataclass(frozen=True)
class JournalistState:
    """The journalist app's long-lived parts."""

    config: Config
    engine: Engine
    db: sessionmaker[Session]
    gate: Argon2Gate
    store: BlobStore
    # The trust anchor every directory entry is verified against, checked against the
    # database at start-up (tipbox.startup).
    identity: PublicKeys


def state() -> JournalistState:
    """The state of the journalist app handling the current request."""
    found: JournalistState = current_app.extensions[EXTENSION]
    return found
