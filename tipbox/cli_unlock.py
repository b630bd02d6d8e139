"""Unlocking an admin at the command line, for the commands that need an admin's keys.

``tipbox journalist …`` and ``tipbox keys rotate|rewrap|retire`` act with an admin's key
seed, exactly as the web app does: the admin types username, passphrase and a TOTP code
(the passphrase is prompted without echo, or read from standard input when that is not a
terminal, so that a script can pipe it). The check is ``journalist_auth.authenticate``:
same throttling, same refusal of a replayed code, same failure count as the web login.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import click

from tipbox.config import Config
from tipbox.crypto.keys import KeyPair, PublicKeys, Role, keypair_from_seed
from tipbox.db import make_engine, make_session_factory, transaction
from tipbox.instance import check_identity_file
from tipbox.journalist_auth import authenticate

FAILED = "not unlocked: wrong username, passphrase or code, a locked account, or not an admin"


@dataclass(frozen=True)
class UnlockedAdmin:
    """An admin who proved passphrase and TOTP code: their id, key pair and the identity."""

    journalist_id: int
    username: str
    identity: PublicKeys
    seed: bytes = field(repr=False)

    @property
    def keypair(self) -> KeyPair:
        """The admin's journalist key pair (made from the seed when asked for)."""
        return keypair_from_seed(Role.JOURNALIST, self.seed)


# The option every admin command takes: ``--admin NAME`` (prompted when missing).
admin_option = click.option(
    "--admin", "admin_username", prompt="Admin username", help="The admin who unlocks."
)


def unlock_admin(config: Config, username: str) -> UnlockedAdmin:
    """Prompt for the passphrase and a TOTP code and unlock ``username``, who must be an
    active admin; ``click.ClickException`` (one message for every failure) otherwise."""
    passphrase = click.prompt("Passphrase", hide_input=True)
    code = click.prompt("TOTP code")
    engine = make_engine(config)
    try:
        with transaction(make_session_factory(engine)) as db:
            found = authenticate(
                db, config, username, passphrase, code, datetime.now(UTC), via="cli"
            )
            if found is None or not found.row.is_admin:
                unlocked = None
            else:
                identity = check_identity_file(db, config.keys_dir)
                unlocked = UnlockedAdmin(found.row.id, found.row.username, identity, found.seed)
    finally:
        engine.dispose()
    if unlocked is None:
        raise click.ClickException(FAILED)
    return unlocked
