"""Instance settings: what the source app shows and accepts, and how long sources are kept.

An admin sets them (issue #5); the source app reads them on every request (decisions.md,
"Instance settings"). Everything here is checked before it is stored, and every refusal is
a ``SettingsError`` naming the field and a stable reason, so a form can say what is wrong
next to the right input:

- ``name`` (1 to 100 characters) and ``description`` (up to 2,000, line breaks allowed):
  plain text, shown escaped; control, bidirectional and other invisible formatting
  characters are refused, since they could make the page say something else than it seems.
- ``languages``: a non-empty subset of the languages the apps have catalogues for, in the
  order the source app offers them (the first is the default).
- upload limits: each within sane bounds and never above what ``tipbox.config`` allows (the
  operator's ceiling, which may have reasons the admin cannot see: disk, proxy, memory).
  ``None`` means "as the configuration allows". ``files_accepted`` off makes the source
  app a message-only box.
- ``retention_days``: 1 to 3,650, or ``None`` for off (``tipbox.retention``).
- ``spam_purge_days``: 1 to 3,650, or ``None`` (the default) for off: sources marked spam
  that many days ago are deleted by ``tipbox retention run`` (``tipbox.spam``).
- the logo: re-encoded by ``tipbox.logo`` (which alone loads Pillow, so that the source
  app, which reads these settings, never does) and stored here.

Every change that changes something records one ``settings.change`` audit event with the
names of what changed (``AUDIT_FIELDS``), in the caller's transaction.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from tipbox import audit
from tipbox.config import MIB, Config
from tipbox.directory import NotInitialised, locked_settings
from tipbox.models import LOGO_HASH_BYTES, InstanceSettings
from tipbox.submission_rules import Limits
from tipbox.web.i18n import LANGUAGES

__all__ = [
    "AUDIT_FIELDS",
    "LIMIT_FLOORS",
    "MAX_DESCRIPTION_CHARS",
    "MAX_NAME_CHARS",
    "MAX_RETENTION_DAYS",
    "UNCHANGED",
    "Problem",
    "Settings",
    "SettingsError",
    "Unchanged",
    "logo_png",
    "read",
    "remove_logo",
    "store_logo",
    "update",
]

MAX_NAME_CHARS: Final = 100
MAX_DESCRIPTION_CHARS: Final = 2000
MIN_RETENTION_DAYS: Final = 1
MAX_RETENTION_DAYS: Final = 3650  # ten years; longer is "off"
# The smallest limits an admin may set: below them the box would be of little use to a
# source. A configuration lower still wins (the floor is then the configured value).
LIMIT_FLOORS: Final[Mapping[str, int]] = {
    "max_message_chars": 1000,
    "max_files": 1,
    "max_file_bytes": MIB,
}
_LIMIT_FIELDS: Final = tuple(LIMIT_FLOORS)


# Names recorded in the audit log's ``fields`` (joined with "+"): one per group of
# settings a form changes, short enough for the log's 64-character token.
AUDIT_FIELDS: Final[Mapping[str, str]] = {
    "name": "name",
    "description": "description",
    "languages": "languages",
    "max_message_chars": "limits",
    "max_files": "limits",
    "max_file_bytes": "limits",
    "files_accepted": "files",
    "retention_days": "retention",
    "spam_purge_days": "spam",
    "logo": "logo",
}

# Characters refused in a name or description besides the control characters: every
# bidirectional mark, embedding, override and isolate, and the byte order mark.
_BIDI_AND_BOM: Final = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
)
# Control, surrogate, private use, unassigned, and the line and paragraph separators.
# Other format characters stay: zero-width (non-)joiners are part of how some scripts and
# emoji are written.
_REFUSED_CATEGORIES: Final = frozenset({"Cc", "Cs", "Co", "Cn", "Zl", "Zp"})

# English wording of each reason, for the command line and logs; a web form maps
# (field, reason) to its own translated text.
_REASONS: Final[Mapping[str, str]] = {
    "empty": "must not be empty",
    "too_long": "is too long (at most {limit} characters)",
    "bad_character": "contains a control, bidirectional or invisible character",
    "unknown_language": "names a language this tipbox has no translation for",
    "duplicate_language": "names a language twice",
    "not_a_number": "must be a whole number",
    "too_small": "must be at least {limit}",
    "above_config": "must be at most {limit}, what this server's configuration allows",
    "out_of_range": "must be between 1 and {limit} days, or off",
    "too_large": "is larger than {limit} bytes",
    "not_an_image": "is not a PNG, JPEG, GIF or WebP image",
    "too_many_pixels": "has more than {limit} pixels",
    "unreadable": "could not be read as an image (damaged or truncated?)",
    "too_detailed": "is too detailed to store even when shrunk; use a simpler image",
}


@dataclass(frozen=True)
class Problem:
    """One refused field: ``field`` as the function's parameter is named, ``reason`` a
    stable key of ``_REASONS``, ``limit`` the bound it crossed (when there is one)."""

    field: str
    reason: str
    limit: int | None = None

    def __str__(self) -> str:
        """The problem in English: ``name must not be empty``."""
        return f"{self.field} " + _REASONS[self.reason].format(limit=self.limit)


class SettingsError(ValueError):
    """Settings refused, nothing stored. ``problems`` lists every refused field (a form
    shows each next to its input); ``field`` and ``reason`` are those of the first."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        """Refuse for ``problems`` (at least one)."""
        if not problems:
            raise ValueError("a SettingsError needs a problem")
        super().__init__("; ".join(str(problem) for problem in problems))
        self.problems = tuple(problems)

    @property
    def field(self) -> str:
        """The first refused field."""
        return self.problems[0].field

    @property
    def reason(self) -> str:
        """Why the first refused field was refused (a key, e.g. ``too_long``)."""
        return self.problems[0].reason


class Unchanged(Enum):
    """The type of ``UNCHANGED``: a parameter of ``update`` left as it is."""

    UNCHANGED = "unchanged"


UNCHANGED: Final = Unchanged.UNCHANGED


@dataclass(frozen=True)
class Settings:
    """The instance's settings as the apps use them (the logo itself is read apart).

    ``limits`` are the effective upload limits: the configuration's, lowered where the
    admin set lower ones. ``submission_limits`` are what a source may send now: with files
    off, no file at all. ``logo_hash`` names the logo in its URL (None: no logo).
    """

    name: str
    description: str
    languages: tuple[str, ...]
    limits: Limits
    files_accepted: bool
    retention_days: int | None
    logo_hash: bytes | None
    spam_purge_days: int | None = None

    @property
    def submission_limits(self) -> Limits:
        """The limits a submission is checked against (``max_files`` 0 when files are off)."""
        return self.limits if self.files_accepted else replace(self.limits, max_files=0)


# --- reading -------------------------------------------------------------------------------


def read(session: Session, config: Config) -> Settings:
    """The settings, or ``NotInitialised``. One row by its key; the logo's bytes are not
    loaded (its column is deferred)."""
    row = session.get(InstanceSettings, 1)
    if row is None:
        raise NotInitialised("no tipbox instance in this database: run `tipbox init`")
    return Settings(
        name=row.name,
        description=row.description,
        languages=_stored_languages(row.languages),
        limits=_effective_limits(config, row.limits),
        files_accepted=row.files_accepted,
        retention_days=row.retention_days,
        logo_hash=row.logo_hash,
        spam_purge_days=row.spam_purge_days,
    )


def _stored_languages(stored: str) -> tuple[str, ...]:
    # Tolerant of a value written by hand: unknown codes are skipped, and nothing left
    # means every language rather than a site nobody can read.
    chosen = [code.strip() for code in stored.split(",") if code.strip() in LANGUAGES]
    return tuple(dict.fromkeys(chosen)) or LANGUAGES


def _effective_limits(config: Config, stored: Mapping[str, Any]) -> Limits:
    ceiling = Limits.from_config(config)
    lowered: dict[str, Any] = {}
    for name in _LIMIT_FIELDS:
        value = stored.get(name)
        # A malformed stored value (bool is an int in Python) is ignored, never trusted.
        if type(value) is int and value >= 1:
            lowered[name] = min(value, getattr(ceiling, name))
    return replace(ceiling, **lowered)


def logo_png(session: Session, logo_hash: bytes) -> bytes | None:
    """The logo's PNG bytes if ``logo_hash`` names the current logo, else None."""
    found: bytes | None = session.scalar(
        select(InstanceSettings.logo).where(
            InstanceSettings.id == 1, InstanceSettings.logo_hash == logo_hash
        )
    )
    return found


