"""Words the journalist pages show for stored values, marked for translation.

``N_`` only marks a string for the catalogue; templates translate it when they render
(``_(status_labels[status])``), in the language of that request.
"""

from __future__ import annotations

from typing import Final

from tipbox.models import (
    SOURCE_STATUS_CLOSED,
    SOURCE_STATUS_IN_REVIEW,
    SOURCE_STATUS_NEW,
    SOURCE_STATUS_PUBLISHED,
    SOURCE_STATUS_SPAM,
    SOURCE_STATUS_VERIFIED,
)
from tipbox.web.i18n import N_

STATUS_LABELS: Final[dict[int, str]] = {
    SOURCE_STATUS_NEW: N_("New"),
    SOURCE_STATUS_IN_REVIEW: N_("In review"),
    SOURCE_STATUS_VERIFIED: N_("Verified"),
    SOURCE_STATUS_PUBLISHED: N_("Published"),
    SOURCE_STATUS_CLOSED: N_("Closed"),
    SOURCE_STATUS_SPAM: N_("Spam"),
}

SORT_LABELS: Final[dict[str, str]] = {
    "activity": N_("Newest activity first"),
    "oldest": N_("Oldest activity first"),
    "unread": N_("Unread first"),
    "designation": N_("By designation"),
}
