"""The ``tipbox`` command: thin wrappers that parse options, call one domain function, print.

The configuration is read from the environment once, here at the process boundary, and
passed down; nothing below reads the environment.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pyotp
import segno

from tipbox import db, instance
from tipbox.accounts import Credentials
from tipbox.cli_backup import register as register_backup_commands
from tipbox.cli_db_roles import register as register_db_role_commands
from tipbox.cli_fsck import fsck_command
from tipbox.cli_journalists import journalist_group
from tipbox.cli_keys import register as register_key_commands
from tipbox.cli_onion import onion_group
from tipbox.cli_retention import retention_group
from tipbox.config import Config
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import PublicKeys
from tipbox.crypto.recovery import (
    generate_recovery_secret,
    parse_recovery_public_file,
    recovery_keypair,
    recovery_public_file_text,
)
from tipbox.directory import NotInitialised
from tipbox.web.app import write_secret_keys

DEMO_DIR = Path("instance-demo")
DEMO_CREDENTIALS = "demo-credentials.json"
DEMO_ADMIN = "admin"


def _config(ctx: click.Context) -> Config:
    config = ctx.obj
    assert isinstance(config, Config)
    return config


@click.group()
@click.pass_context
def cli(ctx: click.Context) -> None:
    """tipbox: a secure anonymous tip box for newsrooms."""
    if ctx.obj is None:
        ctx.obj = Config.from_env()


# -- init and keys ------------------------------------------------------------------------


@cli.command("init")
@click.option("--name", default="tipbox", show_default=True, help="The newsroom's name.")
@click.option("--admin", "admin_username", default="admin", show_default=True)
@click.option(
    "--recovery-public-key",
    "recovery_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Public key file made offline by `tipbox keys recovery-new`.",
)
@click.pass_context
def init_command(
    ctx: click.Context, name: str, admin_username: str, recovery_file: Path | None
) -> None:
    """Create the database, the keys and the first admin; print their secrets once."""
    config = _config(ctx)
    recovery = None
    if recovery_file is not None:
        try:
            recovery = parse_recovery_public_file(recovery_file.read_text(encoding="utf-8"))
        except (Rejected, UnicodeDecodeError) as exc:
            message = f"the recovery public key file is not valid: {exc}"
            raise click.ClickException(message) from None
    result = _initialise(config, name, admin_username, recovery=recovery)
    _print_init(config, result)
    if recovery is None:
        click.secho(
            "\nWARNING: this instance has no recovery key. If every admin loses their "
            "passphrase, nothing stored can be read again. Make one offline with "
            "`tipbox keys recovery-new` and add it.",
            fg="yellow",
            err=True,
        )


def _initialise(
    config: Config,
    name: str,
    admin_username: str,
    *,
    recovery: PublicKeys | None = None,
    recovery_in_place: bool = False,
) -> instance.InitResult:
    db.upgrade(config)
    write_secret_keys(config)
    engine = db.make_engine(config)
    try:
        with db.transaction(db.make_session_factory(engine)) as session:
            return instance.init_instance(
                session,
                config,
                name=name,
                admin_username=admin_username,
                recovery_public=recovery,
                recovery_in_place=recovery_in_place,
            )
    except instance.AlreadyInitialised as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()


def _print_init(config: Config, result: instance.InitResult) -> None:
    click.echo(f"Identity fingerprint:  {result.identity.fingerprint}")
    click.echo(f"Newsroom key:          {result.newsroom.fingerprint}")
    click.echo(f"Identity exported to:  {config.keys_dir}")
    click.echo("")
    click.echo("First admin (shown once; write it down, then clear this screen):")
    _print_credentials(result.admin)


def _print_credentials(creds: Credentials) -> None:
    click.echo(f"  username:    {creds.username}")
    click.echo(f"  passphrase:  {creds.passphrase}")
    click.echo(f"  TOTP secret: {creds.totp_secret}")
    click.echo("  Scan this with an authenticator app:")
    qr = segno.make(creds.totp_uri("tipbox"), error="m")
    qr.terminal(out=sys.stdout, compact=True)


@cli.group("keys")
def keys_group() -> None:
    """Show and manage keys."""


@keys_group.command("show")
@click.pass_context
def keys_show(ctx: click.Context) -> None:
    """Print the identity and newsroom keys, each verified against keys/."""
    config = _config(ctx)
    engine = db.make_engine(config)
    try:
        with db.transaction(db.make_session_factory(engine, read_only=True)) as session:
            report = instance.key_report(session, config.keys_dir)
    except (Rejected, NotInitialised, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
    click.echo(f"{'role':<10} {'status':<9} {'created':<10}  fingerprint")
    for key in report:
        click.echo(
            f"{key.role.name.lower():<10} {key.status.name.lower():<9} "
            f"{key.created_on.isoformat():<10}  {key.fingerprint}"
        )


@keys_group.command("recovery-new")
@click.option(
    "--public-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("recovery-public-key.json"),
    show_default=True,
)
def keys_recovery_new(public_key_file: Path) -> None:
    """Make a recovery key (run this on another, offline machine)."""
    if public_key_file.exists():
        raise click.ClickException(f"{public_key_file} exists; refusing to overwrite it")
    secret = generate_recovery_secret()
    public = recovery_keypair(secret).public
    public_key_file.write_text(recovery_public_file_text(public), encoding="utf-8")
    click.echo("Recovery secret (write it on paper; it is shown once and stored nowhere):")
    click.echo("")
    click.echo(f"  {secret}")
    click.echo("")
    click.echo(f"Public key written to {public_key_file} (fingerprint {public.fingerprint}).")
    click.echo("Copy only that file to the server: tipbox init --recovery-public-key FILE")


# rotate, rewrap, retire, recover and status (docs/keys.md)
register_key_commands(keys_group)


# -- database and serving -----------------------------------------------------------------


@cli.group("db")
def db_group() -> None:
    """Database maintenance."""


@db_group.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Apply every pending migration (safe to run again)."""
    config = _config(ctx)
    db.upgrade(config)
    click.echo(f"database at revision {db.current_revision(config)}")


