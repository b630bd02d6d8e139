"""The database schema: SQLAlchemy 2 typed declarative models.

Conventions that the rest of the code relies on:

- Public identifiers (the ones that appear in URLs and in the envelope's additional data)
  are 16 random bytes (``new_public_id``), stored as ``LargeBinary(16)`` and shown as 32
  lowercase hex digits. Integer primary keys never leave the server.
- Columns ending in ``_on`` are dates (one per UTC day): every time that describes source
  activity is a date, never a timestamp (DESIGN invariant 5). Columns ending in ``_at`` or
  ``_until``/``_since`` are UTC timestamps and exist only for short-lived or key-management
  state (sessions, lockouts, a rotation's grace period).
- No IP address, user agent or other client detail is stored anywhere.
- Constraint names come from ``NAMING_CONVENTION`` so that they are identical on SQLite and
  PostgreSQL and later migrations can address them by name.
- Sizes of cryptographic fields follow ``docs/envelope.md`` (format version 1); ``CHECK``
  constraints enforce the fixed ones so that a truncated value never lands in a row.
"""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

PUBLIC_ID_BYTES = 16
KEY_ID_BYTES = 16
HASH_BYTES = 32
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
DIRECTORY_ENTRY_BYTES = 126
GRANT_BYTES = 129
SEALED_META_BYTES = 1064
WRAP_BYTES = 80
SEED_BOX_BYTES = 72
SALT_BYTES = 16
SEALED_TAG_BYTES = 296
TAG_INDEX_BYTES = 32

# Item kinds (docs/envelope.md 8.1).
KIND_MESSAGE = 1
KIND_FILE = 2
KIND_REPLY = 3
KIND_NOTE = 4

# Directory roles and statuses (docs/envelope.md 4).
ROLE_IDENTITY = 1
ROLE_NEWSROOM = 2
ROLE_JOURNALIST = 3
ROLE_RECOVERY = 4
ROLE_METADATA = 6
STATUS_CURRENT = 1
STATUS_RETIRING = 2
STATUS_RETIRED = 3
STATUS_ACTIVE = 4

# Source triage status (in clear, listed in the threat model). Spam is a status, so that a
# source marked spam leaves the default inbox and its bulk deletion is one filter.
SOURCE_STATUS_NEW = 0
SOURCE_STATUS_IN_REVIEW = 1
SOURCE_STATUS_VERIFIED = 2
SOURCE_STATUS_PUBLISHED = 3
SOURCE_STATUS_CLOSED = 4
SOURCE_STATUS_SPAM = 5
SOURCE_STATUSES = (
    SOURCE_STATUS_NEW,
    SOURCE_STATUS_IN_REVIEW,
    SOURCE_STATUS_VERIFIED,
    SOURCE_STATUS_PUBLISHED,
    SOURCE_STATUS_CLOSED,
    SOURCE_STATUS_SPAM,
)

SESSION_APPS = ("source", "journalist")
WRAP_ALGORITHM = "x25519-sealedbox-v1"
DEFAULT_LANGUAGES = "en,ru,kk"
DEFAULT_RETENTION_DAYS = 90
# The newsroom's logo as served to sources: a PNG re-encoded by tipbox.settings, and the
# BLAKE2b hash of it that names it in its URL.
MAX_LOGO_BYTES = 1024 * 1024
LOGO_HASH_BYTES = 16
MAX_BUDGET_KEY_BYTES = 32


def new_public_id() -> bytes:
    """Return a fresh random public identifier (16 bytes from the CSPRNG)."""
    return secrets.token_bytes(PUBLIC_ID_BYTES)


def today() -> date:
    """Return today's date in UTC: the only precision stored for source activity."""
    return datetime.now(UTC).date()


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on both databases.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so the value is stored as
    naive UTC and made aware again on the way out. Naive datetimes are refused on the way
    in, so that a local time can never be mistaken for UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert an aware datetime to what the database stores."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime whatever the database gave back."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# JSONB on PostgreSQL (binary, indexable), JSON text on SQLite.
JSONType = JSON().with_variant(postgresql.JSONB(), "postgresql")


def _length_is(column: str, size: int) -> CheckConstraint:
    # length() counts bytes of a BLOB on SQLite and of a bytea on PostgreSQL.
    return CheckConstraint(f"length({column}) = {size}", name=f"{column}_length")


