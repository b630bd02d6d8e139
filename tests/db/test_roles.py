"""The two database roles (``tipbox.db_roles``): PostgreSQL refuses the source role.

PostgreSQL only (``TIPBOX_TEST_DATABASE_URL``). Each test makes two throwaway ``NOLOGIN``
roles, applies the grants to a migrated database holding a real instance, and acts as the
source role with ``SET ROLE`` (or, end to end, through the source app's own URL).
"""

from __future__ import annotations

import io
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from tipbox import conversations, directory, sessions, source_replies, sources
from tipbox.accounts import unlock_journalist
from tipbox.cli import cli
from tipbox.config import Config
from tipbox.crypto.keys import Role, keypair_from_seed
from tipbox.db import make_engine
from tipbox.db_roles import HIDE_REPLY_FUNCTION, apply_roles, roles_sql
from tipbox.instance import InitResult, init_instance
from tipbox.models import KIND_NOTE, Base, Item, Journalist, SessionRow, Source, Wrap
from tipbox.source import create_app
from tipbox.source.state import EXTENSION, SourceState, source_session_factory
from tipbox.storage import FilesystemBlobStore
from tipbox.submissions import Limits, accept_server_submission

PG_URL_ENV = "TIPBOX_TEST_DATABASE_URL"
pytestmark = pytest.mark.skipif(not os.environ.get(PG_URL_ENV), reason=f"{PG_URL_ENV} is not set")

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
PERMISSION_DENIED = "42501"
CODENAME_RE = re.compile(r'<p class="codename" lang="en">([^<]+)</p>')
TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
REPLY_ID_RE = re.compile(r'action="/replies/([0-9a-f]{32})/hide"')


@pytest.fixture
def db_backend() -> str:
    """Only PostgreSQL has roles (overrides the backend parameter of tests/conftest.py)."""
    return "postgresql"


@dataclass(frozen=True)
class Roles:
    source: str
    journalist: str


@pytest.fixture
def roles(engine: Engine) -> Iterator[Roles]:
    """Two throwaway roles, with the grants applied to the test's migrated database."""
    suffix = secrets.token_hex(4)
    made = Roles(source=f"tbx_source_{suffix}", journalist=f"tbx_journalist_{suffix}")
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {made.source} NOLOGIN")
        conn.exec_driver_sql(f"CREATE ROLE {made.journalist} NOLOGIN")
        apply_roles(conn, made.source, made.journalist)
    try:
        yield made
    finally:
        engine.dispose()
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE usename = current_user AND pid <> pg_backend_pid()"
                " AND datname = current_database()"
            )
            conn.exec_driver_sql(f"DROP OWNED BY {made.source}, {made.journalist}")
            conn.exec_driver_sql(f"DROP ROLE {made.source}, {made.journalist}")
        engine.dispose()


@pytest.fixture
def instance(session_factory: sessionmaker[Session], config: Config) -> InitResult:
    with session_factory() as db:
        result = init_instance(
            db, config, name="Roles Times", admin_username="admin", recovery_in_place=True
        )
        db.commit()
    return result


@dataclass(frozen=True)
class World:
    """A source with a message, a reply and a note, and a journalist session."""

    source_public_id: bytes
    source_seed: bytes
    message_id: bytes
    reply_id: bytes
    note_id: bytes


def _add_reply(
    factory: sessionmaker[Session], config: Config, instance: InitResult, source_id: bytes
) -> bytes:
    with factory() as db:
        identity = directory.identity_public(db)
        admin = db.scalars(select(Journalist).where(Journalist.username == "admin")).one()
        unlocked = unlock_journalist(db, identity, admin, instance.admin.passphrase)
        reply_id = conversations.add_reply(
            db,
            FilesystemBlobStore(config.blob_dir),
            identity,
            admin,
            unlocked.keypair,
            source_id,
            "Who else was there?",
        )
        db.commit()
    return reply_id


