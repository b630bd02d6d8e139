"""Every Alembic revision, tested with data, in the manner of SecureDrop's migration tests.

Each revision ``R`` under ``tipbox/migrations/versions/`` has a module
``tests/migrations/migration_R.py`` defining two classes, each built with an ``Engine``:

- ``UpgradeTester``: ``load_data()`` runs at the revision before ``R`` and puts in rows
  that exercise the change; ``check_upgrade()`` runs after upgrading to ``R``.
- ``DowngradeTester``: ``load_data()`` runs at ``R``; ``check_downgrade()`` runs after
  downgrading to the revision before.

The testers use plain SQL or reflected tables, never ``tipbox.models``, which describes
only the newest schema. A meta-test fails when a revision has no such module.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from tipbox.config import Config
from tipbox.db import MIGRATIONS_DIR, current_revision, downgrade, revisions, upgrade
from tipbox.models import Base

HERE = Path(__file__).resolve().parent
REVISIONS = revisions()


def _tester_module(revision: str) -> ModuleType:
    path = HERE / f"migration_{revision}.py"
    spec = importlib.util.spec_from_file_location(f"migration_{revision}", path)
    assert spec is not None, f"no data test for {revision}"
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _previous(revision: str) -> str:
    down = ScriptDirectory(str(MIGRATIONS_DIR)).get_revision(revision).down_revision
    assert down is None or isinstance(down, str), "merge revisions need their own test"
    return down or "base"


def test_every_revision_has_a_data_test() -> None:
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    files = {p.resolve() for p in (MIGRATIONS_DIR / "versions").glob("*.py")}
    files.discard((MIGRATIONS_DIR / "versions" / "__init__.py").resolve())
    known = {Path(rev.path).resolve(): rev.revision for rev in script.walk_revisions()}
    # A file Alembic does not load as a revision would be silently skipped.
    assert files == set(known)
    assert REVISIONS
    assert REVISIONS[0] == "0001"
    testers = {p.stem.removeprefix("migration_") for p in HERE.glob("migration_*.py")}
    assert testers == set(known.values())
    for revision in known.values():
        module = _tester_module(revision)
        assert hasattr(module, "UpgradeTester")
        assert hasattr(module, "DowngradeTester")


def test_history_is_linear() -> None:
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    assert len(script.get_heads()) == 1
    assert len(script.get_bases()) == 1


@pytest.mark.parametrize("revision", REVISIONS)
def test_upgrade_with_data(revision: str, config: Config, empty_engine: Engine) -> None:
    previous = _previous(revision)
    if previous != "base":
        upgrade(config, previous)
    tester = _tester_module(revision).UpgradeTester(empty_engine)
    tester.load_data()
    upgrade(config, revision)
    assert current_revision(config) == revision
    tester.check_upgrade()


@pytest.mark.parametrize("revision", REVISIONS)
def test_downgrade_with_data(revision: str, config: Config, empty_engine: Engine) -> None:
    upgrade(config, revision)
    tester = _tester_module(revision).DowngradeTester(empty_engine)
    tester.load_data()
    previous = _previous(revision)
    downgrade(config, previous)
    assert current_revision(config) == (None if previous == "base" else previous)
    tester.check_downgrade()


def test_down_and_up_again_matches_models(config: Config, empty_engine: Engine) -> None:
    upgrade(config)
    downgrade(config, "base")
    assert set(inspect(empty_engine).get_table_names()) <= {"alembic_version"}
    upgrade(config)
    with empty_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
