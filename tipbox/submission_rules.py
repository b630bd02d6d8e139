"""What a submission may be, and the refusal a source sees when it is not.

Shared by the upload objects (which refuse a file over its limit as it streams) and the
accept functions (``tipbox.submissions``); docs/source-app.md section 5 lists the limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from tipbox.config import Config
from tipbox.crypto import envelope

# UTF-8 takes at most 4 bytes per character: the largest message body, in bytes.
BYTES_PER_CHAR: Final = 4


class SubmissionRejected(Exception):  # noqa: N818 - a refusal the source sees, not a bug
    """A submission refused with nothing stored.

    ``status`` is the HTTP status the source app answers with (400, or 413 for a file over
    the size limit); ``reason`` is a stable key the app maps to a page in the source's
    language: ``empty``, ``message_too_long``, ``too_many_files``, ``file_too_large``,
    ``unknown_source``, ``bad_manifest``, ``wrong_source``, ``not_issued``, ``bad_kind``,
    ``stale_key``, ``bad_envelope``, ``bad_parts``, ``bad_blob``; the request class adds
    ``unexpected_part``, ``no_session`` and ``files_not_accepted`` (a file part when the
    instance takes none), ``disk_full`` and ``storage_cap`` (a file part when there is no
    room for files: ``tipbox.capacity``; 507). The message never contains user content.
    """

    def __init__(self, reason: str, status: int = 400) -> None:
        """Refuse for ``reason`` with HTTP ``status`` (400, 413 or 507)."""
        super().__init__(f"submission rejected: {reason}")
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class Limits:
    """Submission limits (docs/source-app.md section 5): the configuration's, lowered by
    the instance settings (``tipbox.settings.Settings.submission_limits``).

    ``key_grace_seconds``: how long after a newsroom key turned *retiring* a browser-made
    envelope sealed to it is still accepted: ``Config.key_grace_seconds``, the source
    session's absolute lifetime (a form's item ids live there) plus the slowest upload
    (the post is checked when it has arrived). Rotation retires a key only after it.
    """

    max_message_chars: int
    max_files: int
    max_file_bytes: int
    key_grace_seconds: int = 6 * 3600
    # Why no file is taken when ``max_files`` is 0: the settings (``files_not_accepted``)
    # or no room (``disk_full``, ``storage_cap``: tipbox.capacity).
    no_files_reason: str = "files_not_accepted"

    @property
    def accepts_files(self) -> bool:
        """False when the instance takes messages only (``max_files`` 0: the settings'
        "files accepted" is off), so a file is refused on either path."""
        return self.max_files > 0

    @classmethod
    def from_config(cls, config: Config) -> Limits:
        """The limits ``config`` sets."""
        return cls(
            max_message_chars=config.max_message_chars,
            max_files=config.max_files,
            max_file_bytes=config.max_file_bytes,
            key_grace_seconds=config.key_grace_seconds,
        )

    @property
    def max_message_bytes(self) -> int:
        """The largest message body, in bytes."""
        return BYTES_PER_CHAR * self.max_message_chars


# The HTTP status of each refusal that is not a 400.
_STATUS: dict[str, int] = {"file_too_large": 413, "disk_full": 507, "storage_cap": 507}


def no_files(limits: Limits) -> SubmissionRejected:
    """The refusal of a file part when ``limits`` take no file, with its reason."""
    return SubmissionRejected(limits.no_files_reason, _STATUS.get(limits.no_files_reason, 400))


def max_blob_bytes(limits: Limits) -> int:
    """The largest blob a browser may post for one item (a file or a message)."""
    return envelope.blob_length(max(limits.max_file_bytes, limits.max_message_bytes))
