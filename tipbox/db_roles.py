"""The two PostgreSQL roles: what the source app's role may do, and what it may not.

The journalist app, the CLI and migrations connect as the role that owns the tables (the
installer's ``tipbox-journalist``): it is granted everything here as well, so that it keeps
working if the tables belong to another role. The source app connects as a role that may
read verified public keys and the instance settings, create sources, items and wraps, read
what a logged-in source may see, and keep its own sessions, and nothing else
(docs/decisions.md, "Database roles"):

- ``REVOKE ALL ... FROM PUBLIC`` on every table of the schema, then grants by name.
- Row-level security on four tables, for the source role only (the owner bypasses it;
  the journalist role gets a permissive policy): ``sessions`` (rows of ``app = 'source'``
  only, never linked to a journalist), ``items`` (sees messages, files and replies, never
  notes; inserts only unsigned messages and files), ``wraps`` (only of items it may see;
  inserts only to its own kinds of item) and ``sources`` (inserts only with the default
  triage state; deletes only a source nothing refers to: ``discard_unconfirmed``).
- No UPDATE or DELETE on items or wraps at all: a source hiding a reply calls
  ``tipbox_hide_reply``, a ``SECURITY DEFINER`` function that deletes the source's wrap of
  one of its own replies and nothing else.

Every statement is idempotent: run ``tipbox db roles`` again after every migration (a new
table is then revoked from PUBLIC and granted to the journalist role).
"""

from __future__ import annotations

from sqlalchemy import Connection

__all__ = [
    "DEFAULT_JOURNALIST_ROLE",
    "DEFAULT_SOURCE_ROLE",
    "HIDE_REPLY_FUNCTION",
    "apply_roles",
    "quote_ident",
    "roles_sql",
]

DEFAULT_SOURCE_ROLE = "tipbox_source"
DEFAULT_JOURNALIST_ROLE = "tipbox_journalist"
HIDE_REPLY_FUNCTION = "tipbox_hide_reply"
IN_USE_FUNCTION = "tipbox_source_in_use"
_MAX_IDENTIFIER = 63

# What the source role may read. Table-level where the shared domain code loads whole ORM
# rows (a column grant that left one out would fail every such query).
_SELECT_TABLES = ("instance_settings", "directory_entries", "newsroom_keys", "items", "wraps")
_INSERT_TABLES = ("sources", "items", "wraps")
_SOURCE_SELECT_COLUMNS = (
    "id",
    "public_id",
    "lookup_hash",
    "x25519",
    "designation",
    "created_on",
    "last_active_on",
    "next_seq",
    "last_source_seq",
)
_SOURCE_UPDATE_COLUMNS = ("next_seq", "last_active_on", "last_source_seq")
_SEQUENCES = ("sources_id_seq", "items_id_seq", "wraps_id_seq")
_RLS_TABLES = ("sessions", "sources", "items", "wraps")