@pytest.fixture
def world(session_factory: sessionmaker[Session], config: Config, instance: InitResult) -> World:
    store = FilesystemBlobStore(config.blob_dir)
    with session_factory() as db:
        new = sources.create_source(db)
        identity = directory.identity_public(db)
        accept_server_submission(
            db, store, identity, new.public_id, "a tip", [], Limits.from_config(config)
        )
        db.commit()
        message_id = db.scalars(select(Item.public_id)).one()
        admin_id = db.scalars(select(Journalist.id)).one()
        sessions.create(db, "journalist", admin_id, "admin", None, {}, 600, 3600, NOW)
        db.commit()
    reply_id = _add_reply(session_factory, config, instance, new.public_id)
    with session_factory() as db:
        identity = directory.identity_public(db)
        admin = db.scalars(select(Journalist)).one()
        unlocked = unlock_journalist(db, identity, admin, instance.admin.passphrase)
        note_id = conversations.add_note(
            db, store, identity, admin, unlocked.keypair, new.public_id, "a note"
        )
        db.commit()
    return World(new.public_id, new.seed, message_id, reply_id, note_id)


def _as(conn: Connection, role: str) -> Connection:
    conn.exec_driver_sql(f"SET ROLE {role}")
    return conn


def _refused(conn: Connection, statement: str, **params: object) -> None:
    """``statement`` fails with PostgreSQL's "permission denied" (SQLSTATE 42501)."""
    with pytest.raises(ProgrammingError) as caught, conn.begin_nested():
        conn.execute(text(statement), params)
    assert getattr(caught.value.orig, "sqlstate", None) == PERMISSION_DENIED, caught.value


# --- what the source role is refused -------------------------------------------------------

FORBIDDEN_READS = [
    "SELECT * FROM journalists",
    "SELECT * FROM grants",
    "SELECT * FROM read_markers",
    "SELECT * FROM source_tags",
    "SELECT * FROM audit_events",
    "SELECT * FROM alembic_version",
    "SELECT count(*) FROM journalists",
]


# Tables the source role may read (some only in part: row policies and column grants).
SOURCE_READABLE = {
    "instance_settings",
    "directory_entries",
    "newsroom_keys",
    "items",
    "wraps",
    "sessions",
    "sources",
    "budget_counters",
}


def test_every_table_is_either_readable_by_the_source_role_or_tried_here() -> None:
    # A new table must be placed on one side, so "every table it must not read" stays true.
    refused = {statement.split(" FROM ")[1].split()[0] for statement in FORBIDDEN_READS}
    tables = set(Base.metadata.tables) | {"alembic_version"}
    assert SOURCE_READABLE.isdisjoint(refused)
    assert tables == SOURCE_READABLE | refused


@pytest.mark.parametrize("statement", FORBIDDEN_READS)
def test_the_source_role_cannot_read_journalist_or_triage_tables(
    engine: Engine, roles: Roles, world: World, statement: str
) -> None:
    with engine.connect() as conn, conn.begin():
        _refused(_as(conn, roles.source), statement)


FORBIDDEN_WRITES = [
    "UPDATE items SET blob_size = blob_size",
    "UPDATE items SET kind = 1 WHERE kind = 3",
    "DELETE FROM items",
    "DELETE FROM items WHERE kind = 1",
    "UPDATE wraps SET wrap = wrap",
    "DELETE FROM wraps",
    "TRUNCATE items",
    "TRUNCATE wraps",
    "UPDATE sources SET status = 5",
    "UPDATE sources SET starred = true",
    "UPDATE sources SET spam_since = current_date",
    "UPDATE instance_settings SET spam_purge_days = 1",
    "UPDATE sources SET x25519 = x25519",
    "UPDATE instance_settings SET name = 'x'",
    "DELETE FROM directory_entries",
    "INSERT INTO audit_events (day, action, detail) VALUES (current_date, 'x', '{}')",
    "INSERT INTO read_markers (journalist_id, source_id, seen_seq) VALUES (1, 1, 1)",
]


