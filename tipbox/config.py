"""Settings: read once from the environment (``TIPBOX_*``) with embedded defaults.

A ``Config`` is an immutable value handed to app factories and domain functions; nothing
reads the environment anywhere else, and there is no module-level instance.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

MIB = 1024 * 1024


@dataclass(frozen=True)
class Argon2Cost:
    """Argon2id parameters (libsodium opslimit and memlimit in bytes)."""

    opslimit: int
    memlimit: int


# DESIGN 4.1 and 4.4. The environment cannot lower these; only code (tests) can.
JOURNALIST_KDF = Argon2Cost(opslimit=3, memlimit=256 * MIB)
CODENAME_KDF = Argon2Cost(opslimit=3, memlimit=64 * MIB)
# For tests only: the same code path at a cost a test suite can afford.
TEST_KDF = Argon2Cost(opslimit=1, memlimit=8 * MIB)


def default_logins_in_flight() -> int:
    """Half the machine's CPUs, at least one. Argon2id runs then leave the other half to
    logged-in sources under a flood of codename logins: on 2 CPUs, 1 slot kept a
    submission's p99 at 1.8 s where 4 slots made it 3.2 s (docs/benchmarks.md, flood)."""
    return max(1, (os.cpu_count() or 2) // 2)


class ConfigError(ValueError):
    """A setting in the environment is malformed."""


@dataclass(frozen=True)
class Config:
    """Everything an app or command needs to know about its instance."""

    data_dir: Path
    database_url: str
    blob_dir: Path
    keys_dir: Path
    source_host: str = "127.0.0.1"
    source_port: int = 8080
    journalist_host: str = "127.0.0.1"
    journalist_port: int = 8081
    journalist_kdf: Argon2Cost = JOURNALIST_KDF
    codename_kdf: Argon2Cost = CODENAME_KDF
    source_session_idle_seconds: int = 2 * 3600
    source_session_absolute_seconds: int = 6 * 3600
    # The slowest source upload to wait for after a session ends (docs/keys.md): a browser
    # post is checked when it has arrived, so a key's grace period must outlast the session
    # that issued the form *and* an upload begun at its last moment. 18 h is 5.5 GiB at 85 kB/s.
    slowest_upload_seconds: int = 18 * 3600
    journalist_session_idle_seconds: int = 30 * 60
    journalist_session_absolute_seconds: int = 12 * 3600
    # Source submissions (docs/source-app.md section 5).
    max_message_chars: int = 100_000
    max_files: int = 10
    max_file_bytes: int = 500 * MIB
    # Argon2id runs at once per process (docs/source-app.md section 3); past it, "busy".
    argon2_concurrency: int = 2
    # Flood budgets (docs/abuse.md); 0 turns one off. Argon2id runs (codename logins) in
    # flight at once on this host, over every worker and master sharing ``runtime_dir``:
    # each holds 64 MiB and a core for about 0.1 s.
    logins_in_flight: int = field(default_factory=lambda: default_logins_in_flight())
    # New sources per minute for the whole instance, and submissions per hour per source.
    new_sources_per_minute: int = 30
    submissions_per_hour: int = 20
    # Disk floods: what one source's own messages and files may take, and the free space
    # below which no file is accepted (messages still are).
    source_storage_cap_bytes: int = 10 * 1024 * MIB
    min_free_disk_bytes: int = 1024 * MIB
    demo: bool = False
    # The Host names each app answers to (Flask's TRUSTED_HOSTS); empty: any. In production
    # each is its onion address, so that a local process or a DNS rebinding page cannot
    # reach the app through another name (deploy/: the installer sets them).
    # The two apps as two users sharing a group (deploy/): blobs 0640, folders 2770.
    blob_group_shared: bool = False
    source_trusted_hosts: tuple[str, ...] = ()
    journalist_trusted_hosts: tuple[str, ...] = ()
    extra: Mapping[str, str] = field(default_factory=dict)
    # The source app's own database URL (its restricted role: tipbox.db_roles); None: the
    # same as ``database_url``.
    source_database_url: str | None = None
    # The journalist onion service's authorized_clients/ directory (tipbox.onion); None:
    # this instance manages no onion devices.
    onion_clients_dir: Path | None = None
    # Where processes of this host meet (lock files of the Argon2id slots); systemd gives
    # the source app /run/tipbox-source. None: ``data_dir / "run"``.
    runtime_dir: Path | None = None

    @classmethod
    def for_data_dir(cls, data_dir: Path, **overrides: object) -> Config:
        """A config whose database, blobs and keys all live under ``data_dir``."""
        data_dir = data_dir.resolve()
        base = cls(
            data_dir=data_dir,
            database_url=f"sqlite:///{data_dir / 'tipbox.sqlite'}",
            blob_dir=data_dir / "blobs",
            keys_dir=data_dir / "keys",
        )
        return replace(base, **overrides)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        """Build a config from ``TIPBOX_*`` variables, defaulting to ``./instance``."""
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("TIPBOX_DATA_DIR", "instance")).resolve()
        cfg = cls.for_data_dir(data_dir)
        return replace(
            cfg,
            database_url=env.get("TIPBOX_DATABASE_URL", cfg.database_url),
            source_database_url=env.get("TIPBOX_SOURCE_DATABASE_URL") or None,
            blob_dir=Path(env.get("TIPBOX_BLOB_DIR", str(cfg.blob_dir))).resolve(),
            keys_dir=Path(env.get("TIPBOX_KEYS_DIR", str(cfg.keys_dir))).resolve(),
            source_host=env.get("TIPBOX_SOURCE_HOST", cfg.source_host),
            source_port=_int(env, "TIPBOX_SOURCE_PORT", cfg.source_port),
            journalist_host=env.get("TIPBOX_JOURNALIST_HOST", cfg.journalist_host),
            journalist_port=_int(env, "TIPBOX_JOURNALIST_PORT", cfg.journalist_port),
            max_message_chars=_int(env, "TIPBOX_MAX_MESSAGE_CHARS", cfg.max_message_chars),
            max_files=_int(env, "TIPBOX_MAX_FILES", cfg.max_files),
            max_file_bytes=_int(env, "TIPBOX_MAX_FILE_MIB", cfg.max_file_bytes // MIB) * MIB,
            argon2_concurrency=_int(env, "TIPBOX_ARGON2_CONCURRENCY", cfg.argon2_concurrency),
            logins_in_flight=_int(env, "TIPBOX_LOGINS_IN_FLIGHT", cfg.logins_in_flight),
            new_sources_per_minute=_int(
                env, "TIPBOX_NEW_SOURCES_PER_MINUTE", cfg.new_sources_per_minute
            ),
            submissions_per_hour=_int(env, "TIPBOX_SUBMISSIONS_PER_HOUR", cfg.submissions_per_hour),
            source_storage_cap_bytes=_int(
                env, "TIPBOX_SOURCE_STORAGE_CAP_MIB", cfg.source_storage_cap_bytes // MIB
            )
            * MIB,
            min_free_disk_bytes=_int(
                env, "TIPBOX_MIN_FREE_DISK_MIB", cfg.min_free_disk_bytes // MIB
            )
            * MIB,
            runtime_dir=(
                Path(env["TIPBOX_RUNTIME_DIR"]).resolve() if env.get("TIPBOX_RUNTIME_DIR") else None
            ),
            slowest_upload_seconds=_int(
                env, "TIPBOX_SLOWEST_UPLOAD_HOURS", cfg.slowest_upload_seconds // 3600
            )
            * 3600,
            demo=env.get("TIPBOX_DEMO", "") == "1",
            blob_group_shared=env.get("TIPBOX_BLOB_GROUP_SHARED", "") == "1",
            source_trusted_hosts=_hosts(env, "TIPBOX_SOURCE_TRUSTED_HOSTS"),
            journalist_trusted_hosts=_hosts(env, "TIPBOX_JOURNALIST_TRUSTED_HOSTS"),
            onion_clients_dir=(
                Path(env["TIPBOX_ONION_CLIENTS_DIR"]).resolve()
                if env.get("TIPBOX_ONION_CLIENTS_DIR")
                else None
            ),
        )

    @property
    def key_grace_seconds(self) -> int:
        """How long a retiring newsroom key still accepts commits (DESIGN 4.5).

        The source session's absolute lifetime (a form's item ids live in its session) plus
        the slowest upload: built so that it always exceeds the session's lifetime.
        """
        return self.source_session_absolute_seconds + max(0, self.slowest_upload_seconds)

    @property
    def run_dir(self) -> Path:
        """Where this host's processes of the instance meet (``runtime_dir`` or default)."""
        return self.runtime_dir if self.runtime_dir is not None else self.data_dir / "run"

    @property
    def is_sqlite(self) -> bool:
        """True when the database is the embedded SQLite default."""
        return self.database_url.startswith("sqlite")


def _hosts(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list of host names (spaces and empty entries ignored)."""
    return tuple(host.strip() for host in env.get(name, "").split(",") if host.strip())


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer") from None
