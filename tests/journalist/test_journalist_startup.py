"""The journalist app, like the source app, refuses to start unless ``keys/`` and the
database name the same identity key (DESIGN 4.1): every directory entry it trusts is
verified against that key, so a swapped database or key file must stop it cold."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

import journalist_ui
from journalist_ui.state import EXTENSION
from tipbox.config import Config
from tipbox.crypto.keys import Role, keypair_from_seed, new_seed, write_identity_files
from tipbox.instance import InitResult, init_instance
from tipbox.models import InstanceSettings
from tipbox.startup import StartupError


@pytest.fixture
def instance(db: Session, config: Config) -> InitResult:
    result = init_instance(db, config, name="Startup Desk", admin_username="admin")
    db.commit()
    return result


def test_the_app_starts_when_keys_and_database_agree(config: Config, instance: InitResult) -> None:
    app = journalist_ui.create_app(config)
    try:
        assert app.extensions[EXTENSION].identity == instance.identity
        assert app.test_client().get("/login").status_code == 200
    finally:
        app.extensions[EXTENSION].engine.dispose()


def _other_identity_in_database(db: Session, config: Config) -> None:
    other = keypair_from_seed(Role.IDENTITY, new_seed()).public
    assert other.ed25519 is not None
    db.execute(
        update(InstanceSettings).values(
            identity_x25519=other.x25519, identity_ed25519=other.ed25519
        )
    )
    db.commit()


def _other_identity_file(db: Session, config: Config) -> None:
    write_identity_files(config.keys_dir, keypair_from_seed(Role.IDENTITY, new_seed()).public)


def _tampered_identity_file(db: Session, config: Config) -> None:
    path = config.keys_dir / "identity.json"
    data = json.loads(path.read_text())
    data["x25519"] = "00" * 32
    path.write_text(json.dumps(data))


def _no_identity_file(db: Session, config: Config) -> None:
    (config.keys_dir / "identity.json").unlink()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_other_identity_in_database, "refusing to start"),
        (_other_identity_file, "refusing to start"),
        (_tampered_identity_file, "invalid"),
        (_no_identity_file, "no identity key"),
    ],
)
def test_a_disagreeing_or_missing_identity_stops_the_app(
    db: Session,
    config: Config,
    instance: InitResult,
    damage: Callable[[Session, Config], None],
    message: str,
) -> None:
    damage(db, config)
    with pytest.raises(StartupError, match=message):
        journalist_ui.create_app(config)


def test_an_uninitialised_database_stops_the_app(db: Session, config: Config) -> None:
    write_identity_files(config.keys_dir, keypair_from_seed(Role.IDENTITY, new_seed()).public)
    with pytest.raises(StartupError, match="tipbox init"):
        journalist_ui.create_app(config)
