"""The browser's envelope code (tipbox/source/js) against the vectors and against Python.

``node --test tests/js/`` runs every case of kdf.json, keys.json, directory.json,
envelope.json and padme.json through the JavaScript implementation; then items that the
JavaScript code encrypts with fixed inputs are opened here by ``tipbox.crypto.envelope``
(the other direction is the vectors: Python made them, JavaScript reads them).

Skipped when node or node_modules is missing, unless ``TIPBOX_REQUIRE_NODE=1`` (CI), which
makes that a failure.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from nacl.bindings import crypto_scalarmult_base

from tipbox.crypto import envelope as env
from tipbox.crypto.envelope import Kind, Meta

REPO = Path(__file__).resolve().parents[2]
NODE_MODULES = REPO / "node_modules"
# A fixed newsroom key for the JavaScript side to encrypt to.
NEWSROOM_SECRET = bytes(range(32))
NEWSROOM_PUBLIC = crypto_scalarmult_base(NEWSROOM_SECRET)


def _missing(what: str) -> None:
    if os.environ.get("TIPBOX_REQUIRE_NODE") == "1":
        pytest.fail(f"{what} is missing and TIPBOX_REQUIRE_NODE=1")
    pytest.skip(f"{what} is missing")


@pytest.fixture(scope="module")
def node() -> str:
    binary = shutil.which("node")
    if binary is None:
        _missing("node")
    if not (NODE_MODULES / "libsodium-wrappers").is_dir():
        _missing("node_modules (run `npm ci`)")
    assert binary is not None
    return binary


def _run(node: str, *args: str) -> subprocess.CompletedProcess[str]:
    # The node helpers print selftest.json with this interpreter (tests/js/selftest_vectors.mjs).
    environ = os.environ | {"TIPBOX_PYTHON": sys.executable}
    return subprocess.run(
        [node, *args],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_node_suite_passes_every_vector(node: str) -> None:
    done = _run(node, "--test", "--test-reporter=dot", "tests/js/")
    assert done.returncode == 0, (done.stdout[-4000:], done.stderr[-4000:])


@pytest.fixture(scope="module")
def made_by_js(node: str) -> dict[str, Any]:
    done = _run(node, "tests/js/interop.mjs", NEWSROOM_PUBLIC.hex())
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_js_items_open_in_python(made_by_js: dict[str, Any]) -> None:
    manifest = json.loads(made_by_js["manifest"])
    assert manifest["version"] == 1
    source_id = bytes.fromhex(manifest["source_id"])
    assert len(manifest["items"]) == 2
    for index, item in enumerate(manifest["items"]):
        assert list(item) == ["item_id", "kind", "key_id", "sealed_meta", "wrap", "part"]
        assert item["part"] == f"blob{index}"
        assert item["key_id"] == "ab" * 16
        kind = Kind(item["kind"])
        ad = env.additional_data(kind, source_id, bytes.fromhex(item["item_id"]))
        wrap = base64.b64decode(item["wrap"], validate=True)
        sealed_meta = base64.b64decode(item["sealed_meta"], validate=True)
        assert (len(wrap), len(sealed_meta)) == (env.WRAP_BYTES, env.SEALED_META_BYTES)
        key = env.unwrap_key(wrap, NEWSROOM_SECRET)
        meta = env.open_meta(key, ad, sealed_meta)
        blob = bytes.fromhex(made_by_js["blobs"][index])
        assert env.padded_length_of_blob(len(blob)) == env.padded_length(meta.size)
        content = b"".join(env.decrypt_body(key, ad, io.BytesIO(blob), meta.size))
        assert content.hex() == made_by_js["contents"][index]
        if kind == Kind.MESSAGE:
            assert meta == Meta("", env.TEXT_MEDIA_TYPE, len(content))
            assert content.decode("utf-8").startswith("Здравствуйте!")
        else:
            assert meta == Meta("документ.pdf", "application/pdf", 200 * 1024)
            assert len(blob) == env.blob_length(200 * 1024)  # four chunks


def test_js_metas_equal_python_byte_for_byte(made_by_js: dict[str, Any]) -> None:
    """Same key, nonce and fields: the sealed metas are identical, long names included."""
    for case in made_by_js["metas"]:
        key, ad = bytes.fromhex(case["content_key"]), bytes.fromhex(case["ad"])
        meta = Meta(case["name"], case["media_type"], case["size"])
        expected = env.seal_meta(key, ad, meta, bytes.fromhex(case["nonce"]))
        assert case["sealed_meta"] == expected.hex(), case["name"][:40]
        opened = env.open_meta(key, ad, expected)
        assert len(opened.name.encode()) <= 1012 - len(case["media_type"])
