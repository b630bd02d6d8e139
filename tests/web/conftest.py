"""Fixtures for the web tests: real app factories on a throwaway instance directory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

import journalist_ui
import tipbox.source
from tipbox.config import TEST_KDF, Config
from tipbox.db import make_engine, make_session_factory, transaction, upgrade
from tipbox.instance import init_instance

AppFactory = Callable[[Config], Flask]
FACTORIES: dict[str, AppFactory] = {
    "source": tipbox.source.create_app,
    "journalist": journalist_ui.create_app,
}


def initialised_config(data_dir: Path) -> Config:
    """A production-like config (not a demo) with an initialised instance in ``data_dir``.

    The source app refuses to start without one (its identity key must match keys/).
    """
    config = Config.for_data_dir(data_dir, journalist_kdf=TEST_KDF, codename_kdf=TEST_KDF)
    upgrade(config)
    engine = make_engine(config)
    try:
        with transaction(make_session_factory(engine)) as session:
            init_instance(session, config, name="Web test newsroom", admin_username="admin")
    finally:
        engine.dispose()
    return config


@pytest.fixture
def web_config(tmp_path: Path) -> Config:
    """A production-like config whose initialised instance lives in ``tmp_path``."""
    return initialised_config(tmp_path / "instance")


@pytest.fixture(params=sorted(FACTORIES))
def app_kind(request: pytest.FixtureRequest) -> str:
    """Each app in turn: ``"journalist"``, then ``"source"``."""
    kind: str = request.param
    return kind


@pytest.fixture
def app(app_kind: str, web_config: Config) -> Flask:
    """The ``app_kind`` app, built by its real factory."""
    return FACTORIES[app_kind](web_config)
