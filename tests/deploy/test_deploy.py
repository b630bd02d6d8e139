"""``deploy/``: the installer's dry run and prefix run, checked by the real tools.

The rendered torrc must pass ``tor --verify-config``, the units ``systemd-analyze verify``
and the scripts ``shellcheck``. A missing tool skips its test, unless
``TIPBOX_REQUIRE_DEPLOY_TOOLS=1`` (CI) makes it a failure.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import nacl.public
import pytest

from tipbox.config import Config

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "deploy" / "install.sh"
TIPBOX = Path(sys.executable).with_name("tipbox")
UNITS = (
    "tipbox-source.service",
    "tipbox-journalist.service",
    "tipbox-retention.service",
    "tipbox-onion-sync.service",
    "tipbox-retention.timer",
    "tipbox-onion-sync.path",
)
SERVICES = [unit for unit in UNITS if unit.endswith(".service")]
# Every file the installer writes, as seen from /, with its mode.
RENDERED = {
    "etc/tipbox/source.env": 0o600,
    "etc/tipbox/journalist.env": 0o600,
    "etc/systemd/system/tipbox-source.service": 0o644,
    "etc/systemd/system/tipbox-journalist.service": 0o644,
    "etc/systemd/system/tipbox-retention.service": 0o644,
    "etc/systemd/system/tipbox-retention.timer": 0o644,
    "etc/systemd/system/tipbox-onion-sync.service": 0o644,
    "etc/systemd/system/tipbox-onion-sync.path": 0o644,
    "etc/tor/torrc": 0o644,
    "etc/sysctl.d/90-tipbox.conf": 0o644,
    "etc/apparmor.d/local/system_tor": 0o644,
}
# A --client-auth device is the first admin's, in the app's spool and in Tor's directory.
CLIENT_AUTH = "var/lib/tor/tipbox-journalist/authorized_clients/admin--laptop.auth"
SPOOL = "var/lib/tipbox/onion-clients"
SPOOL_AUTH = f"{SPOOL}/admin--laptop.auth"
JOURNALIST_ONION = "a" * 56 + ".onion"


def require_tool(name: str) -> str:
    """The path of ``name``, or skip (fail under ``TIPBOX_REQUIRE_DEPLOY_TOOLS=1``)."""
    path = shutil.which(name)
    if path is not None:
        return path
    if os.environ.get("TIPBOX_REQUIRE_DEPLOY_TOOLS") == "1":
        pytest.fail(f"{name} is missing and TIPBOX_REQUIRE_DEPLOY_TOOLS=1")
    pytest.skip(f"{name} is missing")


def client_key_file(tmp_path: Path) -> Path:
    """A journalist device's Tor client key, as the device would export it."""
    public = bytes(nacl.public.PrivateKey.generate().public_key)
    key = base64.b32encode(public).decode("ascii").rstrip("=")
    path = tmp_path / "laptop.auth"
    path.write_text(f"descriptor:x25519:{key}\n", encoding="ascii")
    return path


