"""``make static``: the vendored libsodium.js loads on its own and its hashes are right."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
NODE_MODULES = REPO / "node_modules"


def _load_script() -> ModuleType:
    # scripts/ is not a package on sys.path: load the file the Makefile runs.
    spec = importlib.util.spec_from_file_location(
        "vendor_static", REPO / "scripts/vendor_static.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


vendor_static = _load_script()
vendor = vendor_static.vendor


def _require_node_modules() -> None:
    if (NODE_MODULES / "libsodium-wrappers").is_dir():
        return
    if os.environ.get("TIPBOX_REQUIRE_NODE") == "1":
        pytest.fail("node_modules is missing (run `npm ci`) and TIPBOX_REQUIRE_NODE=1")
    pytest.skip("node_modules is missing: run `npm ci`")


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        if os.environ.get("TIPBOX_REQUIRE_NODE") == "1":
            pytest.fail("node is missing and TIPBOX_REQUIRE_NODE=1")
        pytest.skip("node is missing")
    return node


def test_manifest_hashes_match_the_files(tmp_path: Path) -> None:
    _require_node_modules()
    manifest = vendor(NODE_MODULES, tmp_path)
    on_disk = json.loads((tmp_path / "manifest.json").read_text())
    assert on_disk == manifest
    assert on_disk["entry"] == "libsodium-wrappers.mjs"
    assert set(on_disk["files"]) == {"libsodium-wrappers.mjs", "libsodium.mjs"}
    for name, entry in on_disk["files"].items():
        data = (tmp_path / name).read_bytes()
        digest = base64.b64encode(hashlib.sha384(data).digest()).decode()
        assert entry["integrity"] == f"sha384-{digest}"
        assert entry["bytes"] == len(data)
        assert entry["package"].endswith("@0.8.4")


def test_the_wrapper_imports_its_neighbour_not_a_package(tmp_path: Path) -> None:
    _require_node_modules()
    vendor(NODE_MODULES, tmp_path)
    wrapper = (tmp_path / "libsodium-wrappers.mjs").read_text()
    assert 'from"./libsodium.mjs"' in wrapper
    assert 'from"libsodium"' not in wrapper


def test_the_rewrite_refuses_an_unexpected_shape() -> None:
    with pytest.raises(vendor_static.VendorError):
        vendor_static.rewrite_wrapper_import("export default 1;")
    with pytest.raises(vendor_static.VendorError):
        vendor_static.rewrite_wrapper_import('import a from"libsodium";import b from"libsodium";')
    with pytest.raises(vendor_static.VendorError):
        vendor_static.check_no_bare_imports("x.mjs", 'import y from"other-package";')


def test_the_vendored_copy_runs_standalone(tmp_path: Path) -> None:
    """Outside node_modules (so no package resolution helps it), it computes BLAKE2b."""
    _require_node_modules()
    node = _node()
    vendor(NODE_MODULES, tmp_path / "vendor")
    script = (
        f"import s from {json.dumps((tmp_path / 'vendor/libsodium-wrappers.mjs').as_uri())};"
        "await s.ready;"
        "console.log(s.to_hex(s.crypto_generichash(32, s.from_string('tipbox'))));"
    )
    result = subprocess.run(
        [node, "--input-type=module", "-e", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == hashlib.blake2b(b"tipbox", digest_size=32).hexdigest()
