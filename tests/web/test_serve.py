"""The apps under real gunicorn processes: headers, logs, shutdown (``tipbox.serve``)."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tipbox.config import Config
from tipbox.serve import gunicorn_options, scrub_gunicorn_message

from .conftest import initialised_config
from .test_headers import assert_security_headers

REPO = Path(__file__).resolve().parents[2]
SECRET = "PLAINTEXT-c41d07"
START_TIMEOUT = 30.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=10)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect(self._path)
        self.sock = sock


@dataclass
class Server:
    """A running ``python -m tipbox.serve`` process and where its output goes."""

    process: subprocess.Popen[bytes]
    bind: str
    stdout: Path
    stderr: Path

    def connection(self) -> http.client.HTTPConnection:
        if self.bind.startswith("unix:"):
            return _UnixHTTPConnection(self.bind.removeprefix("unix:"))
        host, port = self.bind.rsplit(":", 1)
        return http.client.HTTPConnection(host, int(port), timeout=10)

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: str = ""
    ) -> tuple[http.client.HTTPResponse, bytes]:
        conn = self.connection()
        try:
            conn.request(method, path, body=body or None, headers=headers or {})
            response = conn.getresponse()
            return response, response.read()
        finally:
            conn.close()

    def stop(self) -> int:
        """SIGTERM, as a service manager sends it; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)

    def logs(self) -> tuple[str, str]:
        return self.stdout.read_text(), self.stderr.read_text()


def _start(tmp_path: Path, app_name: str, bind: str, workers: int = 1) -> Server:
    if not (tmp_path / "instance").exists():
        initialised_config(tmp_path / "instance")
    env = {key: value for key, value in os.environ.items() if not key.startswith("TIPBOX_")}
    env["TIPBOX_DATA_DIR"] = str(tmp_path / "instance")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    stdout = tmp_path / f"{app_name}.out"
    stderr = tmp_path / f"{app_name}.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tipbox.serve",
                app_name,
                "--bind",
                bind,
                "--workers",
                str(workers),
            ],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
    server = Server(process, bind, stdout, stderr)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise AssertionError(f"server exited early:\n{stderr.read_text()}")
        try:
            response, _ = server.request("GET", "/healthz")
            if response.status == 200:
                return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise AssertionError(f"server did not start:\n{stderr.read_text()}")
        time.sleep(0.1)


