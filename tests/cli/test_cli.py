"""The ``tipbox`` console script, run as a real process on SQLite and PostgreSQL."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tipbox.config import Config

TIPBOX = str(Path(sys.executable).with_name("tipbox"))


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TIPBOX, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def _env(config: Config) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIPBOX_")}
    env.update(
        TIPBOX_DATA_DIR=str(config.data_dir),
        TIPBOX_DATABASE_URL=config.database_url,
        TIPBOX_KEYS_DIR=str(config.keys_dir),
    )
    return env


def _fingerprint_line(output: str, label: str) -> str:
    line = next(line for line in output.splitlines() if line.startswith(label))
    return line.split(":", 1)[1].strip()


def test_init_then_keys_show(empty_database_url: str, config: Config, tmp_path: Path) -> None:
    env = _env(config)
    init = _run(["init", "--name", "Test newsroom"], env, tmp_path)
    assert init.returncode == 0, init.stderr
    identity = _fingerprint_line(init.stdout, "Identity fingerprint")
    newsroom = _fingerprint_line(init.stdout, "Newsroom key")
    assert "passphrase:" in init.stdout
    assert "no recovery key" in init.stderr
    assert (config.keys_dir / "identity.fingerprint").read_text().strip() == identity
    for kind in ("source", "journalist"):
        secret = config.data_dir / "secrets" / f"{kind}_flask.key"
        assert secret.stat().st_mode & 0o777 == 0o600
        assert len(secret.read_bytes()) == 32

    show = _run(["keys", "show"], env, tmp_path)
    assert show.returncode == 0, show.stderr
    assert "identity   active    " in show.stdout
    assert identity in show.stdout
    assert newsroom in show.stdout
    assert "current" in show.stdout

    again = _run(["init"], env, tmp_path)
    assert again.returncode == 1
    assert "already holds" in again.stderr
    assert "Traceback" not in again.stderr


def test_recovery_key_made_offline_is_used_by_init(
    empty_database_url: str, config: Config, tmp_path: Path
) -> None:
    offline = tmp_path / "offline"
    offline.mkdir()
    made = _run(["keys", "recovery-new"], {**os.environ}, offline)
    assert made.returncode == 0, made.stderr
    public_file = offline / "recovery-public-key.json"
    assert public_file.is_file()
    secret_words = made.stdout.split("\n\n")[1].split()
    assert len(secret_words) == 20
    # The file holds the public half only: none of the secret words are in it.
    assert not any(word in public_file.read_text() for word in secret_words if len(word) > 4)

    init = _run(["init", "--recovery-public-key", str(public_file)], _env(config), tmp_path)
    assert init.returncode == 0, init.stderr
    show = _run(["keys", "show"], _env(config), tmp_path)
    assert "recovery" in show.stdout


def test_init_rejects_a_bad_recovery_file(config: Config, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "tipbox-recovery-public-key", "version": 1}')
    result = _run(["init", "--recovery-public-key", str(bad)], _env(config), tmp_path)
    assert result.returncode == 1
    assert "not valid" in result.stderr
    assert "Traceback" not in result.stderr


def test_keys_show_without_instance_is_a_clear_error(tmp_path: Path) -> None:
    config = Config.for_data_dir(tmp_path / "nothing")
    result = _run(["keys", "show"], _env(config), tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(port: int, path: str = "/") -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def _wait_until_serving(
    port: int, proc: subprocess.Popen[str], deadline: float, path: str = "/"
) -> int:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"demo exited early with {proc.returncode}")
        try:
            return _get(port, path)
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"nothing served on port {port}")


def test_demo_serves_both_apps_and_prints_a_working_code(tmp_path: Path) -> None:
    import pyotp

    source_port, journalist_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIPBOX_")}
    env.update(TIPBOX_SOURCE_PORT=str(source_port), TIPBOX_JOURNALIST_PORT=str(journalist_port))
    out = tmp_path / "demo.out"
    with out.open("w") as sink:
        proc = subprocess.Popen(
            [TIPBOX, "demo"],
            env=env,
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            assert _wait_until_serving(source_port, proc, deadline) == 200
            # The journalist app's start page for a visitor without a session is its login.
            assert _wait_until_serving(journalist_port, proc, deadline, "/login") == 200
            code = _run(["demo", "code"], env, tmp_path)
            assert code.returncode == 0, code.stderr
            secret = next(
                line.split(":", 1)[1].strip()
                for line in out.read_text().splitlines()
                if "TOTP secret:" in line
            )
            assert pyotp.TOTP(secret).verify(code.stdout.strip(), valid_window=1)
        finally:
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=60) == 0
    text = out.read_text()
    assert "DEMO INSTANCE" in text
    assert "Recovery secret (demo only)" in text
    assert (tmp_path / "instance-demo" / "keys" / "identity.json").is_file()
