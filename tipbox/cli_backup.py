"""``tipbox backup FILE`` and ``tipbox restore FILE``: one signed archive (``tipbox.backup``).

``backup`` is run by an admin, who unlocks with passphrase and TOTP code: the identity
key, opened from the admin's grant, signs the archive. ``restore`` needs no account (the
target is empty): the operator names the identity key they trust, as the key file kept
from ``tipbox init`` or its fingerprint, and nothing is loaded unless the archive is
signed by it. docs/backup.md is the operator's guide.
"""

from __future__ import annotations

from pathlib import Path

import click

from tipbox import keyring
from tipbox.backup import BackupRefused, TrustedIdentity, restore_backup, write_backup
from tipbox.cli_unlock import admin_option, unlock_admin
from tipbox.config import Config
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import Role, parse_identity_file
from tipbox.db import make_engine, make_session_factory, transaction
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


@click.command("backup")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@admin_option
@click.pass_context
def backup_command(ctx: click.Context, out: Path, admin_username: str) -> None:
    """Write a signed archive of the database and the blob store to OUT."""
    config = _config(ctx)
    admin = unlock_admin(config, admin_username)
    engine = make_engine(config)
    try:
        with transaction(make_session_factory(engine, read_only=True)) as db:
            identity = keyring.granted_keypair(
                db, admin.identity, admin.keypair, Role.IDENTITY, admin.identity.key_id
            )
        result = write_backup(engine, blob_store_for(config), identity, out)
    except (BackupRefused, Rejected, OSError) as exc:
        raise click.ClickException(f"backup refused: {exc}") from None
    finally:
        engine.dispose()
    click.echo(
        f"Wrote {result.path}: {result.rows} rows, {result.blobs} blobs, {result.size} bytes,"
        f" signed by identity key {admin.identity.fingerprint}."
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
@click.pass_context
def restore_command(
    ctx: click.Context, archive: Path, identity_file: Path | None, fingerprint: str | None
) -> None:
    """Verify ARCHIVE against the instance's identity key, then restore it into an empty
    database and blob directory."""
    if (identity_file is None) == (fingerprint is None):
        raise click.UsageError("give exactly one of --identity FILE and --fingerprint TEXT")
    config = _config(ctx)
    try:
        trusted = TrustedIdentity(fingerprint=fingerprint)
        if identity_file is not None:
            public = parse_identity_file(identity_file.read_text(encoding="utf-8"))
            trusted = TrustedIdentity(public=public)
    except (Rejected, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{identity_file}: {exc}") from None
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
