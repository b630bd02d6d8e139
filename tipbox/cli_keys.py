"""``tipbox keys status|rotate|rewrap|retire|recover``: the newsroom key's lifecycle and
recovery (docs/keys.md). Thin: parse, unlock, call ``tipbox.rotation`` or
``tipbox.recovery_admin`` in a transaction, print.

``rotate``, ``rewrap`` and ``retire`` act with an admin's keys, unlocked with passphrase and
TOTP code (``tipbox.cli_unlock``); ``recover`` with the recovery secret instead.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click
import segno
from sqlalchemy.orm import Session, sessionmaker

from tipbox import db, instance, recovery_admin, rotation
from tipbox.accounts import Credentials
from tipbox.cli_unlock import UnlockedAdmin, admin_option, unlock_admin
from tipbox.config import Config
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import PublicKeys, Role
from tipbox.crypto.recovery import parse_recovery_public_file
from tipbox.directory import NotInitialised

# What a domain function raises that the operator should read as a message, not a traceback.
_REFUSALS = (
    Rejected,
    NotInitialised,
    FileNotFoundError,
    rotation.NotReady,
    recovery_admin.RecoveryRefused,
)


def register(keys_group: click.Group) -> None:
    """Add this module's commands to the ``tipbox keys`` group."""
    for command in (keys_status, keys_rotate, keys_rewrap, keys_retire, keys_recover):
        keys_group.add_command(command)


@contextmanager
def _factory(config: Config) -> Iterator[sessionmaker[Session]]:
    """A session factory on the instance's database, refusals turned into messages."""
    engine = db.make_engine(config)
    try:
        yield db.make_session_factory(engine)
    except _REFUSALS as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()


def _scrub(config: Config) -> None:
    engine = db.make_engine(config)
    try:
        db.scrub(engine)
    finally:
        engine.dispose()


def _unlock(config: Config, username: str) -> UnlockedAdmin:
    try:
        return unlock_admin(config, username)
    except _REFUSALS as exc:
        raise click.ClickException(str(exc)) from None


def _now() -> datetime:
    return datetime.now(UTC)


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


# --- status -------------------------------------------------------------------------------


@click.command("status")
@click.pass_obj
def keys_status(config: Config) -> None:
    """List every key with its status, and the items still wrapped to each newsroom key."""
    with _factory(config) as factory, db.transaction(factory) as session:
        report = instance.key_report(
            session, config.keys_dir, grace_seconds=config.key_grace_seconds
        )
    click.echo(
        f"{'short id':<9} {'role':<9} {'status':<9} {'created':<10} {'items':>7}  "
        f"{'commits until':<20}  fingerprint"
    )
    for key in report:
        items = "" if key.wrapped_items is None else f"{key.wrapped_items:,}"
        until = _when(key.commits_until) if key.role == Role.NEWSROOM else ""
        click.echo(
            f"{key.short_id:<9} {key.role.name.lower():<9} {key.status.name.lower():<9} "
            f"{key.created_on.isoformat():<10} {items:>7}  {until:<20}  {key.fingerprint}"
        )


# --- rotate -------------------------------------------------------------------------------


@click.command("rotate")
@admin_option
@click.pass_obj
def keys_rotate(config: Config, admin_username: str) -> None:
    """Make a new newsroom key current; the current one starts retiring."""
    admin = _unlock(config, admin_username)
    with _factory(config) as factory, db.transaction(factory) as session:
        rotated = rotation.rotate(
            session,
            admin.identity,
            admin.keypair,
            admin.journalist_id,
            _now(),
            config.key_grace_seconds,
        )
    click.echo(f"New current newsroom key: {rotated.current.fingerprint}")
    click.echo(f"  granted to {rotated.grantees} keys (journalists, admins, the recovery key)")
    click.echo(f"Retiring newsroom key: {rotated.previous.fingerprint}")
    click.echo(f"  accepts commits until {_when(rotated.commits_until)} (its grace period)")
    click.echo("Next: `tipbox keys rewrap` (now, and again after the grace period), then")
    click.echo("`tipbox keys retire`.")


# --- rewrap -------------------------------------------------------------------------------


@click.command("rewrap")
@admin_option
@click.option(
    "--batch-size",
    type=click.IntRange(1, 10_000),
    default=rotation.DEFAULT_BATCH,
    show_default=True,
    help="Wraps per transaction.",
)
@click.pass_obj
def keys_rewrap(config: Config, admin_username: str, batch_size: int) -> None:
    """Move every wrap from retiring keys to the current key; safe to stop and run again."""
    admin = _unlock(config, admin_username)
    with _factory(config) as factory:
        with db.transaction(factory) as session:
            total = rotation.wraps_to_move(session, admin.identity)
        moved, unopened = _batches(factory, admin, total, batch_size)
        with db.transaction(factory) as session:
            results = rotation.finish_rewrap(
                session,
                admin.identity,
                admin.keypair,
                admin.journalist_id,
                moved,
                _now(),
                config.key_grace_seconds,
                limit=batch_size,
            )
    if not results:
        click.echo("No newsroom key is retiring: nothing to re-wrap.")
    for result in results:
        _print_swept(result)
    if unopened:
        click.secho(
            f"{unopened} wraps did not open with their key and were left as they are: "
            "those items were unreadable already (docs/keys.md).",
            fg="yellow",
            err=True,
        )


