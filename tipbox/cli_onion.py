"""``tipbox onion …``: the journalist devices authorized on the journalist onion service
(``tipbox.onion``). Adding and revoking are unlocked by an admin's passphrase and TOTP code
(``tipbox.cli_unlock``) and audited; nothing here reloads Tor. ``sync`` copies a spool of
device files into Tor's directory; the deployment runs it as Tor's user, then reloads Tor.
"""

from __future__ import annotations

from pathlib import Path

import click

from tipbox import onion, onion_sync
from tipbox.cli_unlock import admin_option, unlock_admin
from tipbox.config import Config
from tipbox.db import instance_transaction


def _require_dir(config: Config) -> None:
    if config.onion_clients_dir is None:
        raise click.ClickException(
            f"{onion.NOT_CONFIGURED} (set TIPBOX_ONION_CLIENTS_DIR to its authorized_clients "
            "directory)"
        )


@click.group("onion")
def onion_group() -> None:
    """Journalist devices allowed on the journalist onion service (Tor client auth)."""


@onion_group.command("instructions")
def instructions_command() -> None:
    """Print how a journalist makes a key pair on their device."""
    click.echo(onion.INSTRUCTIONS, nl=False)


@onion_group.command("add-device")
@click.argument("username")
@click.argument("device")
@click.option(
    "--key",
    "key_line",
    prompt="Public key line (descriptor:x25519:…)",
    help="The device's public line, descriptor:x25519:<52 base32 characters>.",
)
@admin_option
@click.pass_obj
def add_device_command(
    config: Config, username: str, device: str, key_line: str, admin_username: str
) -> None:
    """Authorize a journalist's device with the public key made on it (see `instructions`)."""
    _require_dir(config)
    try:  # refuse a bad key or name before the admin spends a code
        onion.parse_key_line(key_line)
        onion.file_name(username, device)
    except onion.OnionError as exc:
        raise click.ClickException(str(exc)) from None
    unlocked = unlock_admin(config, admin_username)
    try:
        with instance_transaction(config) as session:
            added = onion.authorize(
                session, config, unlocked.journalist_id, username, device, key_line
            )
    except onion.OnionError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Authorized {username}'s device {device!r}: {added.path}")
    click.echo(onion.RELOAD_HINT)


@onion_group.command("list")
@click.pass_obj
def list_command(config: Config) -> None:
    """List the authorized devices (files not named USERNAME--DEVICE show as '-')."""
    _require_dir(config)
    try:
        devices = onion.list_devices(config)
    except onion.OnionError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{'username':<34} {'device':<34} file")
    for device in devices:
        click.echo(f"{device.username or '-':<34} {device.device:<34} {device.path.name}")


@onion_group.command("revoke")
@click.argument("username")
@click.argument("device", required=False)
@admin_option
@click.pass_obj
def revoke_command(config: Config, username: str, device: str | None, admin_username: str) -> None:
    """Revoke one device of a journalist, or all of them."""
    _require_dir(config)
    try:
        onion.check_name(username, "username")
        if device is not None:
            onion.check_name(device, "device name")
    except onion.OnionError as exc:
        raise click.ClickException(str(exc)) from None
    unlocked = unlock_admin(config, admin_username)
    try:
        with instance_transaction(config) as session:
            revoked = onion.revoke(session, config, unlocked.journalist_id, username, device)
    except onion.OnionError as exc:
        raise click.ClickException(str(exc)) from None
    if not revoked:
        what = f"device named {device!r}" if device is not None else "device"
        raise click.ClickException(f"{username} has no {what} to revoke")
    click.echo(f"Revoked {username}'s devices: {', '.join(revoked)}")
    click.echo(onion.RELOAD_HINT)


@onion_group.command("sync")
@click.option(
    "--from",
    "spool",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The spool the journalist app writes (TIPBOX_ONION_CLIENTS_DIR).",
)
@click.option(
    "--to",
    "target",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Tor's authorized_clients directory of the journalist onion.",
)
def sync_command(spool: Path, target: Path) -> None:
    """Copy the spool's valid device files into Tor's authorized_clients directory.

    Every file is checked again (name, regular file, size, exactly one client key line);
    refused ones are named on standard error and left out, files gone from the spool are
    removed. Needs no database. Exit status 1 only when a directory is unusable.
    """
    try:
        result = onion_sync.sync_clients(spool, target)
    except (onion.OnionError, OSError) as exc:
        raise click.ClickException(f"sync refused, nothing changed: {exc}") from None
    for name, why in result.refused:
        click.echo(f"refused {name}: {why}", err=True)
    for verb, names in (
        ("added", result.added),
        ("updated", result.updated),
        ("removed", result.removed),
    ):
        for name in names:
            click.echo(f"{verb} {name}")
    if result.locked:
        click.echo(
            f"no device is authorized: {onion_sync.PLACEHOLDER} holds a key nobody has, so the "
            "journalist onion stays closed (an empty directory would make it public)"
        )
    devices = 0 if result.locked else len(result.added) + len(result.updated) + len(result.kept)
    state = "changed" if result.changed else "unchanged"
    click.echo(f"{devices} device(s) authorized; {state}")
