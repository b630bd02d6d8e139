"""Who is asking, and with which keys: the session's journalist, their key pair for this
request (DESIGN 4.6), the identity public key and the metadata keys for tags."""

from __future__ import annotations

import re
from typing import Final

from flask import request
from sqlalchemy.orm import Session
from werkzeug.exceptions import BadRequest

from tipbox import tagging
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import KeyPair, PublicKeys, Role, keypair_from_seed
from tipbox.crypto.tags import MetadataKeys
from tipbox.journalist_auth import ROLE_ADMIN

from . import session as journalist_session
from .session import JournalistSession
from .state import state

_PUBLIC_ID: Final = re.compile(r"[0-9a-f]{32}")


def me() -> JournalistSession:
    """The session of the journalist making this request (the hooks turned others away)."""
    found = journalist_session.current()
    assert found is not None
    return found


def reader() -> KeyPair:
    """The journalist's key pair, made from the session's seed for this request only."""
    return keypair_from_seed(Role.JOURNALIST, me().seed)


def identity() -> PublicKeys:
    """The instance's identity public key, as checked at start-up."""
    return state().identity


def metadata_keys(db: Session) -> MetadataKeys | None:
    """The tag keys for this journalist, or None while the instance has no metadata key
    (an admin's first use makes it) or it was not granted to them."""
    try:
        return tagging.open_metadata_keys(
            db, identity(), reader(), is_admin=me().role == ROLE_ADMIN
        )
    except Rejected:
        return None


def public_ids(field: str) -> list[bytes]:
    """The public ids a form posted under ``field`` (32 hex digits each; 400 otherwise)."""
    values = request.form.getlist(field)
    if not all(_PUBLIC_ID.fullmatch(value) for value in values):
        raise BadRequest()
    return [bytes.fromhex(value) for value in values]
