"""What the source app holds for its lifetime, the start-up checks that build it, and the
instance settings of the current request.

One ``SourceState`` per app object, in ``app.extensions``: the identity public key read
from ``keys/`` (and checked against the database), the database and blob store, the
configuration's submission limits (the ceiling), the Argon2id budget and the browser
script's integrity hash. Nothing here is a secret (DESIGN invariant 2).

The instance settings (name, languages, limits, files accepted, logo) are read once per
request, on first use, and kept on ``flask.g``: an admin's change shows on the next page in
every process, with no cache to expire (docs/decisions.md, "Instance settings").
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from flask import current_app, g
from sqlalchemy import Engine, event
from sqlalchemy.orm import ORMExecuteState, Session, defer, sessionmaker

from tipbox.config import Config
from tipbox.crypto.keys import PublicKeys
from tipbox.db import make_session_factory
from tipbox.models import Source
from tipbox.settings import Settings
from tipbox.settings import read as read_settings
from tipbox.startup import checked_identity
from tipbox.storage import BlobStore
from tipbox.submission_rules import Limits

from .budget import Argon2Budget, HostSlots, PageCache

EXTENSION = "tipbox_source"
# Where the current request's settings are kept on flask.g.
_SETTINGS_KEY = "tipbox_source_settings"
# The browser script, as the JS build names it in the vendor manifest.
SCRIPT_NAME = "source.js"

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceState:
    """The source app's long-lived parts (no secret among them).

    ``limits`` are the configuration's, the most any request may be allowed (the app's
    ``MAX_CONTENT_LENGTH`` is made from them); ``languages`` are those offered at start-up,
    used only when the settings cannot be read. A request uses ``current_limits()``.
    """

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
    busy_pages: PageCache


def state() -> SourceState:
    """The state of the source app handling the current request."""
    found: SourceState = current_app.extensions[EXTENSION]
    return found


def current_settings() -> Settings:
    """The instance settings for the current request: read on first use, then kept."""
    found = g.get(_SETTINGS_KEY)
    if not isinstance(found, Settings):
        st = state()
        with st.db_read() as db:
            found = read_settings(db, st.config)
        setattr(g, _SETTINGS_KEY, found)
    return found


def current_limits() -> Limits:
    """What a submission of the current request may hold: the configuration's limits,
    lowered by the settings, with no file at all when files are not accepted."""
    return current_settings().submission_limits


def instance_languages(config: Config, db_read: sessionmaker[Session]) -> tuple[str, ...]:
    """The languages the instance offers that the app has catalogues for, in its order."""
    with db_read() as db:
        return read_settings(db, config).languages


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


# Journalists' triage columns: the source app never loads them, and its database role may
# not read them (tipbox.db_roles), so whole-row loads of a source leave them out.
_TRIAGE_DEFERRED = tuple(
    defer(column, raiseload=True)
    for column in (Source.status, Source.starred, Source.assignee_id, Source.spam_since)
)


def _leave_out_triage(orm_state: ORMExecuteState) -> None:
    if not orm_state.is_select or orm_state.is_column_load:
        return
    if any(found.get("expr") is Source for found in orm_state.statement.column_descriptions):  # type: ignore[attr-defined]
        orm_state.statement = orm_state.statement.options(*_TRIAGE_DEFERRED)


def source_session_factory(engine: Engine, *, read_only: bool = False) -> sessionmaker[Session]:
    """``make_session_factory`` for the source app: loads of a source leave out triage."""
    factory = make_session_factory(engine, read_only=read_only)
    event.listen(factory, "do_orm_execute", _leave_out_triage)
    return factory


def host_slots(config: Config) -> HostSlots | None:
    """This host's Argon2id slots (``Config.logins_in_flight``; 0: no host-wide bound)."""
    if config.logins_in_flight <= 0:
        return None
    return HostSlots(config.run_dir / "argon2", config.logins_in_flight)


def build_state(config: Config, engine: Engine, store: BlobStore, static_dir: Path) -> SourceState:
    """Check the instance and assemble the app's state; ``StartupError`` if it is not right."""
    db_read = source_session_factory(engine, read_only=True)
    identity = checked_identity(config, db_read)
    return SourceState(
        config=config,
        identity=identity,
        engine=engine,
        db=source_session_factory(engine),
        db_read=db_read,
        store=store,
        limits=Limits.from_config(config),
        budget=Argon2Budget(config.argon2_concurrency, host_slots(config)),
        languages=instance_languages(config, db_read),
        script_integrity=script_integrity(static_dir),
        busy_pages=PageCache(),
    )