def _batches(
    factory: sessionmaker[Session], admin: UnlockedAdmin, total: int, batch_size: int
) -> tuple[Counter[bytes], int]:
    """Run batches, one transaction each, until none is left; progress on stderr."""
    moved: Counter[bytes] = Counter()
    unopened, after = 0, 0
    with click.progressbar(
        length=max(total, 1), label="Re-wrapping", show_pos=True, file=sys.stderr
    ) as bar:
        while True:
            with db.transaction(factory) as session:
                batch = rotation.rewrap_batch(
                    session, admin.identity, admin.keypair, after=after, limit=batch_size
                )
            moved.update(batch.moved)
            unopened += batch.unopened
            after = batch.last_id
            bar.update(batch.seen)
            if batch.seen < batch_size:
                return moved, unopened


def _print_swept(result: rotation.Swept) -> None:
    short = result.key.short_id
    click.echo(f"Key {short}: {result.moved:,} wraps moved to the current key this run.")
    if result.swept and result.left == 0:
        click.echo(
            f"  Swept: nothing is wrapped to it; retire it: tipbox keys retire --key {short}"
        )
    elif result.swept:
        click.echo(f"  Swept, but {result.left:,} wraps do not open; see docs/keys.md.")
    else:
        click.echo(
            f"  It accepts commits until {_when(result.commits_until)}: run this again after "
            "that for the final sweep, then retire it."
        )


# --- retire -------------------------------------------------------------------------------


@click.command("retire")
@admin_option
@click.option("--key", "short_id", help="The retiring key's short id (default: every one).")
@click.pass_obj
def keys_retire(config: Config, admin_username: str, short_id: str | None) -> None:
    """Retire retiring keys with nothing left wrapped to them: their grants are deleted."""
    admin = _unlock(config, admin_username)
    refused = 0
    with _factory(config) as factory:
        with db.transaction(factory) as session:
            if short_id is None:
                keys = [e.key_id for e in rotation.retiring_keys(session, admin.identity)]
            else:
                keys = [rotation.find_retiring(session, admin.identity, short_id).key_id]
        if not keys:
            click.echo("No newsroom key is retiring.")
        for key_id in keys:
            try:
                with db.transaction(factory) as session:
                    retired = rotation.retire(
                        session,
                        admin.identity,
                        admin.keypair,
                        admin.journalist_id,
                        key_id,
                        _now(),
                        config.key_grace_seconds,
                    )
            except rotation.NotReady as exc:
                refused += 1
                click.secho(f"Not retired: {exc}", fg="yellow", err=True)
            else:
                click.echo(f"Retired key {retired.short_id}: its grants are deleted.")
    if refused < len(keys):
        _scrub(config)  # the deleted grants' old copies leave the WAL (or dead tuples)
    if refused:
        raise click.ClickException(f"{refused} key(s) could not be retired yet")


# --- recover ------------------------------------------------------------------------------


@click.command("recover")
@click.option(
    "--admin",
    "admin_username",
    prompt="Admin to restore (an admin's username, or a new one)",
    help="The admin account to give new credentials (a new admin for a new name).",
)
@click.option(
    "--new-recovery-key",
    "new_recovery_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    prompt="New recovery public key file (made offline by `tipbox keys recovery-new`)",
    help="The replacement recovery key's public key file.",
)
@click.pass_obj
def keys_recover(config: Config, admin_username: str, new_recovery_file: Path) -> None:
    """Restore an admin with the recovery secret when every admin passphrase is lost, then
    replace the recovery key."""
    new_recovery = _read_recovery_file(new_recovery_file)
    secret = click.prompt("Recovery secret (20 words)", hide_input=True)
    with _factory(config) as factory, db.transaction(factory) as session:
        identity = instance.check_identity_file(session, config.keys_dir)
        result = recovery_admin.recover(
            session, config, identity, secret, admin_username, new_recovery
        )
    verb = "New admin" if result.created else "Admin restored"
    click.echo(f"{verb} (shown once; write it down, then clear this screen):")
    _print_credentials(result.credentials)
    click.echo(f"Granted: {', '.join(result.granted)}")
    click.echo(f"The recovery key is now {result.recovery.fingerprint};")
    click.echo("the old one and its grants are deleted. Keep the new secret offline.")
    if result.missing:
        click.secho(
            "The old recovery key held no grant of the newsroom key(s) "
            f"{', '.join(result.missing)}: items wrapped only to them stay unreadable to "
            "this admin.",
            fg="yellow",
            err=True,
        )


def _read_recovery_file(path: Path) -> PublicKeys:
    try:
        return parse_recovery_public_file(path.read_text(encoding="utf-8"))
    except (Rejected, UnicodeDecodeError) as exc:
        raise click.ClickException(f"the recovery public key file is not valid: {exc}") from None


def _print_credentials(creds: Credentials) -> None:
    click.echo(f"  username:    {creds.username}")
    click.echo(f"  passphrase:  {creds.passphrase}")
    click.echo(f"  TOTP secret: {creds.totp_secret}")
    click.echo("  Scan this with an authenticator app:")
    segno.make(creds.totp_uri("tipbox"), error="m").terminal(out=sys.stdout, compact=True)
