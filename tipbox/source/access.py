"""Which views need a source session, declared on the view and enforced before the form.

The check runs in the app's ``before_request`` hook (``tipbox.source.hooks``), before the
CSRF check parses the body: a request without a session is turned away without reading
an upload it could never use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, TypeVar

Need = Literal["session", "confirmed"]
NEED_ATTRIBUTE = "tipbox_source_needs"

View = TypeVar("View", bound=Callable[..., object])


def needs(need: Need) -> Callable[[View], View]:
    """Mark a view as needing a session (``"session"``) or a confirmed one (``"confirmed"``)."""

    def mark(view: View) -> View:
        setattr(view, NEED_ATTRIBUTE, need)
        return view

    return mark


def need_of(view: Callable[..., object] | None) -> Need | None:
    """What ``view`` was marked with, or None for a page anyone may open."""
    need: Need | None = getattr(view, NEED_ATTRIBUTE, None)
    return need