register_db_role_commands(db_group)


@cli.command("serve")
@click.argument("app_name", type=click.Choice(["source", "journalist"]))
@click.option("--bind", help="host:port or unix:/path (default: from the configuration)")
@click.option("--workers", type=int, help="gunicorn worker processes")
@click.pass_context
def serve_command(ctx: click.Context, app_name: str, bind: str | None, workers: int | None) -> None:
    """Serve the source or journalist app under gunicorn."""
    from tipbox.serve import serve

    serve("source" if app_name == "source" else "journalist", _config(ctx), bind, workers)


# -- demo ---------------------------------------------------------------------------------


@cli.group("demo", invoke_without_command=True)
@click.option("--no-serve", is_flag=True, help="Create the demo instance but do not serve it.")
@click.pass_context
def demo_group(ctx: click.Context, no_serve: bool) -> None:
    """Create a throwaway demo instance and serve both apps on 127.0.0.1:8080 and :8081."""
    if ctx.invoked_subcommand is not None:
        return
    base = _config(ctx)
    # Only where to listen comes from the environment: the demo always has its own SQLite
    # database and folder, whatever TIPBOX_DATABASE_URL says.
    config = Config.for_data_dir(
        DEMO_DIR,
        demo=True,
        source_host=base.source_host,
        source_port=base.source_port,
        journalist_host=base.journalist_host,
        journalist_port=base.journalist_port,
    )
    if config.data_dir.exists():
        shutil.rmtree(config.data_dir)
    click.secho(
        "DEMO INSTANCE: throwaway keys, a recovery key made on this machine, and the admin's "
        "secrets saved in clear in the instance folder. Never use it for real tips.",
        fg="yellow",
        err=True,
    )
    result = _initialise(config, "tipbox demo", DEMO_ADMIN, recovery_in_place=True)
    _save_demo_credentials(config, result.admin)
    _print_init(config, result)
    click.echo(f"\nRecovery secret (demo only): {result.recovery_secret}")
    click.echo("One-time code at any moment: tipbox demo code")
    if not no_serve:
        _serve_both(config)


@demo_group.command("code")
def demo_code() -> None:
    """Print the demo admin's current one-time code."""
    path = Config.for_data_dir(DEMO_DIR).data_dir / DEMO_CREDENTIALS
    try:
        creds = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise click.ClickException("no demo instance here: run `tipbox demo` first") from None
    click.echo(pyotp.TOTP(creds["totp_secret"]).now())


def _save_demo_credentials(config: Config, creds: Credentials) -> None:
    path = config.data_dir / DEMO_CREDENTIALS
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(
            {
                "username": creds.username,
                "passphrase": creds.passphrase,
                "totp_secret": creds.totp_secret,
            },
            out,
        )


def _serve_both(config: Config) -> None:
    env = {
        **os.environ,
        "TIPBOX_DATA_DIR": str(config.data_dir),
        "TIPBOX_DATABASE_URL": config.database_url,
        "TIPBOX_BLOB_DIR": str(config.blob_dir),
        "TIPBOX_KEYS_DIR": str(config.keys_dir),
        "TIPBOX_DEMO": "1",
        "TIPBOX_SOURCE_HOST": config.source_host,
        "TIPBOX_SOURCE_PORT": str(config.source_port),
        "TIPBOX_JOURNALIST_HOST": config.journalist_host,
        "TIPBOX_JOURNALIST_PORT": str(config.journalist_port),
    }
    procs = [
        subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "tipbox.serve", name, "--workers", "2"], env=env
        )
        for name in ("source", "journalist")
    ]
    click.echo(f"\nSource app:     http://{config.source_host}:{config.source_port}/")
    click.echo(f"Journalist app: http://{config.journalist_host}:{config.journalist_port}/")
    click.echo("Press Ctrl-C to stop.")
    try:
        while all(proc.poll() is None for proc in procs):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=30)
    failed = [proc.returncode for proc in procs if proc.returncode not in (0, -signal.SIGTERM)]
    if failed:
        raise click.ClickException("a server stopped with an error")


cli.add_command(retention_group)
cli.add_command(journalist_group)
cli.add_command(onion_group)
cli.add_command(fsck_command)
register_backup_commands(cli)


def main() -> None:
    """Entry point of the ``tipbox`` console script."""
    cli(obj=None)
