"""``tipbox journalist …``: add, list, reset, remove accounts, change role and activity, and
confirm the key a journalist made at first login. Each command is unlocked by an admin's
passphrase and TOTP code (``tipbox.cli_unlock``) and calls one ``tipbox.journalists``
function in one transaction.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

import click
import segno
from sqlalchemy.orm import Session

from tipbox import journalists
from tipbox.accounts import Credentials
from tipbox.cli_unlock import admin_option, unlock_admin
from tipbox.config import Config
from tipbox.db import instance_transaction

T = TypeVar("T")
# The issuer an authenticator app shows beside the account (as for `tipbox init`).
TOTP_ISSUER = "tipbox"


def _admin(config: Config, admin_username: str) -> journalists.Admin:
    unlocked = unlock_admin(config, admin_username)
    return journalists.Admin(unlocked.journalist_id, unlocked.keypair, unlocked.identity)


def _act(
    config: Config, admin_username: str, action: Callable[[Session, journalists.Admin], T]
) -> T:
    """Unlock the admin, then run ``action`` in one transaction; a refusal is a clean error."""
    admin = _admin(config, admin_username)
    try:
        with instance_transaction(config) as session:
            return action(session, admin)
    except journalists.AccountError as exc:
        raise click.ClickException(str(exc)) from None


def _print_credentials(creds: Credentials) -> None:
    """Print temporary credentials once, with the TOTP URI and its QR code."""
    uri = creds.totp_uri(TOTP_ISSUER)
    click.echo("Temporary credentials (shown once; hand them over in person, then clear this")
    click.echo("screen). At first login they are replaced by a new passphrase and key.")
    click.echo(f"  username:    {creds.username}")
    click.echo(f"  passphrase:  {creds.passphrase}")
    click.echo(f"  TOTP secret: {creds.totp_secret}")
    click.echo(f"  TOTP URI:    {uri}")
    click.echo("  Scan this with an authenticator app:")
    segno.make(uri, error="m").terminal(out=sys.stdout, compact=True)


def _confirm_hint(username: str) -> None:
    click.echo(
        f"\nAfter {username}'s first login, their new key awaits confirmation: compare the "
        f"fingerprint they read out from their screen, then run\n"
        f"  tipbox journalist confirm-key {username} --fingerprint '…'"
    )


def _reload_hint(config: Config) -> None:
    if config.onion_clients_dir is not None:
        click.echo("Their onion devices are revoked: run `systemctl reload tor` as root.")


@click.group("journalist")
def journalist_group() -> None:
    """Manage journalist accounts (an admin unlocks each command)."""


@journalist_group.command("add")
@click.argument("username")
@click.option("--admin-role", is_flag=True, help="Make the account an admin.")
@admin_option
@click.pass_obj
def add_command(config: Config, username: str, admin_role: bool, admin_username: str) -> None:
    """Add an account; print its temporary credentials once."""
    creds = _act(
        config,
        admin_username,
        lambda session, admin: journalists.add_journalist(
            session, config, admin, username, is_admin=admin_role
        ),
    )
    role = "admin" if admin_role else "journalist"
    click.echo(f"Added {creds.username} ({role}).")
    _print_credentials(creds)
    if not admin_role:
        _confirm_hint(creds.username)


@journalist_group.command("list")
@admin_option
@click.pass_obj
def list_command(config: Config, admin_username: str) -> None:
    """List every account with its role, state and key fingerprint."""
    found = _act(
        config,
        admin_username,
        lambda session, admin: journalists.list_journalists(session, admin.identity),
    )
    click.echo(f"{'username':<20} {'role':<10} {'state':<22} fingerprint")
    for info in found:
        role = "admin" if info.is_admin else "journalist"
        fingerprint = info.fingerprint or "-"
        click.echo(f"{info.username:<20} {role:<10} {info.state.value:<22} {fingerprint}")


@journalist_group.command("reset")
@click.argument("username")
@admin_option
@click.pass_obj
def reset_command(config: Config, username: str, admin_username: str) -> None:
    """Give an account new temporary credentials and key; print them once."""
    creds = _act(
        config,
        admin_username,
        lambda session, admin: journalists.reset(session, config, admin, username),
    )
    click.echo(f"Reset {creds.username}: their old key, its grants and sessions are gone.")
    _print_credentials(creds)


@journalist_group.command("remove")
@click.argument("username")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@admin_option
@click.pass_obj
def remove_command(config: Config, username: str, yes: bool, admin_username: str) -> None:
    """Remove an account: its grants, key, sessions and directory entry."""
    if not yes:
        click.confirm(f"Remove {username}? This cannot be undone", abort=True)
    _act(
        config,
        admin_username,
        lambda session, admin: journalists.remove(session, admin, username, config=config),
    )
    click.echo(f"Removed {username}: their grants, key, sessions and directory entry are gone.")
    _reload_hint(config)
    click.echo(
        "A copy of their keys may still open what was sealed to the newsroom key until now: "
        "rotate it (tipbox keys rotate)."
    )


@journalist_group.command("role")
@click.argument("username")
@click.argument("role", type=click.Choice(["admin", "journalist"]))
@admin_option
@click.pass_obj
def role_command(config: Config, username: str, role: str, admin_username: str) -> None:
    """Make an account an admin or a journalist (the identity key goes to admins only)."""
    changed = _act(
        config,
        admin_username,
        lambda session, admin: journalists.set_role(
            session, admin, username, is_admin=role == "admin"
        ),
    )
    click.echo(f"{username} is now {role}." if changed else f"{username} was already {role}.")


@journalist_group.command("deactivate")
@click.argument("username")
@admin_option
@click.pass_obj
def deactivate_command(config: Config, username: str, admin_username: str) -> None:
    """Deactivate an account: its sessions end, its grants go, login is refused."""
    changed = _act(
        config,
        admin_username,
        lambda session, admin: journalists.deactivate(session, admin, username, config=config),
    )
    click.echo(f"Deactivated {username}." if changed else f"{username} was already inactive.")
    _reload_hint(config)


@journalist_group.command("activate")
@click.argument("username")
@admin_option
@click.pass_obj
def activate_command(config: Config, username: str, admin_username: str) -> None:
    """Activate an account again and re-grant its key."""
    changed = _act(
        config,
        admin_username,
        lambda session, admin: journalists.activate(session, admin, username),
    )
    click.echo(f"Activated {username}." if changed else f"{username} was already active.")


@journalist_group.command("confirm-key")
@click.argument("username")
@click.option(
    "--fingerprint",
    prompt="Fingerprint the journalist reads out",
    help="The 40 hex digits on the journalist's screen (spaces optional).",
)
@admin_option
@click.pass_obj
def confirm_key_command(
    config: Config, username: str, fingerprint: str, admin_username: str
) -> None:
    """Confirm the key a journalist made at first login; refused unless the fingerprint
    matches."""
    confirmed = _act(
        config,
        admin_username,
        lambda session, admin: journalists.confirm_pending_key(
            session, admin, username, fingerprint
        ),
    )
    click.echo(f"Confirmed {username}'s key {confirmed}; it is granted the newsroom keys.")