@pytest.fixture
def running(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[list[Server]]:
    """Servers started by a test, always stopped at its end."""
    servers: list[Server] = []
    yield servers
    for server in servers:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait(timeout=30)


def _visit_with_secrets(server: Server) -> None:
    """Requests that carry the secret in the path, query, headers, cookie and body."""
    headers = {
        "User-Agent": f"agent-{SECRET}",
        "Cookie": f"other={SECRET}",
        "X-Forwarded-For": "203.0.113.9",
    }
    for path in ("/", f"/?q={SECRET}", f"/missing-{SECRET}"):
        server.request("GET", path, headers=headers)
    server.request(
        "POST",
        "/logout",
        headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
        body=f"field={SECRET}",
    )
    # A malformed request line: gunicorn itself answers, and would log it with the IP.
    if not server.bind.startswith("unix:"):
        host, port = server.bind.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(f"BROKEN{SECRET} /{SECRET} HTTP/1.1\r\n\r\n".encode())
            sock.recv(1024)


def _assert_no_request_data(text: str) -> None:
    assert SECRET not in text
    assert "agent-" not in text
    assert "203.0.113.9" not in text
    assert "/missing" not in text
    assert "Traceback" not in text
    assert "HTTP/1.1" not in text


def test_source_app_under_gunicorn(tmp_path: Path, running: list[Server]) -> None:
    server = _start(tmp_path, "source", f"127.0.0.1:{_free_port()}", workers=2)
    running.append(server)

    response, body = server.request("GET", "/")
    assert response.status == 200
    assert b"Web test newsroom" in body
    assert_security_headers(response.headers, "source")
    # Gunicorn names itself but not its version.
    assert response.headers["Server"] == "gunicorn"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("tipbox_source=")

    # Whichever worker answers, the session cookie verifies: no new cookie is issued.
    session_cookie = cookie.split(";")[0]
    for _ in range(8):
        again, _ = server.request("GET", "/", headers={"Cookie": session_cookie})
        assert again.status == 200
        assert again.headers.get("Set-Cookie") is None

    missing, page = server.request("GET", f"/missing-{SECRET}")
    assert missing.status == 404
    assert SECRET.encode() not in page
    assert_security_headers(missing.headers, "source")

    _visit_with_secrets(server)
    assert server.stop() == 0
    stdout, stderr = server.logs()
    # No access log at all, in either stream.
    assert stdout == ""
    assert "GET" not in stderr
    assert "POST" not in stderr
    assert "Invalid request (details not logged)" in stderr
    _assert_no_request_data(stderr)


def test_journalist_app_under_gunicorn(tmp_path: Path, running: list[Server]) -> None:
    server = _start(tmp_path, "journalist", f"127.0.0.1:{_free_port()}")
    running.append(server)

    response, body = server.request("GET", "/login")
    assert response.status == 200
    assert b"tipbox journalist interface" in body
    assert_security_headers(response.headers, "journalist")
    assert response.headers["Set-Cookie"].startswith("tipbox_journalist=")

    _visit_with_secrets(server)
    assert server.stop() == 0
    stdout, stderr = server.logs()
    # The access log says what kind of request and how it ended, nothing about who or what.
    access = [line for line in stdout.splitlines() if line.startswith("access ")]
    assert "access GET 200" in "\n".join(access)
    assert "access GET 404" in "\n".join(access)
    _assert_no_request_data(stdout)
    _assert_no_request_data(stderr)


def test_source_app_on_a_unix_socket(tmp_path: Path, running: list[Server]) -> None:
    sock = tmp_path / "source.sock"
    server = _start(tmp_path, "source", f"unix:{sock}")
    running.append(server)
    response, body = server.request("GET", "/")
    assert response.status == 200
    assert b"Web test newsroom" in body
    assert server.stop() == 0
    assert server.logs()[0] == ""


def test_gunicorn_options_for_slow_tor_uploads(tmp_path: Path) -> None:
    config = Config.for_data_dir(tmp_path)
    source = gunicorn_options("source", config)
    journalist = gunicorn_options("journalist", config)
    for options in (source, journalist):
        assert options["worker_class"] == "gthread"
        assert options["threads"] >= 4
        assert 2 <= options["workers"] <= 4
        assert options["timeout"] >= 120
        assert options["control_socket_disable"] is True
    assert source["bind"] == ["127.0.0.1:8080"]
    assert journalist["bind"] == ["127.0.0.1:8081"]
    assert source["accesslog"] is None
    assert "%(h)" not in journalist["access_log_format"]
    assert "%(r)" not in journalist["access_log_format"]
    assert "%(U)" not in journalist["access_log_format"]
    assert "%(a)" not in journalist["access_log_format"]


@pytest.mark.parametrize(
    ("message", "args", "expected"),
    [
        (
            "Invalid request from ip=10.0.0.1: Invalid HTTP method 'X'",
            (),
            "Invalid request (details not logged)",
        ),
        ("Error handling request %s %s", ("GET", "/secret"), "Error handling request"),
        ("Error handling request %s", ("/secret",), "Error handling request"),
        ("Socket error processing request.", (), "Socket error processing request"),
        ("Booting worker with pid: %s", (42,), "Booting worker with pid: %s"),
    ],
)
def test_gunicorn_messages_lose_request_data(
    message: str, args: tuple[object, ...], expected: str
) -> None:
    cleaned, cleaned_args = scrub_gunicorn_message(message, args)
    assert cleaned.startswith(expected)
    if "request" in message.lower():
        assert cleaned_args == ()
        assert "secret" not in cleaned
        assert "10.0.0.1" not in cleaned
    else:
        assert cleaned_args == args
