"""Security headers sent on every response of both web apps (DESIGN invariant 9).

The values are constants so that tests can lock them by exact string: a change here is a
change to the security posture and must show up in review as a test change too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from flask import Flask, Response

AppKind = Literal["source", "journalist"]

_CSP_COMMON = (
    "default-src 'none'; "
    "{script}; "
    "style-src 'self'; "
    "img-src 'self'; "
    "font-src 'self'; "
    "connect-src 'self'; "
    "form-action 'self'; "
    "frame-ancestors 'none'; "
    "base-uri 'none'"
)

# The source pages instantiate libsodium.js's WebAssembly module from bytes embedded in the
# script, which needs 'wasm-unsafe-eval' and nothing more (no eval, no fetch of data: URLs).
SOURCE_CSP = _CSP_COMMON.format(script="script-src 'self' 'wasm-unsafe-eval'")
JOURNALIST_CSP = _CSP_COMMON.format(script="script-src 'self'")

# Every powerful feature a page could ask for, denied. Only names that Chromium recognises
# on every platform (checked by tests/web/test_browser.py): an unknown name costs a console
# warning and protects nothing. Firefox, and so Tor Browser, ignores this header.
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "clipboard-read",
        "clipboard-write",
        "display-capture",
        "encrypted-media",
        "fullscreen",
        "gamepad",
        "geolocation",
        "gyroscope",
        "hid",
        "idle-detection",
        "local-fonts",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "picture-in-picture",
        "publickey-credentials-get",
        "screen-wake-lock",
        "serial",
        "storage-access",
        "usb",
        "xr-spatial-tracking",
    )
)


def security_headers(kind: AppKind) -> Mapping[str, str]:
    """The exact headers every response of the ``kind`` app carries."""
    return {
        "Content-Security-Policy": SOURCE_CSP if kind == "source" else JOURNALIST_CSP,
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Permissions-Policy": PERMISSIONS_POLICY,
    }


def install_security_headers(app: Flask, kind: AppKind) -> None:
    """Set the security headers on every response of ``app``, error pages included.

    The values overwrite whatever a view set: a view may not loosen them, and one that
    needs something stricter must change this module (and its locked test).
    """
    headers = dict(security_headers(kind))

    def _set_headers(response: Response) -> Response:
        for name, value in headers.items():
            response.headers[name] = value
        # Caches must not keep anything, so validators that help them are useless too.
        response.headers.pop("Last-Modified", None)
        response.headers.pop("ETag", None)
        return response

    app.after_request(_set_headers)