class Base(DeclarativeBase):
    """Declarative base whose metadata carries the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class InstanceSettings(Base):
    """The single row describing this instance (``id`` is always 1)."""

    __tablename__ = "instance_settings"
    __table_args__ = (
        CheckConstraint("id = 1", name="singleton"),
        _length_is("codename_salt", SALT_BYTES),
        _length_is("identity_key_id", KEY_ID_BYTES),
        _length_is("identity_x25519", PUBLIC_KEY_BYTES),
        _length_is("identity_ed25519", PUBLIC_KEY_BYTES),
        # NULL is "off" (a CHECK passes on NULL).
        CheckConstraint("retention_days > 0", name="retention_days_positive"),
        CheckConstraint(f"length(logo) <= {MAX_LOGO_BYTES}", name="logo_size"),
        _length_is("logo_hash", LOGO_HASH_BYTES),
        CheckConstraint("(logo IS NULL) = (logo_hash IS NULL)", name="logo_with_hash"),
        CheckConstraint("spam_purge_days > 0", name="spam_purge_days_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False, default=1)
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    codename_salt: Mapped[bytes] = mapped_column(LargeBinary(SALT_BYTES))
    codename_opslimit: Mapped[int] = mapped_column(Integer)
    codename_memlimit: Mapped[int] = mapped_column(BigInteger)
    identity_key_id: Mapped[bytes] = mapped_column(
        LargeBinary(KEY_ID_BYTES), ForeignKey("directory_entries.key_id")
    )
    identity_x25519: Mapped[bytes] = mapped_column(LargeBinary(PUBLIC_KEY_BYTES))
    identity_ed25519: Mapped[bytes] = mapped_column(LargeBinary(PUBLIC_KEY_BYTES))
    # The serial the next signed directory entry gets (docs/envelope.md 4).
    next_directory_serial: Mapped[int] = mapped_column(BigInteger, default=1)
    languages: Mapped[str] = mapped_column(Text, default=DEFAULT_LANGUAGES)
    # Lowered upload limits ({"max_files": 3, ...}); a limit not named is the config's.
    limits: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    files_accepted: Mapped[bool] = mapped_column(Boolean, default=True)
    # Sources with no activity for this many days are deleted; NULL: never (tipbox.retention).
    retention_days: Mapped[int | None] = mapped_column(Integer, default=DEFAULT_RETENTION_DAYS)
    # Deferred: every page reads this row, and only the logo's own URL needs the bytes.
    logo: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    logo_hash: Mapped[bytes | None] = mapped_column(LargeBinary(LOGO_HASH_BYTES))
    # Sources marked spam this many days ago are deleted; NULL: never (tipbox.retention).
    spam_purge_days: Mapped[int | None] = mapped_column(Integer)
    created_on: Mapped[date] = mapped_column(Date, default=today)


class DirectoryEntry(Base):
    """A public key signed into the directory by the identity key (envelope.md 4)."""

    __tablename__ = "directory_entries"
    __table_args__ = (
        CheckConstraint("role IN (1, 2, 3, 4, 6)", name="role"),
        CheckConstraint("status IN (1, 2, 3, 4)", name="status"),
        _length_is("key_id", KEY_ID_BYTES),
        _length_is("x25519", PUBLIC_KEY_BYTES),
        _length_is("entry", DIRECTORY_ENTRY_BYTES),
        _length_is("signature", SIGNATURE_BYTES),
    )

    key_id: Mapped[bytes] = mapped_column(LargeBinary(KEY_ID_BYTES), primary_key=True)
    role: Mapped[int] = mapped_column(SmallInteger)
    status: Mapped[int] = mapped_column(SmallInteger)
    # The journalist's public id for role 3, NULL otherwise.
    subject_id: Mapped[bytes | None] = mapped_column(LargeBinary(PUBLIC_ID_BYTES))
    x25519: Mapped[bytes] = mapped_column(LargeBinary(PUBLIC_KEY_BYTES))
    ed25519: Mapped[bytes | None] = mapped_column(LargeBinary(PUBLIC_KEY_BYTES))
    serial: Mapped[int] = mapped_column(BigInteger, unique=True)
    entry: Mapped[bytes] = mapped_column(LargeBinary(DIRECTORY_ENTRY_BYTES))
    signature: Mapped[bytes] = mapped_column(LargeBinary(SIGNATURE_BYTES))
    created_on: Mapped[date] = mapped_column(Date, default=today)


class NewsroomKey(Base):
    """A newsroom encryption key's lifecycle; its status lives in the signed entry."""

    __tablename__ = "newsroom_keys"

    key_id: Mapped[bytes] = mapped_column(
        LargeBinary(KEY_ID_BYTES),
        ForeignKey("directory_entries.key_id", ondelete="CASCADE"),
        primary_key=True,
    )
    created_on: Mapped[date] = mapped_column(Date, default=today)
    # A timestamp, not a day: the grace period for in-flight commits needs precision, and
    # it describes a key event, not source activity.
    retiring_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retired_on: Mapped[date | None] = mapped_column(Date)