# --- updating ------------------------------------------------------------------------------


def update(
    session: Session,
    config: Config,
    actor_id: int | None,
    *,
    name: str | Unchanged = UNCHANGED,
    description: str | Unchanged = UNCHANGED,
    languages: Sequence[str] | Unchanged = UNCHANGED,
    max_message_chars: int | Unchanged | None = UNCHANGED,
    max_files: int | Unchanged | None = UNCHANGED,
    max_file_bytes: int | Unchanged | None = UNCHANGED,
    files_accepted: bool | Unchanged = UNCHANGED,
    retention_days: int | Unchanged | None = UNCHANGED,
    spam_purge_days: int | Unchanged | None = UNCHANGED,
) -> Settings:
    """Check and store the given settings; ``SettingsError`` (nothing stored) if any is
    refused. A limit of None means "as configured"; ``retention_days`` or
    ``spam_purge_days`` of None means "off".

    Records one ``settings.change`` event naming what changed (none if nothing did).
    Returns the settings as they now are.
    """
    problems: list[Problem] = []
    values: dict[str, object] = {}
    if not isinstance(name, Unchanged):
        values["name"] = _checked_text(problems, "name", name, MAX_NAME_CHARS, multiline=False)
    if not isinstance(description, Unchanged):
        values["description"] = _checked_text(
            problems, "description", description, MAX_DESCRIPTION_CHARS, multiline=True
        )
    if not isinstance(languages, Unchanged):
        values["languages"] = ",".join(_checked_languages(problems, languages))
    ceiling = Limits.from_config(config)
    for field, value in (
        ("max_message_chars", max_message_chars),
        ("max_files", max_files),
        ("max_file_bytes", max_file_bytes),
    ):
        if not isinstance(value, Unchanged):
            values[field] = _checked_limit(problems, field, value, getattr(ceiling, field))
    if not isinstance(files_accepted, Unchanged):
        values["files_accepted"] = bool(files_accepted)
    if not isinstance(retention_days, Unchanged):
        values["retention_days"] = _checked_days(problems, "retention_days", retention_days)
    if not isinstance(spam_purge_days, Unchanged):
        values["spam_purge_days"] = _checked_days(problems, "spam_purge_days", spam_purge_days)
    if problems:
        raise SettingsError(problems)
    row = _row_for_update(session)
    changed = [field for field, value in values.items() if _apply(row, field, value)]
    _record(session, actor_id, changed)
    return read(session, config)


