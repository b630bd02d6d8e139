"""What the source app holds for its lifetime, and the start-up checks that build it.

One ``SourceState`` per app object, in ``app.extensions``: the identity public key read
from ``keys/`` (and checked against the database), the database and blob store, the
submission limits, the Argon2id budget and the browser script's integrity hash. Nothing
here is a secret (DESIGN invariant 2).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from flask import current_app
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tipbox import directory
from tipbox.config import Config
from tipbox.crypto.keys import PublicKeys
from tipbox.db import make_session_factory
from tipbox.startup import checked_identity
from tipbox.storage import BlobStore
from tipbox.submission_rules import Limits
from tipbox.web.i18n import LANGUAGES

from .budget import Argon2Budget

EXTENSION = "tipbox_source"
# The browser script, as the JS build names it in the vendor manifest.
SCRIPT_NAME = "source.js"

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceState:
    """The source app's long-lived parts (no secret among them)."""

    config: Config
    identity: PublicKeys
    engine: Engine
    db: sessionmaker[Session]
    db_read: sessionmaker[Session]
    store: BlobStore
    limits: Limits
    budget: Argon2Budget
    languages: tuple[str, ...]
    script_integrity: str | None


def state() -> SourceState:
    """The state of the source app handling the current request."""
    found: SourceState = current_app.extensions[EXTENSION]
    return found


def instance_languages(db_read: sessionmaker[Session]) -> tuple[str, ...]:
    """The languages the instance offers that the app has catalogues for, in its order."""
    with db_read() as db:
        configured = directory.settings(db).languages
    wanted = [code.strip() for code in configured.split(",")]
    chosen = tuple(code for code in wanted if code in LANGUAGES)
    return chosen or LANGUAGES


def script_integrity(static_dir: Path) -> str | None:
    """The SRI hash of the browser script from the vendor manifest, or None (logged once).

    Without it the page carries no script and every flow runs on the server path: a page
    must never load a script whose hash it cannot pin.
    """
    manifest_path = static_dir / "vendor" / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        _log.warning("No vendor manifest: source pages will carry no script")
        return None
    if not isinstance(manifest, dict):
        manifest = {}
    found = manifest.get(SCRIPT_NAME)
    files = manifest.get("files")
    if found is None and isinstance(files, dict):
        # The manifest may also list the script among its files, with its integrity.
        entry = files.get(SCRIPT_NAME)
        found = entry.get("integrity") if isinstance(entry, dict) else None
    if not isinstance(found, str) or not found.startswith("sha384-"):
        _log.warning("No integrity hash for %s: source pages will carry no script", SCRIPT_NAME)
        return None
    return found


def build_state(config: Config, engine: Engine, store: BlobStore, static_dir: Path) -> SourceState:
    """Check the instance and assemble the app's state; ``StartupError`` if it is not right."""
    db_read = make_session_factory(engine, read_only=True)
    identity = checked_identity(config, db_read)
    return SourceState(
        config=config,
        identity=identity,
        engine=engine,
        db=make_session_factory(engine),
        db_read=db_read,
        store=store,
        limits=Limits.from_config(config),
        budget=Argon2Budget(config.argon2_concurrency),
        languages=instance_languages(db_read),
        script_integrity=script_integrity(static_dir),
    )