def install(
    tmp_path: Path, *args: str, swaps: str = "", check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run install.sh with a fixed /proc/swaps (``swaps`` are its lines after the header)."""
    swaps_file = tmp_path / "swaps"
    swaps_file.write_text("Filename\tType\tSize\tUsed\tPriority\n" + swaps, encoding="ascii")
    env = {**os.environ, "TIPBOX_INSTALL_SWAPS_FILE": str(swaps_file)}
    return subprocess.run(
        ["bash", str(INSTALL), *args],
        env=env,
        capture_output=True,
        text=True,
        check=check,
        timeout=60,
    )


@pytest.fixture
def rendered(tmp_path: Path) -> Path:
    """A dry run into ``tmp_path/out``, with Tor's data and the tipbox command test-local."""
    out = tmp_path / "out"
    install(
        tmp_path,
        "--dry-run",
        "--output",
        str(out),
        "--tipbox-bin",
        str(TIPBOX),
        "--tor-data-dir",
        str(tmp_path / "tor"),
        "--client-auth",
        str(client_key_file(tmp_path)),
        "--journalist-onion",
        JOURNALIST_ONION,
    )
    return out


def test_dry_run_renders_every_file(rendered: Path, tmp_path: Path) -> None:
    files = {
        str(p.relative_to(rendered)): stat.S_IMODE(p.stat().st_mode)
        for p in rendered.rglob("*")
        if p.is_file()
    }
    auth = str((tmp_path / "tor").relative_to("/")) + CLIENT_AUTH.removeprefix("var/lib/tor")
    assert files == {**RENDERED, auth: 0o600, SPOOL_AUTH: 0o640}
    assert (rendered / auth).read_text(encoding="ascii") == (rendered / SPOOL_AUTH).read_text(
        encoding="ascii"
    )
    for path in files:
        text = (rendered / path).read_text(encoding="utf-8")
        assert re.search(r"@[A-Z_]+@", text) is None, path
    # Nothing but the output directory was written.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["laptop.auth", "out", "swaps"]


def test_dry_run_prints_every_file_without_output_dir(tmp_path: Path) -> None:
    result = install(tmp_path, "--dry-run")
    headers = [line for line in result.stdout.splitlines() if line.startswith("=== ")]
    assert [h.split()[1].lstrip("/") for h in headers] == list(RENDERED)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["swaps"]


def test_torrc_passes_tor_verify_config(rendered: Path, tmp_path: Path) -> None:
    tor = require_tool("tor")
    torrc = rendered / "etc/tor/torrc"
    text = torrc.read_text(encoding="utf-8")
    source, journalist = text.split("HiddenServiceDir ")[1:]
    assert "HiddenServicePoWDefensesEnabled 1" in source
    assert "HiddenServicePoWDefensesEnabled" not in journalist
    assert "unix:/run/tipbox-source/gunicorn.sock" in source
    assert "unix:/run/tipbox-journalist/gunicorn.sock" in journalist
    (tmp_path / "tor").mkdir(mode=0o700)
    verify = [tor, "--verify-config", "--defaults-torrc", os.devnull, "-f"]
    result = subprocess.run(
        [*verify, str(torrc)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Configuration was valid" in result.stdout
    # The check has teeth: a broken option fails it.
    broken = tmp_path / "broken-torrc"
    broken.write_text(text + "HiddenServicePoWDefensesEnabled maybe\n", encoding="utf-8")
    result = subprocess.run(
        [*verify, str(broken)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode != 0


def test_units_pass_systemd_analyze_verify(rendered: Path) -> None:
    analyze = require_tool("systemd-analyze")
    units = rendered / "etc/systemd/system"
    result = subprocess.run(
        [analyze, "verify", *(f"./{unit}" for unit in UNITS)],
        cwd=units,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # Unknown keys and bad values are only warnings to verify: none may name our units.
    assert [line for line in output.splitlines() if "tipbox" in line] == []


def test_units_are_hardened(rendered: Path) -> None:
    users = set()
    for unit in SERVICES:
        lines = (rendered / "etc/systemd/system" / unit).read_text(encoding="utf-8").splitlines()
        for setting in (
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "PrivateTmp=yes",
            "LimitCORE=0",
            "RestrictAddressFamilies=AF_UNIX",
            "CapabilityBoundingSet=",
        ):
            assert setting in lines, (unit, setting)
        user = next(line for line in lines if line.startswith("User="))
        users.add(user)
        assert any(line.startswith("ReadWritePaths=") for line in lines)
    assert users == {"User=tipbox-source", "User=tipbox-journalist", "User=debian-tor"}
    source = (rendered / "etc/systemd/system/tipbox-source.service").read_text(encoding="utf-8")
    assert f"ExecStart={TIPBOX} serve source --bind unix:/run/tipbox-source/gunicorn.sock" in (
        source
    )
    assert "ReadOnlyPaths=/var/lib/tipbox/keys" in source
    assert "InaccessiblePaths=-/var/lib/tipbox/journalist" in source


def test_env_files_match_the_config(rendered: Path) -> None:
    """The env files parse as tipbox's config, with its default limits, and name the host."""
    defaults = Config.for_data_dir(Path("/nonexistent"))
    for app in ("source", "journalist"):
        lines = (rendered / f"etc/tipbox/{app}.env").read_text(encoding="utf-8").splitlines()
        env = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
        config = Config.from_env(env)
        assert config.data_dir == Path(f"/var/lib/tipbox/{app}")
        assert config.database_url.startswith(f"postgresql+psycopg://tipbox-{app}@/tipbox")
        assert config.blob_dir == Path("/var/lib/tipbox/blobs")
        assert config.keys_dir == Path("/var/lib/tipbox/keys")
        assert config.max_files == defaults.max_files
        assert config.max_file_bytes == defaults.max_file_bytes
        assert config.max_message_chars == defaults.max_message_chars
        assert config.slowest_upload_seconds == defaults.slowest_upload_seconds
    journalist = (rendered / "etc/tipbox/journalist.env").read_text(encoding="utf-8")
    assert f"TIPBOX_JOURNALIST_TRUSTED_HOSTS={JOURNALIST_ONION}\n" in journalist
    # The journalist app manages devices in its spool; the source app has none.
    assert _env(rendered, "journalist").onion_clients_dir == Path("/") / SPOOL
    assert _env(rendered, "source").onion_clients_dir is None
    # The source app's budgets are stated at tipbox.config's defaults, and its host-wide
    # Argon2id slots meet in the unit's runtime directory.
    source = _env(rendered, "source")
    for name in (
        "logins_in_flight",
        "new_sources_per_minute",
        "submissions_per_hour",
        "source_storage_cap_bytes",
        "min_free_disk_bytes",
    ):
        assert getattr(source, name) == getattr(defaults, name), name
    assert source.run_dir == Path("/run/tipbox-source")
    text = (rendered / "etc/tipbox/source.env").read_text(encoding="utf-8")
    for variable in (
        "TIPBOX_LOGINS_IN_FLIGHT",
        "TIPBOX_NEW_SOURCES_PER_MINUTE",
        "TIPBOX_SUBMISSIONS_PER_HOUR",
        "TIPBOX_SOURCE_STORAGE_CAP_MIB",
        "TIPBOX_MIN_FREE_DISK_MIB",
        "TIPBOX_RUNTIME_DIR",
    ):
        assert f"\n{variable}=" in text, variable


def _env(rendered: Path, app: str) -> Config:
    lines = (rendered / f"etc/tipbox/{app}.env").read_text(encoding="utf-8").splitlines()
    return Config.from_env(
        dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    )


def _unit(rendered: Path, name: str) -> list[str]:
    return (rendered / "etc/systemd/system" / name).read_text(encoding="utf-8").splitlines()


def _setting(lines: list[str], key: str) -> str:
    return next(line.removeprefix(f"{key}=") for line in lines if line.startswith(f"{key}="))


def test_the_source_units_runtime_directory_is_its_argon2_lock_dir(rendered: Path) -> None:
    """TIPBOX_RUNTIME_DIR must be the unit's RuntimeDirectory: systemd makes it, owned by the
    app's user, and keeps it writable under ProtectSystem=strict."""
    lines = _unit(rendered, "tipbox-source.service")
    env = (rendered / "etc/tipbox/source.env").read_text(encoding="utf-8").splitlines()
    runtime = _setting(env, "TIPBOX_RUNTIME_DIR")
    assert runtime == "/run/" + _setting(lines, "RuntimeDirectory")
    assert _setting(lines, "User") == "tipbox-source"
    assert "ProtectSystem=strict" in lines


def test_device_spool_reaches_tor_only_through_the_sync_unit(rendered: Path) -> None:
    """The journalist app writes its spool; only the sync unit, as Tor's user, writes Tor's
    authorized_clients/, and the source app sees neither."""
    spool = "/" + SPOOL
    journalist = _unit(rendered, "tipbox-journalist.service")
    assert spool in _setting(journalist, "ReadWritePaths").split()
    source = _unit(rendered, "tipbox-source.service")
    assert f"-{spool}" in _setting(source, "InaccessiblePaths").split()
    sync = _unit(rendered, "tipbox-onion-sync.service")
    assert _setting(sync, "User") == "debian-tor"
    assert _setting(sync, "SupplementaryGroups") == "tipbox-journalist"
    assert _setting(sync, "ReadOnlyPaths") == spool
    (writable,) = _setting(sync, "ReadWritePaths").split()
    assert writable.endswith("/tipbox-journalist/authorized_clients")
    assert "PrivateNetwork=yes" in sync
    # Root runs only the reload; the unit itself has no capability.
    assert [line for line in sync if "=+" in line] == [
        "ExecStartPost=+/bin/systemctl try-reload-or-restart tor@default.service"
    ]
    path = _unit(rendered, "tipbox-onion-sync.path")
    assert _setting(path, "PathChanged") == spool
    assert _setting(path, "Unit") == "tipbox-onion-sync.service"
    # The Tor unit the sync reloads is the one the AppArmor file is written for.
    apparmor = (rendered / "etc/apparmor.d/local/system_tor").read_text(encoding="utf-8")
    assert "/run/tipbox-journalist/gunicorn.sock rw," in apparmor


def test_the_sync_units_command_line_runs(rendered: Path, tmp_path: Path) -> None:
    """The rendered ExecStart, pointed at a test spool, runs the real `tipbox onion sync`."""
    command = _setting(_unit(rendered, "tipbox-onion-sync.service"), "ExecStart").split()
    assert command[:3] == [str(TIPBOX), "onion", "sync"]
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o750)
    key = (rendered / SPOOL_AUTH).read_text(encoding="ascii")
    (spool / "admin--laptop.auth").write_text(key, encoding="ascii")
    command[command.index("--from") + 1] = str(spool)
    target = Path(command[command.index("--to") + 1])
    assert target == tmp_path / "tor/tipbox-journalist/authorized_clients"
    target.parent.mkdir(parents=True, mode=0o700)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}  # as systemd: no TIPBOX_*
    result = subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=60, env=env, cwd="/"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "added admin--laptop.auth" in result.stdout
    assert (target / "admin--laptop.auth").read_text(encoding="ascii") == key


def test_shell_scripts_pass_shellcheck() -> None:
    shellcheck = require_tool("shellcheck")
    scripts = sorted(str(p) for p in (REPO / "deploy").glob("*.sh"))
    assert scripts
    result = subprocess.run(
        [shellcheck, *scripts], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_prefix_run_lays_out_files_and_modes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    result = install(
        tmp_path,
        "--prefix",
        str(root),
        "--tipbox-bin",
        str(TIPBOX),
        "--client-auth",
        str(client_key_file(tmp_path)),
    )
    modes = {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in root.rglob("*")}
    expected = {
        **RENDERED,
        CLIENT_AUTH: 0o600,
        SPOOL: 0o750,
        SPOOL_AUTH: 0o640,
        "etc/tipbox": 0o700,
        "var/lib/tipbox": 0o755,
        "var/lib/tipbox/source": 0o700,
        "var/lib/tipbox/source/secrets": 0o700,
        "var/lib/tipbox/source/secrets/source_flask.key": 0o600,
        "var/lib/tipbox/journalist": 0o700,
        "var/lib/tipbox/journalist/secrets": 0o700,
        "var/lib/tipbox/journalist/secrets/journalist_flask.key": 0o600,
        "var/lib/tipbox/blobs": 0o2770,
        "var/lib/tipbox/keys": 0o2750,
        "var/lib/tor/tipbox-source": 0o700,
        "var/lib/tor/tipbox-journalist": 0o700,
        "var/lib/tor/tipbox-journalist/authorized_clients": 0o700,
    }
    for path, mode in expected.items():
        assert modes.get(path) == mode, (path, oct(modes.get(path, 0)))
    for kind in ("source", "journalist"):
        key = root / f"var/lib/tipbox/{kind}/secrets/{kind}_flask.key"
        assert len(key.read_bytes()) == 32
    # Only the two apps' own secrets: neither data directory holds the other's.
    assert not (root / "var/lib/tipbox/journalist/secrets/source_flask.key").exists()
    # The system steps are printed, not run; the role split is a marked TODO.
    for step in (
        "apt-get install",
        "useradd",
        "systemctl restart tor",
        "runuser -u postgres -- createdb",
        "systemctl enable --now tipbox-source.service",
    ):
        assert f"skipped (not on the real system): {step}" in result.stderr, step
    assert "tipbox init --name tipbox --admin admin" in result.stderr
    assert "db roles --source-role tipbox-source --journalist-role tipbox-journalist" in (
        result.stderr
    )
    assert "GRANT" not in result.stderr  # the source role is never given the journalist's
    assert "Source onion address" in result.stdout
    # What the installer put in Tor's directory is what the sync unit would put there.
    sync = subprocess.run(
        [
            str(TIPBOX),
            "onion",
            "sync",
            "--from",
            str(root / SPOOL),
            "--to",
            str(root / CLIENT_AUTH).removesuffix("/admin--laptop.auth"),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert sync.stdout.splitlines() == ["1 device(s) authorized; unchanged"]
    for step in ("tipbox-onion-sync.path", "systemctl start tipbox-onion-sync.service"):
        assert step in result.stderr, step
    # A second run keeps the secrets.
    before = (root / "var/lib/tipbox/source/secrets/source_flask.key").read_bytes()
    install(tmp_path, "--prefix", str(root), "--client-auth", str(tmp_path / "laptop.auth"))
    assert (root / "var/lib/tipbox/source/secrets/source_flask.key").read_bytes() == before


def test_unencrypted_swap_refuses_unless_allowed(tmp_path: Path) -> None:
    swap = "/dev/sda2\tpartition\t1048572\t0\t-2\n"
    root = tmp_path / "root"
    result = install(tmp_path, "--prefix", str(root), swaps=swap, check=False)
    assert result.returncode != 0
    assert "unencrypted swap is on (/dev/sda2" in result.stderr
    assert not (root / "etc").exists()
    allowed = install(
        tmp_path, "--prefix", str(root), "--allow-unencrypted-swap", swaps=swap, check=False
    )
    assert allowed.returncode == 0, allowed.stderr
    assert "WARNING: unencrypted swap is on" in allowed.stderr
    # A dry run warns and renders; swap in memory (zram) is fine.
    assert "WARNING" in install(tmp_path, "--dry-run", swaps=swap).stderr
    zram = install(tmp_path, "--dry-run", swaps="/dev/zram0\tpartition\t1\t0\t100\n")
    assert "swap: off or encrypted" in zram.stderr


def test_bad_client_key_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "phone.auth"
    bad.write_text("descriptor:x25519:not-a-key\n", encoding="ascii")
    root = tmp_path / "root"
    result = install(tmp_path, "--prefix", str(root), "--client-auth", str(bad), check=False)
    assert result.returncode != 0
    assert "not a Tor client key" in result.stderr
    assert not (root / "etc").exists()