@pytest.mark.parametrize("statement", FORBIDDEN_WRITES)
def test_the_source_role_cannot_change_items_wraps_or_journalist_data(
    engine: Engine, roles: Roles, world: World, statement: str
) -> None:
    with engine.connect() as conn, conn.begin():
        _refused(_as(conn, roles.source), statement)


def test_notes_and_their_wraps_are_invisible_to_the_source_role(
    engine: Engine, roles: Roles, world: World
) -> None:
    with engine.connect() as conn, conn.begin():
        note = {"id": world.note_id}
        _as(conn, roles.source)
        # Row-level security: no error, no row.
        assert conn.execute(text("SELECT kind FROM items ORDER BY seq")).scalars().all() == [1, 3]
        assert conn.execute(text("SELECT count(*) FROM items WHERE kind = 4")).scalar() == 0
        assert conn.execute(text("SELECT id FROM items WHERE public_id = :id"), note).all() == []
        hidden_wraps = conn.execute(
            text(
                "SELECT count(*) FROM wraps w WHERE NOT EXISTS"
                " (SELECT 1 FROM items i WHERE i.id = w.item_id)"
            )
        ).scalar()
        assert hidden_wraps == 0
        conn.exec_driver_sql("RESET ROLE")
        # The owner sees the note and its wraps.
        assert conn.execute(text("SELECT count(*) FROM items WHERE kind = :k"), {"k": KIND_NOTE})
        total = conn.execute(text("SELECT count(*) FROM wraps")).scalar()
        _as(conn, roles.source)
        assert conn.execute(text("SELECT count(*) FROM wraps")).scalar() < total  # type: ignore[operator]


def test_journalist_sessions_are_invisible_and_cannot_be_forged(
    engine: Engine, roles: Roles, world: World
) -> None:
    with engine.connect() as conn, conn.begin():
        _as(conn, roles.source)
        apps = conn.execute(text("SELECT app FROM sessions")).scalars().all()
        assert "journalist" not in apps
        deleted = conn.execute(text("DELETE FROM sessions WHERE app = 'journalist'"))
        assert deleted.rowcount == 0
        row = {
            "id": secrets.token_hex(16),
            "jid": None,
            "app": "journalist",
        }
        insert = (
            "INSERT INTO sessions (id, app, journalist_id, box, idle_seconds, idle_expires_at,"
            " absolute_expires_at) VALUES (:id, :app, :jid, '\\x00', 60, now(), now())"
        )
        for forged in ({**row}, {**row, "app": "source", "jid": 1}):
            with pytest.raises(ProgrammingError) as caught, conn.begin_nested():
                conn.execute(text(insert), forged)
            # 42501: "new row violates row-level security policy".
            assert getattr(caught.value.orig, "sqlstate", None) == PERMISSION_DENIED
        conn.exec_driver_sql("RESET ROLE")
        assert conn.execute(text("SELECT count(*) FROM sessions WHERE app = 'journalist'")).scalar()


