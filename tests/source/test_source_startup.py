"""The source app refuses to start unless keys/ and the database name the same identity.

Its trust anchor is the identity public key in ``keys/``, a file the source process cannot
write in production (DESIGN 4.1); the pages show its fingerprint and the browser script
checks the newsroom key against it. A database that names another identity means one of
the two was swapped: the app must not serve a single page then.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from tipbox.config import Config
from tipbox.crypto.keys import Role, keypair_from_seed, new_seed, write_identity_files
from tipbox.instance import InitResult, init_instance
from tipbox.models import InstanceSettings
from tipbox.source import StartupError, create_app
from tipbox.source.state import EXTENSION, script_integrity


@pytest.fixture
def instance(db: Session, config: Config) -> InitResult:
    result = init_instance(db, config, name="Startup Desk", admin_username="admin")
    db.commit()
    return result


def _start(config: Config) -> None:
    app = create_app(config)
    app.extensions[EXTENSION].engine.dispose()


def test_the_app_starts_when_keys_and_database_agree(config: Config, instance: InitResult) -> None:
    app = create_app(config)
    try:
        assert app.extensions[EXTENSION].identity == instance.identity
        page = app.test_client().get("/key").get_data(as_text=True)
        assert instance.identity.fingerprint in page
    finally:
        app.extensions[EXTENSION].engine.dispose()


def test_an_identity_changed_in_the_database_stops_the_app(
    db: Session, config: Config, instance: InitResult
) -> None:
    other = keypair_from_seed(Role.IDENTITY, new_seed()).public
    assert other.ed25519 is not None
    db.execute(
        update(InstanceSettings).values(
            identity_x25519=other.x25519, identity_ed25519=other.ed25519
        )
    )
    db.commit()
    with pytest.raises(StartupError, match="refusing to start") as refused:
        _start(config)
    assert instance.identity.fingerprint in str(refused.value)
    assert other.fingerprint in str(refused.value)


def test_a_replaced_identity_file_stops_the_app(config: Config, instance: InitResult) -> None:
    write_identity_files(config.keys_dir, keypair_from_seed(Role.IDENTITY, new_seed()).public)
    with pytest.raises(StartupError, match="refusing to start"):
        _start(config)


def test_a_tampered_identity_file_stops_the_app(config: Config, instance: InitResult) -> None:
    path = config.keys_dir / "identity.json"
    data = json.loads(path.read_text())
    data["fingerprint"] = data["fingerprint"].replace(data["fingerprint"][0], "0", 1)
    if data["fingerprint"] == instance.identity.fingerprint:
        data["fingerprint"] = data["fingerprint"].replace("0", "1", 1)
    path.write_text(json.dumps(data))
    with pytest.raises(StartupError, match="invalid"):
        _start(config)


def test_no_identity_file_stops_the_app(config: Config, instance: InitResult) -> None:
    (config.keys_dir / "identity.json").unlink()
    with pytest.raises(StartupError, match="no identity key"):
        _start(config)


def test_an_uninitialised_database_stops_the_app(db: Session, config: Config) -> None:
    write_identity_files(config.keys_dir, keypair_from_seed(Role.IDENTITY, new_seed()).public)
    with pytest.raises(StartupError, match="tipbox init"):
        _start(config)


def _manifest(directory: Path, content: object) -> Path:
    (directory / "vendor").mkdir()
    (directory / "vendor" / "manifest.json").write_text(json.dumps(content))
    return directory


@pytest.mark.parametrize(
    "content",
    [
        {"source.js": "sha384-abc", "selftest.json": "sha384-def"},
        {"files": {"source.js": {"integrity": "sha384-abc"}}},
    ],
)
def test_the_script_hash_comes_from_the_vendor_manifest(tmp_path: Path, content: object) -> None:
    assert script_integrity(_manifest(tmp_path, content)) == "sha384-abc"


@pytest.mark.parametrize(
    "content", [None, {"selftest.json": "sha384-def"}, {"source.js": "md5-abc"}, ["source.js"]]
)
def test_without_a_script_hash_the_pages_carry_no_script(
    tmp_path: Path, content: object, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path if content is None else _manifest(tmp_path, content)
    with caplog.at_level(logging.WARNING):
        assert script_integrity(directory) is None
    assert len(caplog.records) == 1
    assert "no script" in caplog.records[0].getMessage()
