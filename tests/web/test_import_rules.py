"""The import rules in ``.importlinter`` hold, and would catch a leak if one were added.

Each case copies the Python sources of ``tipbox`` and ``journalist_ui`` to a temporary
tree, adds one offending import, and runs the real ``lint-imports`` on the copy in a
subprocess (the pytest process has the real packages imported, and import-linter finds
packages through ``sys.path``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / ".importlinter"
BOUNDARY = "tipbox.source imports no journalist or private-key module"
FLOORS = "Floors: entry points > web apps > domain"

# DESIGN section 3: what tipbox.source may never import, directly or indirectly.
PRIVATE_SIDE = [
    "journalist_ui",
    "tipbox.keyring",
    "tipbox.conversations",
    "tipbox.crypto.identity",
    "tipbox.crypto.grants",
    "tipbox.crypto.journalist",
    "tipbox.crypto.recovery",
]


def _lint_imports_bin() -> str:
    found = Path(sys.executable).parent / "lint-imports"
    if found.exists():
        return str(found)
    which = shutil.which("lint-imports")
    assert which is not None, "import-linter is not installed"
    return which


def _copy_tree(dest: Path) -> Path:
    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = {"__pycache__", "static", "templates", "migrations", "wordlists"}
        return {
            name
            for name in names
            if name in skipped or not (name.endswith(".py") or (Path(directory) / name).is_dir())
        }

    for package in ("tipbox", "journalist_ui"):
        shutil.copytree(REPO / package, dest / package, ignore=ignore)
    shutil.copy(CONFIG, dest / ".importlinter")
    return dest


def _module_path(root: Path, module: str) -> Path:
    parts = module.split(".")
    package_dir = root.joinpath(*parts)
    if package_dir.is_dir():
        return package_dir / "__init__.py"
    return root.joinpath(*parts[:-1]) / f"{parts[-1]}.py"


def _ensure_module(root: Path, module: str) -> None:
    """Create ``module`` in the copy if it does not exist yet (an optional layer)."""
    path = _module_path(root, module)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text('"""Stand-in for a module that has not landed yet."""\n')


def _add_import(root: Path, importer: str, imported: str) -> None:
    """Make ``importer`` import ``imported``, creating ``importer`` if it does not exist."""
    path = _module_path(root, importer)
    path.parent.mkdir(parents=True, exist_ok=True)
    before = path.read_text() if path.exists() else ""
    path.write_text(f"{before}\nimport {imported}  # added by the test\n")


def _run(root: Path) -> subprocess.CompletedProcess[str]:
    env = {
        key: value for key, value in os.environ.items() if key not in {"PYTHONPATH", "PYTHONHOME"}
    }
    # The copy first on sys.path, so its packages win over an installed tipbox.
    env["PYTHONPATH"] = str(root)
    return subprocess.run(
        [_lint_imports_bin(), "--config", str(root / ".importlinter"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _broken(result: subprocess.CompletedProcess[str], contract: str) -> bool:
    lines = " ".join(result.stdout.split())
    return result.returncode == 1 and f"{contract}" in lines and "BROKEN" in lines


def test_the_repository_keeps_every_contract() -> None:
    result = _run(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_unmodified_copy_keeps_every_contract(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    for module in PRIVATE_SIDE:
        _ensure_module(root, module)
    result = _run(root)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("forbidden", PRIVATE_SIDE)
def test_source_importing_the_private_side_breaks_the_boundary(
    tmp_path: Path, forbidden: str
) -> None:
    root = _copy_tree(tmp_path)
    _ensure_module(root, forbidden)
    _add_import(root, "tipbox.source.leak", forbidden)
    result = _run(root)
    assert _broken(result, BOUNDARY), result.stdout + result.stderr
    assert "tipbox.source.leak" in result.stdout
    assert forbidden in result.stdout


def test_an_indirect_import_breaks_the_boundary_too(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    # tipbox.source -> tipbox.helpers (allowed on its own) -> tipbox.crypto.grants
    _add_import(root, "tipbox.helpers", "tipbox.crypto.grants")
    _add_import(root, "tipbox.source.leak", "tipbox.helpers")
    result = _run(root)
    assert _broken(result, BOUNDARY), result.stdout + result.stderr
    assert "tipbox.helpers" in result.stdout


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("tipbox.crypto.upward", "tipbox.db"),
        ("tipbox.web.upward", "tipbox.source"),
        ("tipbox.models", "tipbox.serve"),
        ("tipbox.db", "tipbox.sessions"),
        ("journalist_ui.upward", "tipbox.source"),
        ("tipbox.source.upward", "journalist_ui"),
    ],
)
def test_importing_from_a_higher_floor_breaks_the_floors(
    tmp_path: Path, importer: str, imported: str
) -> None:
    root = _copy_tree(tmp_path)
    _ensure_module(root, imported)
    _add_import(root, importer, imported)
    result = _run(root)
    assert _broken(result, FLOORS), result.stdout + result.stderr
