"""Fixtures for the web tests: real app factories on a throwaway instance directory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

import journalist_ui
import tipbox.source
from tipbox.config import Config

AppFactory = Callable[[Config], Flask]
FACTORIES: dict[str, AppFactory] = {
    "source": tipbox.source.create_app,
    "journalist": journalist_ui.create_app,
}


@pytest.fixture
def web_config(tmp_path: Path) -> Config:
    """A production-like config (not a demo) whose instance lives in ``tmp_path``."""
    return Config.for_data_dir(tmp_path / "instance")


@pytest.fixture(params=sorted(FACTORIES))
def app_kind(request: pytest.FixtureRequest) -> str:
    """Each app in turn: ``"journalist"``, then ``"source"``."""
    kind: str = request.param
    return kind


@pytest.fixture
def app(app_kind: str, web_config: Config) -> Flask:
    """The ``app_kind`` app, built by its real factory."""
    return FACTORIES[app_kind](web_config)