class Journalist(Base):
    """A journalist or admin account and its passphrase-locked key material."""

    __tablename__ = "journalists"
    __table_args__ = (
        _length_is("public_id", PUBLIC_ID_BYTES),
        _length_is("kdf_salt", SALT_BYTES),
        _length_is("verifier", HASH_BYTES),
        _length_is("seed_box", SEED_BOX_BYTES),
        CheckConstraint("failed_login_count >= 0", name="failed_login_count"),
        _length_is("pending_x25519", PUBLIC_KEY_BYTES),
        _length_is("pending_ed25519", PUBLIC_KEY_BYTES),
        CheckConstraint(
            "(pending_x25519 IS NULL) = (pending_ed25519 IS NULL)", name="pending_pair"
        ),
        CheckConstraint("pending_x25519 IS NULL OR key_id IS NULL", name="pending_without_key"),
        CheckConstraint(
            "NOT temporary_key OR pending_x25519 IS NULL", name="temporary_not_pending"
        ),
        CheckConstraint(
            "removed_on IS NULL OR (NOT is_active AND NOT is_admin AND key_id IS NULL"
            " AND pending_x25519 IS NULL AND seed_box IS NULL AND totp_box IS NULL)",
            name="removed_holds_nothing",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[bytes] = mapped_column(
        LargeBinary(PUBLIC_ID_BYTES), unique=True, default=new_public_id
    )
    username: Mapped[str] = mapped_column(Text, unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The verified key (its directory entry signed by the identity key). NULL while a key
    # made at first login awaits an admin's confirmation (pending_*), and once removed.
    key_id: Mapped[bytes | None] = mapped_column(
        LargeBinary(KEY_ID_BYTES),
        ForeignKey("directory_entries.key_id", ondelete="SET NULL"),
        unique=True,
    )
    # The key was made by an admin (add or reset): the first login replaces it, so that the
    # admin never holds the final secret (DESIGN 4.5; docs/journalist-auth.md, first login).
    temporary_key: Mapped[bool] = mapped_column(Boolean, default=False)
    # The public keys of the key made at first login, until an admin confirms it: no
    # directory entry, no grants; the seed box is bound to them.
    pending_x25519: Mapped[bytes | None] = mapped_column(LargeBinary(PUBLIC_KEY_BYTES))
    pending_ed25519: Mapped[bytes | None] = mapped_column(LargeBinary(PUBLIC_KEY_BYTES))
    kdf_salt: Mapped[bytes] = mapped_column(LargeBinary(SALT_BYTES))
    kdf_opslimit: Mapped[int] = mapped_column(Integer)
    kdf_memlimit: Mapped[int] = mapped_column(BigInteger)
    verifier: Mapped[bytes] = mapped_column(LargeBinary(HASH_BYTES))
    seed_box: Mapped[bytes | None] = mapped_column(LargeBinary(SEED_BOX_BYTES))
    totp_box: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The last TOTP time step accepted, so that a code cannot be replayed.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    must_change_passphrase: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_login_count: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_on: Mapped[date] = mapped_column(Date, default=today)
    # The day the account was removed. The row stays, with no key, box or session left,
    # as the actor of its audit events and the author of its replies and notes.
    removed_on: Mapped[date | None] = mapped_column(Date)


class Grant(Base):
    """A key's seed sealed to a grantee's key (envelope.md 5)."""

    __tablename__ = "grants"
    __table_args__ = (
        UniqueConstraint("key_id", "grantee_key_id"),
        Index(None, "grantee_key_id"),
        _length_is("sealed_grant", GRANT_BYTES),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[bytes] = mapped_column(
        LargeBinary(KEY_ID_BYTES), ForeignKey("directory_entries.key_id", ondelete="CASCADE")
    )
    grantee_key_id: Mapped[bytes] = mapped_column(
        LargeBinary(KEY_ID_BYTES), ForeignKey("directory_entries.key_id", ondelete="CASCADE")
    )
    sealed_grant: Mapped[bytes] = mapped_column(LargeBinary(GRANT_BYTES))
    created_on: Mapped[date] = mapped_column(Date, default=today)


class Source(Base):
    """A source: found by the hash of its codename's lookup value, never by the codename."""

    __tablename__ = "sources"
    __table_args__ = (
        _length_is("public_id", PUBLIC_ID_BYTES),
        _length_is("lookup_hash", HASH_BYTES),
        _length_is("x25519", PUBLIC_KEY_BYTES),
        CheckConstraint("next_seq >= 1", name="next_seq"),
        CheckConstraint("status BETWEEN 0 AND 5", name="status"),
        CheckConstraint("last_source_seq >= 0 AND last_source_seq < next_seq", name="last_seq"),
        # The inbox: newest activity first, filtered by triage columns.
        Index(None, "last_active_on", "id"),
        Index(None, "status"),
        Index(None, "assignee_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[bytes] = mapped_column(
        LargeBinary(PUBLIC_ID_BYTES), unique=True, default=new_public_id
    )
    lookup_hash: Mapped[bytes] = mapped_column(LargeBinary(HASH_BYTES), unique=True)
    x25519: Mapped[bytes] = mapped_column(LargeBinary(PUBLIC_KEY_BYTES))
    # A human-friendly label journalists use ("purple tiger"), unrelated to the codename.
    designation: Mapped[str | None] = mapped_column(Text, unique=True)
    created_on: Mapped[date] = mapped_column(Date, default=today)
    last_active_on: Mapped[date] = mapped_column(Date, default=today)
    # The seq the next item of this source gets: items are ordered by it, not by time.
    next_seq: Mapped[int] = mapped_column(Integer, default=1)
    # The seq of the source's own newest message or file (0: none): a journalist has unread
    # items when it is past their read marker. Replies and notes do not move it.
    last_source_seq: Mapped[int] = mapped_column(Integer, default=0)
    # Triage state, in clear (listed in the threat model).
    status: Mapped[int] = mapped_column(SmallInteger, default=SOURCE_STATUS_NEW)
    starred: Mapped[bool] = mapped_column(Boolean, default=False)
    assignee_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("journalists.id", ondelete="SET NULL")
    )
    # The day the source was marked spam (NULL when it is not): the spam purge counts from it.
    spam_since: Mapped[date | None] = mapped_column(Date)


class ReadMarker(Base):
    """How far a journalist has read a source: every item with ``seq <= seen_seq``."""

    __tablename__ = "read_markers"
    __table_args__ = (Index(None, "source_id"),)

    journalist_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("journalists.id", ondelete="CASCADE"), primary_key=True
    )
    source_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True
    )
    seen_seq: Mapped[int] = mapped_column(Integer)


class SourceTag(Base):
    """A journalist's tag on a source, sealed under the metadata key (envelope.md 12)."""

    __tablename__ = "source_tags"
    __table_args__ = (
        UniqueConstraint("source_id", "blind_index"),
        # Filtering by tag looks the index up across sources.
        Index(None, "blind_index"),
        _length_is("key_id", KEY_ID_BYTES),
        _length_is("blind_index", TAG_INDEX_BYTES),
        _length_is("sealed_tag", SEALED_TAG_BYTES),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(Integer, ForeignKey("sources.id", ondelete="CASCADE"))
    key_id: Mapped[bytes] = mapped_column(
        LargeBinary(KEY_ID_BYTES), ForeignKey("directory_entries.key_id", ondelete="CASCADE")
    )
    blind_index: Mapped[bytes] = mapped_column(LargeBinary(TAG_INDEX_BYTES))
    sealed_tag: Mapped[bytes] = mapped_column(LargeBinary(SEALED_TAG_BYTES))


class Item(Base):
    """One envelope: a message, file, reply or note (envelope.md 8)."""

    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("source_id", "seq"),
        CheckConstraint("kind IN (1, 2, 3, 4)", name="kind"),
        CheckConstraint("blob_size >= 0", name="blob_size"),
        _length_is("public_id", PUBLIC_ID_BYTES),
        _length_is("sealed_meta", SEALED_META_BYTES),
        # Replies and notes are signed; messages and files are not.
        CheckConstraint(
            "(signer_key_id IS NULL) = (signature IS NULL)", name="signature_with_signer"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[bytes] = mapped_column(
        LargeBinary(PUBLIC_ID_BYTES), unique=True, default=new_public_id
    )
    source_id: Mapped[int] = mapped_column(Integer, ForeignKey("sources.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[int] = mapped_column(SmallInteger)
    version: Mapped[int] = mapped_column(SmallInteger, default=1)
    blob_id: Mapped[str] = mapped_column(String(32), unique=True)
    blob_size: Mapped[int] = mapped_column(BigInteger)
    sealed_meta: Mapped[bytes] = mapped_column(LargeBinary(SEALED_META_BYTES))
    # Not a foreign key: a removed journalist's directory entry is deleted, and the item
    # must then show as unverified rather than vanish.
    signer_key_id: Mapped[bytes | None] = mapped_column(LargeBinary(KEY_ID_BYTES))
    signature: Mapped[bytes | None] = mapped_column(LargeBinary(SIGNATURE_BYTES))
    author_journalist_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("journalists.id", ondelete="SET NULL")
    )
    created_on: Mapped[date] = mapped_column(Date, default=today)


class Wrap(Base):
    """An item's content key sealed to one recipient key (envelope.md 8.4)."""

    __tablename__ = "wraps"
    __table_args__ = (
        UniqueConstraint("item_id", "key_id"),
        # Re-wrap batches during a rotation select by key.
        Index(None, "key_id"),
        _length_is("key_id", KEY_ID_BYTES),
        _length_is("wrap", WRAP_BYTES),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(Integer, ForeignKey("items.id", ondelete="CASCADE"))
    # Not a foreign key: a reply is also wrapped to the source's key, which has no
    # directory entry.
    key_id: Mapped[bytes] = mapped_column(LargeBinary(KEY_ID_BYTES))
    algorithm: Mapped[str] = mapped_column(String(32), default=WRAP_ALGORITHM)
    wrap: Mapped[bytes] = mapped_column(LargeBinary(WRAP_BYTES))


class BudgetCounter(Base):
    """How much of one budget one window has used (``tipbox.budgets``, docs/abuse.md).

    ``key`` is a global budget's ASCII name, or for a source's own budget a 16-byte keyed
    hash that only the source's codename links to it. Rows of ended windows are deleted.
    """

    __tablename__ = "budget_counters"
    __table_args__ = (
        CheckConstraint(f"length(key) BETWEEN 1 AND {MAX_BUDGET_KEY_BYTES}", name="key_length"),
        CheckConstraint("count >= 1", name="count"),
        Index(None, "window_end"),
    )

    key: Mapped[bytes] = mapped_column(LargeBinary(MAX_BUDGET_KEY_BYTES), primary_key=True)
    # Unix time at which the window ends.
    window_end: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(Integer)


class SessionRow(Base):
    """The server half of a split-key session (envelope.md 9; tipbox.sessions)."""

    __tablename__ = "sessions"
    __table_args__ = (
        CheckConstraint("app IN ('source', 'journalist')", name="app"),
        CheckConstraint("length(id) = 32", name="id_length"),
        # Sessions of sources are never linked to their source (see tipbox.sessions).
        CheckConstraint("app = 'journalist' OR journalist_id IS NULL", name="source_unlinked"),
        CheckConstraint("idle_seconds > 0", name="idle_seconds"),
        Index(None, "idle_expires_at"),
        Index(None, "absolute_expires_at"),
        Index(None, "journalist_id"),
    )

    # The row id of envelope.md 9: KDF(S, 1, tbsessn1, 16) as 32 lowercase hex digits.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    app: Mapped[str] = mapped_column(String(16))
    journalist_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("journalists.id", ondelete="CASCADE")
    )
    box: Mapped[bytes] = mapped_column(LargeBinary)
    idle_seconds: Mapped[int] = mapped_column(Integer)
    idle_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    absolute_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEvent(Base):
    """What a journalist or admin did, per day. Never source content or source ids."""

    __tablename__ = "audit_events"
    __table_args__ = (Index(None, "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, default=today)
    actor_journalist_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("journalists.id", ondelete="SET NULL")
    )
    action: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
