"""Every response carries exactly these headers (DESIGN invariant 9).

The expected values are written out here, not imported: changing a header must change
this file too, so that the change is seen in review.
"""

from __future__ import annotations

from http.client import HTTPMessage

import pytest
from flask import Flask
from werkzeug.datastructures import Headers

EXPECTED_CSP = {
    "source": (
        "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "
        "img-src 'self'; font-src 'self'; connect-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "journalist": (
        "default-src 'none'; script-src 'self'; style-src 'self'; "
        "img-src 'self'; font-src 'self'; connect-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}

EXPECTED_PERMISSIONS_POLICY = (
    "accelerometer=(), autoplay=(), camera=(), clipboard-read=(), "
    "clipboard-write=(), display-capture=(), encrypted-media=(), fullscreen=(), gamepad=(), "
    "geolocation=(), gyroscope=(), hid=(), idle-detection=(), local-fonts=(), "
    "magnetometer=(), microphone=(), midi=(), payment=(), picture-in-picture=(), "
    "publickey-credentials-get=(), screen-wake-lock=(), serial=(), storage-access=(), "
    "usb=(), xr-spatial-tracking=()"
)


def expected_headers(kind: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": EXPECTED_CSP[kind],
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Permissions-Policy": EXPECTED_PERMISSIONS_POLICY,
    }


def assert_security_headers(headers: Headers | HTTPMessage, kind: str) -> None:
    """Each expected header present once, with exactly the expected value."""
    for name, value in expected_headers(kind).items():
        if isinstance(headers, Headers):
            values = headers.getlist(name)
        else:
            values = headers.get_all(name) or []
        assert values == [value], name


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/healthz"),
        ("GET", "/static-web/tipbox.css"),
        ("GET", "/does-not-exist"),
        ("DELETE", "/"),
        ("POST", "/logout"),
    ],
)
def test_every_response_has_the_exact_security_headers(
    app: Flask, app_kind: str, method: str, path: str
) -> None:
    response = app.test_client().open(path, method=method)
    assert_security_headers(response.headers, app_kind)


def test_the_csp_allows_no_inline_or_eval(app: Flask) -> None:
    csp = app.test_client().get("/").headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp
    assert "'unsafe-eval'" not in csp
    assert "data:" not in csp
    assert "*" not in csp


def test_only_the_source_app_allows_webassembly(app: Flask, app_kind: str) -> None:
    csp = app.test_client().get("/").headers["Content-Security-Policy"]
    assert ("'wasm-unsafe-eval'" in csp) == (app_kind == "source")


def test_static_files_carry_no_cache_validators(app: Flask) -> None:
    response = app.test_client().get("/static-web/tipbox.css")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert "ETag" not in response.headers
    assert "Last-Modified" not in response.headers


def test_no_server_header_from_the_app(app: Flask) -> None:
    # Gunicorn adds "Server: gunicorn" (no version); the app itself adds nothing.
    assert "Server" not in app.test_client().get("/").headers
