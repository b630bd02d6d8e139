"""An initialised instance opened as its admin: the setup the domain tests share."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from tipbox import directory, instance, keyring, sources
from tipbox.accounts import unlock_journalist
from tipbox.config import Config
from tipbox.crypto.keys import KeyPair, PublicKeys, Role, keypair_from_seed
from tipbox.models import Journalist
from tipbox.sources import NewSource


@dataclass(frozen=True)
class OpenedInstance:
    """The identity and newsroom keys from the admin's grants, the admin, one source."""

    identity: PublicKeys
    identity_keys: KeyPair
    newsroom: KeyPair
    admin: Journalist
    admin_keys: KeyPair
    source: NewSource


def open_instance(db: Session, config: Config) -> OpenedInstance:
    """Initialise an instance, unlock its admin, open both granted seeds, add a source."""
    result = instance.init_instance(db, config, name="Test", admin_username="admin")
    db.commit()
    identity = directory.identity_public(db)
    admin = db.scalars(select(Journalist)).one()
    unlocked = unlock_journalist(db, identity, admin, result.admin.passphrase)
    newsroom_seed = keyring.granted_seed(
        db, identity, unlocked.keypair, Role.NEWSROOM, result.newsroom.key_id
    )
    identity_seed = keyring.granted_seed(
        db, identity, unlocked.keypair, Role.IDENTITY, identity.key_id
    )
    source = sources.create_source(db)
    db.commit()
    return OpenedInstance(
        identity,
        keypair_from_seed(Role.IDENTITY, identity_seed),
        keypair_from_seed(Role.NEWSROOM, newsroom_seed),
        admin,
        unlocked.keypair,
        source,
    )
