"""Serve one of the web apps under gunicorn, configured for tipbox (DESIGN section 5).

Threaded workers (``gthread``), so a slow upload over Tor holds one thread, not a worker,
and is never killed for being slow. The source app writes no access log at all; the
journalist app's access log has the method, status and duration only. Gunicorn's own
error log is put through a filter that drops client addresses, request lines and
exception messages.

``tipbox serve source|journalist`` calls :func:`serve`; ``python -m tipbox.serve`` does
the same from the environment, for tests and service files.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger as GunicornLogger

from tipbox.config import Config
from tipbox.web.app import SECRET_KEY_FILE, SECRET_KEY_SETTING
from tipbox.web.logs import ScrubFilter, configure_process_logging

AppName = Literal["source", "journalist"]

THREADS = 8
MAX_WORKERS = 4
# Gunicorn's worker timeout is a heartbeat of the worker's main loop; a gthread worker
# beats while its threads serve slow requests, so this only catches a stuck worker.
WORKER_TIMEOUT_SECONDS = 120
# On restart, give uploads in progress time to finish before workers are stopped.
GRACEFUL_TIMEOUT_SECONDS = 120
KEEPALIVE_SECONDS = 5
# Gunicorn's workers touch a heartbeat file; it holds nothing but belongs in memory.
SHM_DIR = "/dev/shm"  # noqa: S108 - a tmpfs for heartbeat files, not data
JOURNALIST_ACCESS_FORMAT = "access %(m)s %(s)s %(M)sms"


def default_workers() -> int:
    """Worker processes for this machine: one per CPU, at least two, at most four."""
    return max(2, min(os.cpu_count() or 1, MAX_WORKERS))


def default_bind(app_name: AppName, config: Config) -> str:
    """``host:port`` of the app in ``config``."""
    if app_name == "source":
        return f"{config.source_host}:{config.source_port}"
    return f"{config.journalist_host}:{config.journalist_port}"


def scrub_gunicorn_message(msg: str, args: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
    """Gunicorn's log message with any request data cut off.

    A message about a request ("Invalid request from ip=...: <request line>", "Error
    handling request %s %s") keeps only its first words, which say what happened;
    the rest and the arguments are the client's data.
    """
    if "request" not in msg.lower() and "ip=" not in msg:
        return msg, args
    for cut in (" from ip=", "ip=", " %", ":", "'"):
        msg = msg.split(cut, 1)[0]
    return msg.rstrip(" .") + " (details not logged)", ()


class _ScrubbedLogger(GunicornLogger):  # type: ignore[misc]
    """Gunicorn's logger with request data kept out of the error log.

    Gunicorn logs a bad request's client address and request line ("Invalid request from
    ip=...") and a failed request's URI; those lines are replaced by a fixed text, and any
    traceback by a summary without the exception's message.
    """

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for handler in self.error_log.handlers:
            if not any(isinstance(f, ScrubFilter) for f in handler.filters):
                handler.addFilter(ScrubFilter())

    def _clean(self, msg: Any, args: tuple[Any, ...]) -> tuple[Any, tuple[Any, ...]]:
        return scrub_gunicorn_message(str(msg), args)

    def critical(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        msg, args = self._clean(msg, args)
        super().critical(msg, *args, **kwargs)

    def error(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        msg, args = self._clean(msg, args)
        super().error(msg, *args, **kwargs)

    def warning(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        msg, args = self._clean(msg, args)
        super().warning(msg, *args, **kwargs)

    def info(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        msg, args = self._clean(msg, args)
        super().info(msg, *args, **kwargs)

    def debug(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        msg, args = self._clean(msg, args)
        super().debug(msg, *args, **kwargs)

    def exception(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        msg, args = self._clean(msg, args)
        super().exception(msg, *args, **kwargs)

    def log(self, lvl: Any, msg: Any, *args: Any, **kwargs: Any) -> None:
        msg, args = self._clean(msg, args)
        super().log(lvl, msg, *args, **kwargs)


class _SourceLogger(_ScrubbedLogger):
    """No access log, whatever the configuration says: the source app logs no visit."""

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        return None

    @property
    def access_log_enabled(self) -> bool:
        return False


class TipboxGunicorn(BaseApplication):  # type: ignore[misc]
    """A gunicorn application that builds the Flask app in each worker after the fork.

    Building it after the fork keeps database connections and random state out of the
    parent; the Flask secret is fixed in the parent (see :func:`serve`) so that every
    worker signs cookies with the same key.
    """

    def __init__(self, factory: Callable[[], Flask], options: dict[str, Any]) -> None:
        self._factory = factory
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        """Apply our options; gunicorn's command line and config files are not read."""
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        """Build the app (called in each worker)."""
        configure_process_logging()
        return self._factory()


def gunicorn_options(
    app_name: AppName, config: Config, bind: str | None = None, workers: int | None = None
) -> dict[str, Any]:
    """The gunicorn settings :func:`serve` uses, exposed for tests and deploy docs."""
    options: dict[str, Any] = {
        "bind": [bind or default_bind(app_name, config)],
        "workers": workers or default_workers(),
        "worker_class": "gthread",
        "threads": THREADS,
        "timeout": WORKER_TIMEOUT_SECONDS,
        "graceful_timeout": GRACEFUL_TIMEOUT_SECONDS,
        "keepalive": KEEPALIVE_SECONDS,
        "proc_name": f"tipbox-{app_name}",
        "preload_app": False,
        "errorlog": "-",
        "loglevel": "info",
        "capture_output": False,
        # Each instance of gunicorn would otherwise open the same control socket in $HOME.
        "control_socket_disable": True,
        # The workers' heartbeat files: in memory, not on a disk (gunicorn's own advice),
        # and out of the temp directory the tests watch for upload temp files.
        "worker_tmp_dir": SHM_DIR if os.path.isdir(SHM_DIR) else None,
    }
    if app_name == "source":
        options["accesslog"] = None
        options["logger_class"] = _SourceLogger
    else:
        options["accesslog"] = "-"
        options["access_log_format"] = JOURNALIST_ACCESS_FORMAT
        options["logger_class"] = _ScrubbedLogger
    return options


def _with_fixed_secret(app_name: AppName, config: Config) -> Config:
    # Without a configured key or key file, each worker would draw its own random key and
    # a form shown by one worker would be refused by another.
    setting = SECRET_KEY_SETTING.format(kind=app_name.upper())
    if (
        config.extra.get(setting)
        or (config.data_dir / SECRET_KEY_FILE.format(kind=app_name)).is_file()
    ):
        return config
    return replace(config, extra={**config.extra, setting: secrets.token_hex(32)})


def _factory(app_name: AppName, config: Config) -> Callable[[], Flask]:
    def build() -> Flask:
        # Imported here so that the source process never imports the journalist app.
        if app_name == "source":
            from tipbox.source import create_app as create_source_app

            return create_source_app(config)
        from journalist_ui import create_app as create_journalist_app

        return create_journalist_app(config)

    return build


def serve(
    app_name: AppName, config: Config, bind: str | None = None, workers: int | None = None
) -> None:
    """Run the ``app_name`` app under gunicorn until it is stopped (SIGTERM or SIGINT).

    ``bind`` is ``host:port`` or ``unix:/path``; by default the host and port in
    ``config``. ``workers`` defaults to :func:`default_workers`.
    """
    config = _with_fixed_secret(app_name, config)
    configure_process_logging()
    options = gunicorn_options(app_name, config, bind=bind, workers=workers)
    TipboxGunicorn(_factory(app_name, config), options).run()


def main(argv: list[str] | None = None) -> None:
    """``python -m tipbox.serve source|journalist [--bind ADDR] [--workers N]``."""
    parser = argparse.ArgumentParser(prog="python -m tipbox.serve", description=main.__doc__)
    parser.add_argument("app", choices=["source", "journalist"])
    parser.add_argument("--bind", help="host:port or unix:/path (default: from the config)")
    parser.add_argument("--workers", type=int, help="worker processes")
    args = parser.parse_args(argv)
    app_name: AppName = "source" if args.app == "source" else "journalist"
    logging.captureWarnings(True)
    serve(app_name, Config.from_env(), bind=args.bind, workers=args.workers)


if __name__ == "__main__":
    main()