def _row_for_update(session: Session) -> InstanceSettings:
    # Locked, so that two admins saving at once do not each overwrite the limits JSON with
    # a copy missing the other's change.
    return locked_settings(session)


def _apply(row: InstanceSettings, field: str, value: object) -> bool:
    """Set one checked value on the row; whether that changed anything."""
    if field in LIMIT_FLOORS:
        limits = dict(row.limits or {})
        if limits.get(field) == value or (value is None and field not in limits):
            return False
        if value is None:
            limits.pop(field, None)
        else:
            limits[field] = value
        row.limits = limits  # a new dict, so that the JSON column sees the change
        return True
    if getattr(row, field) == value:
        return False
    setattr(row, field, value)
    return True


def _record(session: Session, actor_id: int | None, changed: Sequence[str]) -> None:
    groups = list(dict.fromkeys(AUDIT_FIELDS[field] for field in changed))
    if groups:
        session.flush()
        audit.record(session, actor_id, "settings.change", fields="+".join(groups))


def _checked_text(
    problems: list[Problem], field: str, value: str, limit: int, *, multiline: bool
) -> str:
    # One form of line break, composed characters, no surrounding blanks.
    text = unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n"))
    text = text.strip()
    if field == "name" and not text:
        problems.append(Problem(field, "empty"))
    elif len(text) > limit:
        problems.append(Problem(field, "too_long", limit))
    elif any(_refused_character(char, multiline) for char in text):
        problems.append(Problem(field, "bad_character"))
    return text


def _refused_character(char: str, multiline: bool) -> bool:
    if char == "\n":
        return not multiline
    return char in _BIDI_AND_BOM or unicodedata.category(char) in _REFUSED_CATEGORIES


def _checked_languages(problems: list[Problem], value: Sequence[str]) -> tuple[str, ...]:
    codes = tuple(value)
    if not codes:
        problems.append(Problem("languages", "empty"))
    elif any(code not in LANGUAGES for code in codes):
        problems.append(Problem("languages", "unknown_language"))
    elif len(set(codes)) != len(codes):
        problems.append(Problem("languages", "duplicate_language"))
    return codes


def _checked_limit(problems: list[Problem], field: str, value: object, ceiling: int) -> int | None:
    if value is None:
        return None
    if type(value) is not int:
        problems.append(Problem(field, "not_a_number"))
        return None
    floor = min(LIMIT_FLOORS[field], ceiling)
    if value < floor:
        problems.append(Problem(field, "too_small", floor))
    elif value > ceiling:
        problems.append(Problem(field, "above_config", ceiling))
    return value


def _checked_days(problems: list[Problem], field: str, value: object) -> int | None:
    """A number of days (retention, spam purge): 1 to 3,650, or None for off."""
    if value is None:
        return None
    if type(value) is not int:
        problems.append(Problem(field, "not_a_number"))
        return None
    if not MIN_RETENTION_DAYS <= value <= MAX_RETENTION_DAYS:
        problems.append(Problem(field, "out_of_range", MAX_RETENTION_DAYS))
    return value


# --- the logo ------------------------------------------------------------------------------


def store_logo(session: Session, config: Config, actor_id: int | None, png: bytes) -> Settings:
    """Make ``png`` the logo. It must come from ``tipbox.logo.prepare_logo`` (callers use
    ``tipbox.logo.set_logo``); the size CHECK of the column backs that up. Records
    ``settings.change`` when the logo changed."""
    digest = hashlib.blake2b(png, digest_size=LOGO_HASH_BYTES).digest()
    row = _row_for_update(session)
    if row.logo_hash != digest:
        row.logo, row.logo_hash = png, digest
        _record(session, actor_id, ["logo"])
    return read(session, config)


def remove_logo(session: Session, config: Config, actor_id: int | None) -> Settings:
    """Remove the logo (the source app then shows the name alone)."""
    row = _row_for_update(session)
    if row.logo_hash is not None:
        row.logo, row.logo_hash = None, None
        _record(session, actor_id, ["logo"])
    return read(session, config)
