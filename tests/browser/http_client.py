"""A plain HTTP client for the source app: cookies, CSRF tokens, first contact."""

from __future__ import annotations

import http.client
import re
import urllib.parse
from http.cookies import SimpleCookie


class Client:
    """A tiny cookie-keeping HTTP client for one origin."""

    def __init__(self, base: str) -> None:
        parsed = urllib.parse.urlsplit(base)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.cookies: dict[str, str] = {}

    def _headers(self, extra: dict[str, str]) -> dict[str, str]:
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return {**({"Cookie": cookie} if cookie else {}), **extra}

    def _keep(self, response: http.client.HTTPResponse) -> None:
        for header in response.headers.get_all("Set-Cookie") or []:
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                self.cookies[name] = morsel.value

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, str, str]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request(method, path, body=body or None, headers=self._headers(headers or {}))
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
            self._keep(response)
            return response.status, response.headers.get("Location", ""), text
        finally:
            conn.close()

    def post_form(self, path: str, fields: dict[str, str]) -> tuple[int, str, str]:
        body = urllib.parse.urlencode(fields).encode()
        return self.request(
            "POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"}
        )


def csrf_token(page: str) -> str:
    """The CSRF token of the first form on ``page``."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "no CSRF token on the page"
    return match.group(1)


def new_source(client: Client) -> str:
    """Get a codename and confirm it, as a source without JavaScript; return it."""
    _, _, landing = client.request("GET", "/")
    status, _, page = client.post_form("/generate", {"csrf_token": csrf_token(landing)})
    assert status == 200
    match = re.search(r'class="codename"[^>]*>([^<]+)<', page)
    assert match
    codename = " ".join(match.group(1).split())
    status, location, _ = client.post_form(
        "/confirm", {"csrf_token": csrf_token(page), "codename": codename}
    )
    assert status == 303
    assert location.endswith("/submit"), location
    return codename


def multipart(fields: dict[str, str]) -> tuple[bytes, str]:
    """A multipart/form-data body of text fields, and its Content-Type."""
    boundary = "tipboxtestboundary7f3a"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    body = ("".join(parts) + f"--{boundary}--\r\n").encode()
    return body, f"multipart/form-data; boundary={boundary}"