def quote_ident(name: str) -> str:
    """``name`` as a quoted SQL identifier; ``ValueError`` for an empty or too long one."""
    if not name or len(name.encode()) > _MAX_IDENTIFIER or "\x00" in name:
        raise ValueError(f"not a valid PostgreSQL role or schema name: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def _policy(name: str, table: str, command: str, role: str, using: str, check: str) -> list[str]:
    clauses = ""
    if using:
        clauses += f" USING ({using})"
    if check:
        clauses += f" WITH CHECK ({check})"
    return [
        f"DROP POLICY IF EXISTS {name} ON {table}",
        f"CREATE POLICY {name} ON {table} FOR {command} TO {role}{clauses}",
    ]


def _functions(schema: str) -> list[str]:
    pinned = f"SET search_path = {schema}, pg_temp"
    in_use = f"""CREATE OR REPLACE FUNCTION {schema}.{IN_USE_FUNCTION}(p_source_id integer)
RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER {pinned} AS $fn$
    SELECT EXISTS (SELECT 1 FROM items WHERE source_id = p_source_id)
        OR EXISTS (SELECT 1 FROM read_markers WHERE source_id = p_source_id)
        OR EXISTS (SELECT 1 FROM source_tags WHERE source_id = p_source_id)
$fn$"""  # noqa: S608 - identifiers quoted by quote_ident
    # The source's key id is BLAKE2b of its public key (docs/envelope.md 3), which
    # PostgreSQL cannot compute: the caller passes it, and the function deletes only a wrap
    # to a key with no directory entry (never the newsroom's, a journalist's or the
    # recovery key's), of a reply of that source, and never the item's last wrap.
    hide = f"""CREATE OR REPLACE FUNCTION {schema}.{HIDE_REPLY_FUNCTION}(
    p_source_public_id bytea, p_item_public_id bytea, p_source_key_id bytea)
RETURNS boolean LANGUAGE plpgsql VOLATILE SECURITY DEFINER {pinned} AS $fn$
DECLARE
    v_item integer;
    v_deleted integer;
BEGIN
    SELECT i.id INTO v_item FROM items i JOIN sources s ON s.id = i.source_id
    WHERE s.public_id = p_source_public_id AND i.public_id = p_item_public_id AND i.kind = 3;
    IF v_item IS NULL THEN
        RETURN false;
    END IF;
    IF EXISTS (SELECT 1 FROM directory_entries WHERE key_id = p_source_key_id) THEN
        RETURN false;
    END IF;
    DELETE FROM wraps w WHERE w.item_id = v_item AND w.key_id = p_source_key_id
        AND EXISTS (SELECT 1 FROM wraps o WHERE o.item_id = v_item AND o.key_id <> w.key_id);
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted > 0;
END
$fn$"""  # noqa: S608 - identifiers quoted by quote_ident
    return [in_use, hide]


def roles_sql(source_role: str, journalist_role: str, schema: str = "public") -> list[str]:
    """The statements that set up both roles' privileges on an existing, migrated schema.

    Run them as the tables' owner (or a superuser), in one transaction. The roles must
    exist; this makes no role and sets no password.
    """
    if source_role == journalist_role:
        raise ValueError("the source role and the journalist role must differ")
    src = quote_ident(source_role)
    jrn = quote_ident(journalist_role)
    sch = quote_ident(schema)
    hide = f"{sch}.{HIDE_REPLY_FUNCTION}(bytea, bytea, bytea)"
    in_use = f"{sch}.{IN_USE_FUNCTION}(integer)"
    sql = [
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {sch} FROM PUBLIC",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {sch} FROM PUBLIC",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {sch} FROM {src}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {sch} FROM {src}",
        f"GRANT USAGE ON SCHEMA {sch} TO {src}, {jrn}",
        # The journalist app, the CLI, retention and backups: everything.
        f"GRANT ALL ON ALL TABLES IN SCHEMA {sch} TO {jrn}",
        f"GRANT ALL ON ALL SEQUENCES IN SCHEMA {sch} TO {jrn}",
        *_functions(sch),
        f"REVOKE ALL ON FUNCTION {hide} FROM PUBLIC",
        f"REVOKE ALL ON FUNCTION {in_use} FROM PUBLIC",
        f"GRANT EXECUTE ON FUNCTION {hide} TO {src}",
        # Evaluated as the source role inside the sources DELETE policy.
        f"GRANT EXECUTE ON FUNCTION {in_use} TO {src}",
    ]
    sql += [f"GRANT SELECT ON {sch}.{table} TO {src}" for table in _SELECT_TABLES]
    sql += [f"GRANT INSERT ON {sch}.{table} TO {src}" for table in _INSERT_TABLES]
    sql += [
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {sch}.sessions TO {src}",
        # Flood budgets (tipbox.budgets): counts and window ends, nothing of a source's.
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {sch}.budget_counters TO {src}",
        # Not the triage columns (status, starred, assignee_id): the source app's sessions
        # leave them out of whole-row loads (tipbox.source.state).
        f"GRANT SELECT ({', '.join(_SOURCE_SELECT_COLUMNS)}) ON {sch}.sources TO {src}",
        f"GRANT DELETE ON {sch}.sources TO {src}",
        f"GRANT UPDATE ({', '.join(_SOURCE_UPDATE_COLUMNS)}) ON {sch}.sources TO {src}",
    ]
    sql += [f"GRANT USAGE ON SEQUENCE {sch}.{seq} TO {src}" for seq in _SEQUENCES]
    for table in _RLS_TABLES:
        qualified = f"{sch}.{table}"
        sql.append(f"ALTER TABLE {qualified} ENABLE ROW LEVEL SECURITY")
        sql += _policy(f"tipbox_{table}_journalist", qualified, "ALL", jrn, "true", "true")
    sessions = f"{sch}.sessions"
    sql += _policy(
        "tipbox_sessions_source",
        sessions,
        "ALL",
        src,
        "app = 'source'",
        "app = 'source' AND journalist_id IS NULL",
    )
    sources = f"{sch}.sources"
    sql += _policy("tipbox_sources_source_select", sources, "SELECT", src, "true", "")
    sql += _policy(
        "tipbox_sources_source_insert",
        sources,
        "INSERT",
        src,
        "",
        "status = 0 AND NOT starred AND assignee_id IS NULL AND spam_since IS NULL"
        " AND next_seq = 1 AND last_source_seq = 0",
    )
    sql += _policy("tipbox_sources_source_update", sources, "UPDATE", src, "true", "true")
    sql += _policy(
        "tipbox_sources_source_delete",
        sources,
        "DELETE",
        src,
        f"NOT {sch}.{IN_USE_FUNCTION}(id)",
        "",
    )
    items = f"{sch}.items"
    sql += _policy("tipbox_items_source_select", items, "SELECT", src, "kind IN (1, 2, 3)", "")
    sql += _policy(
        "tipbox_items_source_insert",
        items,
        "INSERT",
        src,
        "",
        "kind IN (1, 2) AND signer_key_id IS NULL AND signature IS NULL"
        " AND author_journalist_id IS NULL",
    )
    wraps = f"{sch}.wraps"
    # The subqueries run as the source role, under the items policies above.
    sql += _policy(
        "tipbox_wraps_source_select",
        wraps,
        "SELECT",
        src,
        f"EXISTS (SELECT 1 FROM {items} i WHERE i.id = item_id)",  # noqa: S608
        "",
    )
    sql += _policy(
        "tipbox_wraps_source_insert",
        wraps,
        "INSERT",
        src,
        "",
        f"EXISTS (SELECT 1 FROM {items} i WHERE i.id = item_id AND i.kind IN (1, 2))",  # noqa: S608
    )
    return sql


def apply_roles(
    connection: Connection, source_role: str, journalist_role: str, schema: str = "public"
) -> None:
    """Run ``roles_sql`` on ``connection`` (the owner's or a superuser's), in its transaction.

    The caller commits. ``ValueError`` on a database that is not PostgreSQL.
    """
    if connection.dialect.name != "postgresql":
        raise ValueError("database roles apply to PostgreSQL only")
    for statement in roles_sql(source_role, journalist_role, schema):
        connection.exec_driver_sql(statement)