def test_the_source_role_cannot_insert_replies_notes_or_triaged_sources(
    engine: Engine, roles: Roles, world: World
) -> None:
    with engine.connect() as conn, conn.begin():
        _as(conn, roles.source)
        source_id = conn.execute(text("SELECT id FROM sources")).scalar_one()
        for kind in (3, 4):
            item = {"pid": secrets.token_bytes(16), "sid": source_id, "kind": kind}
            with pytest.raises(ProgrammingError) as caught, conn.begin_nested():
                conn.execute(
                    text(
                        "INSERT INTO items (public_id, source_id, seq, kind, version, blob_id,"
                        " blob_size, sealed_meta, created_on) VALUES (:pid, :sid, 99, :kind,"
                        " 1, md5(random()::text), 0, decode(repeat('00', 1064), 'hex'),"
                        " current_date)"
                    ),
                    item,
                )
            assert getattr(caught.value.orig, "sqlstate", None) == PERMISSION_DENIED
        reply_item = conn.execute(text("SELECT id FROM items WHERE kind = 3")).scalar_one()
        with pytest.raises(ProgrammingError), conn.begin_nested():
            conn.execute(
                text(
                    "INSERT INTO wraps (item_id, key_id, algorithm, wrap) VALUES"
                    " (:i, decode(repeat('11', 16), 'hex'), 'x', decode(repeat('00', 80), 'hex'))"
                ),
                {"i": reply_item},
            )
        with pytest.raises(ProgrammingError), conn.begin_nested():
            conn.execute(
                text(
                    "INSERT INTO sources (public_id, lookup_hash, x25519, created_on,"
                    " last_active_on, next_seq, last_source_seq, status, starred) VALUES"
                    " (:p, :h, :x, current_date, current_date, 1, 0, 3, true)"
                ),
                {"p": secrets.token_bytes(16), "h": secrets.token_bytes(32), "x": bytes(32)},
            )
        # A source with items cannot be deleted (its items would go with it).
        assert conn.execute(text("DELETE FROM sources")).rowcount == 0


def test_hide_reply_function_removes_only_the_sources_own_wrap(
    engine: Engine, roles: Roles, world: World
) -> None:
    source_key = keypair_from_seed(Role.SOURCE, world.source_seed).key_id
    call = text(f"SELECT {HIDE_REPLY_FUNCTION}(:s, :i, :k)")
    with engine.connect() as conn, conn.begin():
        newsroom_key = conn.execute(
            text("SELECT key_id FROM directory_entries WHERE role = 2")
        ).scalar_one()
        _as(conn, roles.source)
        # Not a reply, not this source's, or the newsroom's wrap: nothing happens.
        for item, key in (
            (world.message_id, source_key),
            (world.note_id, source_key),
            (world.reply_id, newsroom_key),
            (world.reply_id, secrets.token_bytes(16)),
        ):
            args = {"s": world.source_public_id, "i": item, "k": key}
            assert conn.execute(call, args).scalar() is False
        other = {"s": secrets.token_bytes(16), "i": world.reply_id, "k": source_key}
        assert conn.execute(call, other).scalar() is False
        mine = {"s": world.source_public_id, "i": world.reply_id, "k": source_key}
        assert conn.execute(call, mine).scalar() is True
        assert conn.execute(call, mine).scalar() is False
        conn.exec_driver_sql("RESET ROLE")
        keys = (
            conn.execute(
                select(Wrap.key_id)
                .join(Item, Item.id == Wrap.item_id)
                .where(Item.public_id == world.reply_id)
            )
            .scalars()
            .all()
        )
        assert keys == [newsroom_key]
        # The function is the source role's only: the journalist role may not call it.
        _as(conn, roles.journalist)
        _refused(conn, f"SELECT {HIDE_REPLY_FUNCTION}(:s, :i, :k)", **mine)


# --- what the source role may do -----------------------------------------------------------


def _source_url(database_url: str, role: str) -> str:
    """The test database's URL, connecting as ``role`` (psycopg passes ``options`` on)."""
    return f"{database_url}?options={quote(f'-c role={role}')}"


@pytest.fixture
def source_engine(config: Config, database_url: str, roles: Roles) -> Iterator[Engine]:
    """An engine on the test's database whose every connection is the source role."""
    eng = make_engine(replace(config, database_url=_source_url(database_url, roles.source)))
    yield eng
    eng.dispose()


