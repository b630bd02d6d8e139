"""The TOTP QR code, drawn on the server as inline SVG markup (no script, no data: URI).

The journalist CSP has ``img-src 'self'``: an ``<img src="data:...">`` would be blocked,
but inline ``<svg>`` elements are part of the document, not a fetched image.
"""

from __future__ import annotations

import pyotp
import segno
from markupsafe import Markup

ISSUER = "tipbox"


def provisioning_uri(secret: str, username: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def qr_svg(uri: str) -> Markup:
    """``uri`` as an inline SVG QR code (segno's markup: a single path, no style)."""
    svg = segno.make(uri, error="m").svg_inline(scale=4, title="TOTP QR code")
    return Markup(svg)  # noqa: S704 - segno's own markup; the URI is encoded, not embedded
