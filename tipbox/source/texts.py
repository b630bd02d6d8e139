"""Wording that views compute: why a submission was refused, and sizes, in the source's
language. Never any of the source's content."""

from __future__ import annotations

from flask_babel import format_decimal, gettext

from tipbox.config import MIB
from tipbox.submission_rules import Limits

KIB = 1024
GIB = 1024 * MIB


def size_text(size: int) -> str:
    """A byte count for people: "500 MB", "1.5 GB", "64 KB" (binary units, local digits)."""
    if size >= GIB:
        return str(gettext("%(number)s GB", number=format_decimal(round(size / GIB, 1))))
    if size >= MIB:
        return str(gettext("%(number)s MB", number=format_decimal(round(size / MIB, 1))))
    if size >= KIB:
        return str(gettext("%(number)s KB", number=format_decimal(round(size / KIB, 1))))
    return str(gettext("%(number)s bytes", number=format_decimal(size)))


def refusal_text(reason: str, limits: Limits) -> str:
    """Why a submission was refused (a ``SubmissionRejected`` reason), and what to do."""
    if reason == "empty":
        return str(
            gettext("There was nothing to send. Write a message or choose at least one file.")
        )
    if reason == "message_too_long":
        return str(
            gettext(
                "Your message is too long: it may have at most %(limit)s characters. "
                "Split it into several messages and send them one after another.",
                limit=format_decimal(limits.max_message_chars),
            )
        )
    if reason == "disk_full":
        return str(
            gettext(
                "The newsroom's storage is nearly full, so files cannot be accepted right now. "
                "Send your message without files, and try the files again later."
            )
        )
    if reason == "storage_cap":
        return str(
            gettext(
                "You have sent as many files as this newsroom can store for one person, or "
                "these files would go past that limit. Send your message without files."
            )
        )
    if reason == "files_not_accepted" or (reason == "too_many_files" and not limits.accepts_files):
        return str(
            gettext(
                "This newsroom accepts messages only, not files. "
                "Write what you want to tell us in the message, and send it without files."
            )
        )
    if reason == "too_many_files":
        return str(
            gettext(
                "You chose too many files: you can send at most %(limit)s at a time. "
                "Send the others in another submission.",
                limit=format_decimal(limits.max_files),
            )
        )
    if reason == "file_too_large":
        return str(
            gettext(
                "A file is too large: each file may be at most %(limit)s. "
                "Split it into smaller parts, or compress it, and send the parts one by one.",
                limit=size_text(limits.max_file_bytes),
            )
        )
    if reason in ("not_issued", "stale_key", "wrong_source", "no_session"):
        return str(
            gettext("This page was out of date. Send your message and files again from here.")
        )
    return str(
        gettext(
            "Your submission could not be checked, so it was not accepted. "
            "Send your message and files again from this page."
        )
    )