def test_the_source_role_can_do_what_the_source_app_does(
    source_engine: Engine, world: World, config: Config
) -> None:
    store = FilesystemBlobStore(config.blob_dir)
    factory = source_session_factory(source_engine)
    with factory() as db:
        settings = directory.settings(db)
        assert settings.name == "Roles Times"
        identity = directory.identity_public(db)
        assert directory.current_newsroom_key(db, identity)
        new = sources.create_source(db)
        db.commit()
        receipt = accept_server_submission(
            db, store, identity, new.public_id, "hello", [], Limits.from_config(config)
        )
        db.commit()
        assert receipt
        source = db.scalars(select(Source).where(Source.public_id == new.public_id)).one()
        assert source.next_seq == 2
        # Two messages and the reply's two wraps; not the note's.
        assert db.scalar(select(func.count()).select_from(Wrap)) == 4
        # A source session: create, load, update, destroy.
        cookie = sessions.create(db, "source", "s", "source", None, {"a": 1}, 60, 600, NOW)
        assert sessions.load(db, "source", cookie, NOW) is not None
        assert sessions.update(db, "source", cookie, {"a": 2}, NOW) is not None
        assert sessions.destroy(db, cookie) is True
        assert sessions.purge_expired(db, NOW) == 0
        db.commit()
        # A source that never confirmed (no items) can be discarded.
        unconfirmed = sources.create_source(db)
        sources.discard_unconfirmed(db, unconfirmed.public_id)
        db.commit()
        assert db.scalar(select(func.count()).select_from(Source)) == 2
    with factory() as db:
        assert sources.login(db, "not a codename") is None
        views = source_replies.replies(
            db, store, identity, world.source_public_id, world.source_seed
        )
        assert [view.verified for view in views] == [True]
        assert source_replies.hide_reply(db, store, world.source_public_id, world.reply_id)
        db.commit()
        after = source_replies.replies(
            db, store, identity, world.source_public_id, world.source_seed
        )
        assert after == []


TRIAGE_READS = [
    "SELECT status FROM sources",
    "SELECT starred FROM sources",
    "SELECT assignee_id FROM sources",
    "SELECT spam_since FROM sources",
    "SELECT * FROM sources",
]


@pytest.mark.parametrize("statement", TRIAGE_READS)
def test_the_source_role_cannot_read_triage_columns(
    source_engine: Engine, world: World, statement: str
) -> None:
    with source_engine.connect() as conn, conn.begin():
        _refused(conn, statement)


def test_the_journalist_role_keeps_full_access(engine: Engine, roles: Roles, world: World) -> None:
    with engine.connect() as conn, conn.begin():
        _as(conn, roles.journalist)
        for table in ("journalists", "grants", "audit_events", "read_markers", "source_tags"):
            conn.execute(text(f"SELECT count(*) FROM {table}"))
        assert conn.execute(text("SELECT count(*) FROM items")).scalar() == 3
        assert conn.execute(text("SELECT count(*) FROM sessions")).scalar() == 1
        conn.execute(text("UPDATE sources SET starred = true"))
        conn.execute(
            text("DELETE FROM wraps WHERE item_id IN (SELECT id FROM items WHERE kind = 4)")
        )
        conn.execute(text("DELETE FROM items WHERE kind = 4"))


def test_roles_can_be_applied_again(engine: Engine, roles: Roles) -> None:
    with engine.begin() as conn:
        apply_roles(conn, roles.source, roles.journalist)


def test_roles_sql_quotes_names_and_refuses_one_role_for_both() -> None:
    statements = roles_sql('tipbox-source"x', "tipbox-journalist")
    assert any('"tipbox-source""x"' in statement for statement in statements)
    with pytest.raises(ValueError, match="must differ"):
        roles_sql("same", "same")
    with pytest.raises(ValueError, match="not a valid"):
        roles_sql("", "journalist")


# --- the CLI -----------------------------------------------------------------------------


