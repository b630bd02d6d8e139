"""``make static``: one bundled module, its self-test vectors, and their SRI hashes.

How the bundle behaves in browsers is tested in tests/source/test_js_browser.py.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
from pathlib import Path
from types import ModuleType
from typing import Any

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


def _sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The vendor folder as ``make static`` writes it, in a temporary folder."""
    if not (NODE_MODULES / ".bin/esbuild").exists():
        if os.environ.get("TIPBOX_REQUIRE_NODE") == "1":
            pytest.fail("node_modules is missing (run `npm ci`) and TIPBOX_REQUIRE_NODE=1")
        pytest.skip("node_modules is missing: run `npm ci`")
    dest = tmp_path_factory.mktemp("vendor")
    # A copy of libsodium from before the bundle, which the build must remove.
    (dest / "libsodium.mjs").write_text("stale")
    manifest: dict[str, str] = vendor_static.build(dest)
    return dest, manifest


def test_manifest_gives_the_sri_of_each_file(built: tuple[Path, dict[str, str]]) -> None:
    dest, manifest = built
    assert json.loads((dest / "manifest.json").read_text()) == manifest
    assert set(manifest) == {"source.js", "selftest.json"}
    for name, integrity in manifest.items():
        assert integrity == _sri((dest / name).read_bytes())
    assert sorted(p.name for p in dest.iterdir()) == [
        "manifest.json",
        "selftest.json",
        "source.js",
    ]


def test_the_bundle_is_one_module_that_pins_its_selftest(
    built: tuple[Path, dict[str, str]],
) -> None:
    dest, manifest = built
    source = (dest / "source.js").read_text(encoding="ascii")
    # The script fetches selftest.json with this integrity: the script's hash covers both.
    assert json.dumps(manifest["selftest.json"]) in source
    assert source.startswith("/*! tipbox source.js")
    assert "ISC" in source.split("*/")[0]  # libsodium's licence notice travels with it
    # Under the source CSP: WebAssembly from embedded bytes, and no eval of any kind.
    assert "WebAssembly.instantiate" in source
    assert "eval(" not in source
    assert "new Function" not in source
    assert "useBackupModule" not in source  # the asm.js fallback of the CommonJS build
    assert len(source) < 600_000


def test_the_build_is_reproducible(built: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    assert vendor_static.build(tmp_path) == built[1]


def test_the_selftest_is_small_and_covers_each_part(built: tuple[Path, dict[str, str]]) -> None:
    dest, _ = built
    data = (dest / "selftest.json").read_bytes()
    assert len(data) < 40_000
    vectors = json.loads(data)
    assert set(vectors) == {"kdf", "keys", "directory", "padme", "envelope"}
    assert len(vectors["kdf"]) == 3
    assert {"18446744073709551615"} <= {c["id"] for c in vectors["kdf"]}
    assert len(vectors["keys"]) == 2
    assert vectors["directory"]["invalid"]["check"] == "entry.signature"
    assert len(vectors["padme"]) == 4
    checks = [c["check"] for c in vectors["envelope"]["invalid"]]
    assert checks == ["body.tag_final", "body.padded_length", "meta.authenticate", "wrap.open"]


def test_check_bundle_refuses_what_the_page_must_not_ship() -> None:
    inputs: dict[str, Any] = {"node_modules/libsodium/dist/modules-esm/libsodium.mjs": {}}
    ok: dict[str, Any] = {"inputs": inputs, "outputs": {"source.js": {"imports": []}}}
    vendor_static.check_bundle("export{};", ok)
    importing: dict[str, Any] = {
        "inputs": inputs,
        "outputs": {"source.js": {"imports": [{"path": "x.mjs"}]}},
    }
    cjs: dict[str, Any] = {
        "inputs": {"node_modules/libsodium/dist/modules/libsodium.js": {}},
        "outputs": {},
    }
    for source, metafile in [
        ("export{};", importing),
        ("export{};", cjs),
        ("M.useBackupModule=1", ok),
        ("eval(x)", ok),
        ("new Function('x')", ok),
    ]:
        with pytest.raises(vendor_static.VendorError):
            vendor_static.check_bundle(source, metafile)


def test_a_missing_esbuild_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(vendor_static.VendorError, match="npm ci"):
        vendor_static.build(tmp_path / "out", node_modules=tmp_path)
