"""The browser's libsodium.js agrees with the Python side on derivations and key formats.

Runs Node with ``node_modules/libsodium-wrappers`` (the build the source page ships) over
``tests/vectors/kdf.json`` (``crypto_kdf_derive_from_key`` itself, which PyNaCl lacks),
``keys.json`` (key pairs, key ids) and the signatures of ``directory.json``. Skipped only
when ``node_modules`` is absent and ``TIPBOX_REQUIRE_NODE`` is not ``1``; a missing
``node`` binary with ``node_modules`` present is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors"
SODIUM = ROOT / "node_modules" / "libsodium-wrappers"

# An independent implementation of sections 2 and 3 in the browser's library: it shares
# only the vector files with the Python code.
SCRIPT = r"""
const sodium = require(process.argv[1]);
const chunks = [];
process.stdin.on("data", (d) => chunks.push(d));
process.stdin.on("end", async () => {
  await sodium.ready;
  const input = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  const hex = sodium.to_hex;
  const unhex = sodium.from_hex;
  const concat = (...parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  };
  const derive = (len, id, ctx, key) => sodium.crypto_kdf_derive_from_key(len, id, ctx, key);
  // role -> [context, X25519 subkey id, Ed25519 subkey id or 0]
  const table = {
    1: ["tbidnty1", 2, 1], 2: ["tbnwsrm1", 1, 0], 3: ["tbjrnls1", 1, 2],
    4: ["tbrecov1", 1, 0], 5: ["tbsourc1", 1, 0], 6: ["tbmetad1", 1, 0],
  };
  const kdf = input.kdf.map((c) => hex(derive(c.length, BigInt(c.id), c.context, unhex(c.key))));
  const keys = input.keys.map((c) => {
    const seed = unhex(c.seed);
    const [ctx, xid, edid] = table[c.role];
    const xsk = derive(32, xid, ctx, seed);
    const xpk = sodium.crypto_scalarmult_base(xsk);
    const edpk = edid
      ? sodium.crypto_sign_seed_keypair(derive(32, edid, ctx, seed)).publicKey
      : new Uint8Array(32);
    const pubkeys = concat(Uint8Array.of(c.role), xpk, edpk);
    const tag = sodium.from_string("tipbox.key-fingerprint.v1");
    const fp = sodium.crypto_generichash(32, concat(tag, Uint8Array.of(0), pubkeys));
    return {
      x25519_secret: hex(xsk),
      x25519_public: hex(xpk),
      ed25519_public: edid ? hex(edpk) : null,
      key_id: hex(fp.subarray(0, 16)),
    };
  });
  const verify = (c) => {
    try {
      return sodium.crypto_sign_verify_detached(
        unhex(c.signature), unhex(c.entry), unhex(input.identity));
    } catch (e) {
      return false;
    }
  };
  const directory = input.directory.map(verify);
  process.stdout.write(JSON.stringify({ kdf, keys, directory }));
});
"""


def load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def node() -> str:
    if not SODIUM.is_dir():
        if os.environ.get("TIPBOX_REQUIRE_NODE") == "1":
            pytest.fail("node_modules/libsodium-wrappers is missing and TIPBOX_REQUIRE_NODE=1")
        pytest.skip("node_modules/libsodium-wrappers is not installed (npm ci)")
    binary = shutil.which("node")
    if binary is None:
        pytest.fail("node_modules is installed but the node binary is not on PATH")
    return binary


@pytest.fixture(scope="module")
def results(node: str) -> dict[str, Any]:
    kdf = load("kdf.json")["valid"]
    keys = [c for c in load("keys.json")["valid"] if c["kind"] == "keypair"]
    directory = load("directory.json")
    sig_cases = directory["valid"] + [
        c for c in directory["invalid"] if c["check"] == "entry.signature"
    ]
    request = {
        # Ids go as strings: 2**64 - 1 does not survive a JavaScript number.
        "kdf": [c | {"id": str(c["id"])} for c in kdf],
        "keys": keys,
        "identity": directory["identity_ed25519_public"],
        "directory": sig_cases,
    }
    done = subprocess.run(
        [node, "-e", SCRIPT, str(SODIUM)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    out["_cases"] = {"kdf": kdf, "keys": keys, "directory": sig_cases}
    return out


def test_kdf_matches_libsodium_crypto_kdf_derive_from_key(results: dict[str, Any]) -> None:
    cases = results["_cases"]["kdf"]
    assert len(results["kdf"]) == len(cases) >= 12
    for case, output in zip(cases, results["kdf"], strict=True):
        assert output == case["output"], case["name"]


def test_libsodium_reference_case_is_included(results: dict[str, Any]) -> None:
    reference = [
        c
        for c in results["_cases"]["kdf"]
        if c["key"] == bytes(range(32)).hex() and c["context"] == "KDF test"
    ]
    assert {(c["id"], c["length"]) for c in reference} == {
        (i, n) for i in range(4) for n in (16, 32, 64)
    }
    one = next(c for c in reference if c["id"] == 1 and c["length"] == 32)
    assert one["output"] == "13fea52bb8cba063f3ed93de27ed07e06d8c6367474e6ae4c9282913ac3c3a03"


def test_key_pairs_and_key_ids_match_libsodium_js(results: dict[str, Any]) -> None:
    cases = results["_cases"]["keys"]
    assert {c["role"] for c in cases} == {1, 2, 3, 4, 5, 6}
    for case, output in zip(cases, results["keys"], strict=True):
        for name in ("x25519_secret", "x25519_public", "ed25519_public", "key_id"):
            assert output[name] == case[name], (case["name"], name)


def test_directory_signatures_verify_in_libsodium_js(results: dict[str, Any]) -> None:
    cases = results["_cases"]["directory"]
    for case, verified in zip(cases, results["directory"], strict=True):
        assert verified is ("check" not in case), case["name"]