def test_cli_prints_and_applies(config: Config, engine: Engine, tmp_path: Path) -> None:
    runner = CliRunner()
    printed = runner.invoke(cli, ["db", "roles", "--print"], obj=config)
    assert printed.exit_code == 0, printed.output
    assert 'GRANT INSERT ON "public".items TO "tipbox_source";' in printed.output
    sqlite = Config.for_data_dir(tmp_path / "lite")
    said = runner.invoke(cli, ["db", "roles"], obj=sqlite)
    assert said.exit_code == 0
    assert "do not apply to SQLite" in said.output
    suffix = secrets.token_hex(4)
    src, jrn = f"tbx_cli_source_{suffix}", f"tbx_cli_journalist_{suffix}"
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {src} NOLOGIN")
        conn.exec_driver_sql(f"CREATE ROLE {jrn} NOLOGIN")
    try:
        applied = runner.invoke(
            cli, ["db", "roles", "--source-role", src, "--journalist-role", jrn], obj=config
        )
        assert applied.exit_code == 0, applied.output
        with engine.connect() as conn, conn.begin():
            _refused(_as(conn, src), "SELECT * FROM journalists")
    finally:
        engine.dispose()
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP OWNED BY {src}, {jrn}")
            conn.exec_driver_sql(f"DROP ROLE {src}, {jrn}")
        engine.dispose()


# --- end to end: the source app under its role ---------------------------------------------


class Browser:
    """A test client that keeps the last CSRF token it was given."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.token = ""

    def _seen(self, response: TestResponse) -> TestResponse:
        found = TOKEN_RE.search(response.get_data(as_text=True))
        if found:
            self.token = found.group(1)
        return response

    def get(self, path: str) -> TestResponse:
        return self._seen(self.client.get(path))

    def post(self, path: str, data: dict[str, object] | None = None, **kw: object) -> TestResponse:
        if not self.token:
            self.get("/")
        return self._seen(
            self.client.post(path, data={"csrf_token": self.token, **(data or {})}, **kw)
        )


def test_the_source_app_works_under_its_role(
    config: Config,
    database_url: str,
    roles: Roles,
    instance: InitResult,
    session_factory: sessionmaker[Session],
) -> None:
    source_url = _source_url(database_url, roles.source)
    app = create_app(replace(config, source_database_url=source_url))
    state: SourceState = app.extensions[EXTENSION]
    try:
        with state.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT current_role").scalar() == roles.source
            _refused(conn, "SELECT * FROM journalists")
        browser = Browser(app.test_client())
        generated = browser.post("/generate")
        assert generated.status_code == 200
        found = CODENAME_RE.search(generated.get_data(as_text=True))
        assert found is not None
        # Start over once: the unconfirmed source is discarded under the role.
        generated = browser.post("/generate")
        found = CODENAME_RE.search(generated.get_data(as_text=True))
        assert found is not None
        confirmed = browser.post("/confirm", {"codename": found.group(1)})
        assert confirmed.headers["Location"] == "/submit"
        browser.get("/submit")
        sent = browser.post(
            "/submit",
            {"message": "the tip", "files": [(io.BytesIO(b"%PDF-1.7 x"), "a.pdf")]},
            content_type="multipart/form-data",
        )
        assert sent.status_code == 303, sent.get_data(as_text=True)
        with session_factory() as db:
            source = db.scalars(select(Source)).one()
            assert [item.kind for item in db.scalars(select(Item).order_by(Item.seq))] == [1, 2]
        _add_reply(session_factory, config, instance, source.public_id)
        page = browser.get("/replies").get_data(as_text=True)
        assert "Who else was there?" in page
        reply = REPLY_ID_RE.search(page)
        assert reply is not None
        hidden = browser.post(f"/replies/{reply.group(1)}/hide")
        assert hidden.headers["Location"] == "/replies?hidden=1"
        assert "Who else was there?" not in browser.get("/replies?hidden=1").get_data(as_text=True)
        with session_factory() as db:
            reply_item = db.scalars(select(Item).where(Item.kind == 3)).one()
            wraps = db.scalars(select(Wrap).where(Wrap.item_id == reply_item.id)).all()
            assert len(wraps) == 1  # the newsroom's wrap stays
        assert browser.post("/logout").headers["Location"] == "/logged-out"
        with session_factory() as db:
            assert db.scalar(select(func.count()).select_from(SessionRow)) == 0
    finally:
        state.engine.dispose()
