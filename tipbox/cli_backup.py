"""``tipbox backup FILE`` and ``tipbox restore FILE``: one signed archive (``tipbox.backup``).

``backup`` is run by an admin, who unlocks with passphrase and TOTP code: the identity
key, opened from the admin's grant, signs the archive (and seals the onion service keys
``--onion-dir`` names). ``restore`` needs no account (the target is empty): the operator
names the identity key they trust, as the key file kept from ``tipbox init`` or its
fingerprint, and nothing is loaded unless the archive is signed by it. Putting onion keys
back (``--onion-dir``) needs the identity seed, so an admin of the restored instance
unlocks for it once the database is back. docs/backup.md is the operator's guide.
"""

from __future__ import annotations

from pathlib import Path

import click

from tipbox import keyring
from tipbox.backup import BackupRefused, record_backup, write_backup
from tipbox.cli_unlock import UnlockedAdmin, admin_option, unlock_admin
from tipbox.config import Config
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import KeyPair, Role, parse_identity_file
from tipbox.db import instance_transaction, make_engine
from tipbox.restore import (
    TrustedIdentity,
    archived_onion_services,
    record_onion_restore,
    restore_backup,
    restore_onion_keys,
)
from tipbox.storage import blob_store_for
from tipbox.web.app import write_secret_keys


def register(group: click.Group) -> None:
    """Add ``backup`` and ``restore`` to the ``tipbox`` group."""
    for command in (backup_command, restore_command):
        group.add_command(command)


def _config(ctx: click.Context) -> Config:
    config = ctx.find_object(Config)
    assert config is not None  # the `tipbox` group puts it there
    return config


ONION_DIR_HELP = (
    "An onion service's Tor directory (HiddenServiceDir, or a copy of it), repeatable; the "
    "directory's name names the service (tipbox-source, tipbox-journalist)."
)


def _identity_keypair(config: Config, admin: UnlockedAdmin) -> KeyPair:
    """The identity key pair, opened from the unlocked admin's grant."""
    with instance_transaction(config, read_only=True) as db:
        return keyring.granted_keypair(
            db, admin.identity, admin.keypair, Role.IDENTITY, admin.identity.key_id
        )


@click.command("backup")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--onion-dir",
    "onion_dirs",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help=ONION_DIR_HELP + " Its secret key goes in sealed to the identity key.",
)
@admin_option
@click.pass_context
def backup_command(
    ctx: click.Context, out: Path, onion_dirs: tuple[Path, ...], admin_username: str
) -> None:
    """Write a signed archive of the database and the blob store to OUT."""
    config = _config(ctx)
    admin = unlock_admin(config, admin_username)
    engine = make_engine(config)
    try:
        identity = _identity_keypair(config, admin)
        result = write_backup(engine, blob_store_for(config), identity, out, onion_dirs)
        record_backup(engine, admin.journalist_id, result)
    except (BackupRefused, Rejected, OSError) as exc:
        raise click.ClickException(f"backup refused: {exc}") from None
    finally:
        engine.dispose()
    click.echo(
        f"Wrote {result.path}: {result.rows} rows, {result.blobs} blobs, {result.size} bytes,"
        f" signed by identity key {admin.identity.fingerprint}."
    )
    if result.onion_services:
        click.echo(
            f"Onion service keys, sealed to the identity key: {', '.join(result.onion_services)}."
        )


@click.command("restore")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--identity",
    "identity_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The identity.json kept from the instance (keys/identity.json).",
)
@click.option("--fingerprint", help="The instance's identity fingerprint, as published.")
@click.option(
    "--onion-dir",
    "onion_dirs",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help=ONION_DIR_HELP + " Its key is put back there; needs --admin.",
)
@click.option(
    "--admin",
    "admin_username",
    help="With --onion-dir: the admin of the restored instance who unlocks the identity key.",
)
@click.option(
    "--onion-only",
    is_flag=True,
    help="Only put the onion keys back (the database was restored from ARCHIVE already).",
)
@click.pass_context
def restore_command(
    ctx: click.Context,
    archive: Path,
    identity_file: Path | None,
    fingerprint: str | None,
    onion_dirs: tuple[Path, ...],
    admin_username: str | None,
    onion_only: bool,
) -> None:
    """Verify ARCHIVE against the instance's identity key, then restore it into an empty
    database and blob directory; with --onion-dir, then put the onion service keys back."""
    if (identity_file is None) == (fingerprint is None):
        raise click.UsageError("give exactly one of --identity FILE and --fingerprint TEXT")
    if (onion_dirs or onion_only) and not admin_username:
        raise click.UsageError("--onion-dir needs --admin: the identity key opens onion keys")
    if onion_only and not onion_dirs:
        raise click.UsageError("--onion-only needs at least one --onion-dir")
    config = _config(ctx)
    try:
        trusted = TrustedIdentity(fingerprint=fingerprint)
        if identity_file is not None:
            public = parse_identity_file(identity_file.read_text(encoding="utf-8"))
            trusted = TrustedIdentity(public=public)
    except (Rejected, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{identity_file}: {exc}") from None
    if onion_dirs:
        _check_onion_dirs(archive, trusted, onion_dirs)
    if not onion_only:
        _restore_database(config, archive, trusted)
    if onion_dirs:
        assert admin_username is not None
        _restore_onion(config, archive, trusted, onion_dirs, admin_username, onion_only)


def _check_onion_dirs(archive: Path, trusted: TrustedIdentity, dirs: tuple[Path, ...]) -> None:
    # Before anything is restored: every directory named must have a service archived.
    try:
        archived = set(archived_onion_services(archive, trusted))
    except (BackupRefused, OSError) as exc:
        raise click.ClickException(f"restore refused, nothing restored: {exc}") from None
    for path in dirs:
        if not path.exists() and not path.parent.is_dir():
            raise click.ClickException(
                f"restore refused, nothing restored: {path.parent} does not exist: make it "
                "first (mode 0700)"
            )
        if path.name not in archived:
            names = ", ".join(sorted(archived)) or "none"
            raise click.ClickException(
                f"restore refused, nothing restored: the archive holds no key of onion "
                f"service {path.name!r} (it holds: {names})"
            )


def _restore_database(config: Config, archive: Path, trusted: TrustedIdentity) -> None:
    engine = make_engine(config)
    try:
        result = restore_backup(config, engine, archive, trusted)
    except (BackupRefused, OSError) as exc:
        raise click.ClickException(f"restore refused, nothing restored: {exc}") from None
    finally:
        engine.dispose()
    # As `tipbox init` does: the apps' Flask secrets are not in the archive.
    write_secret_keys(config)
    click.echo(
        f"Restored the backup of {result.created_on}: {result.rows} rows, {result.blobs} blobs;"
        f" directory verified against identity key {result.identity.fingerprint}."
    )


def _restore_onion(
    config: Config,
    archive: Path,
    trusted: TrustedIdentity,
    dirs: tuple[Path, ...],
    admin_username: str,
    onion_only: bool,
) -> None:
    again = f"tipbox restore {archive} --onion-only --admin {admin_username} " + " ".join(
        f"--onion-dir {path}" for path in dirs
    )
    if not onion_only:
        click.echo("Now the onion service keys: the admin unlocks the identity key.")
    try:
        admin = unlock_admin(config, admin_username)
        identity = _identity_keypair(config, admin)
        restored = restore_onion_keys(archive, trusted, identity, dirs)
    except (click.ClickException, BackupRefused, Rejected, OSError) as exc:
        message = exc.message if isinstance(exc, click.ClickException) else str(exc)
        done = "" if onion_only else "the database and blobs are restored, but "
        raise click.ClickException(
            f"{done}no onion service key was restored: {message}. To try again: {again}"
        ) from None
    with instance_transaction(config) as session:
        record_onion_restore(session, admin.journalist_id, restored)
    for item in restored:
        click.echo(f"Onion service {item.service}: {item.address} (in {item.directory})")
    click.echo("Compare each address with the one you published before you start Tor.")
