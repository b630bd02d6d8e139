"""Build the source app's browser script into its static files (``make static``).

Writes into ``tipbox/source/static/vendor/`` (gitignored, never committed):

- ``source.js``: ``tipbox/source/js/submit.mjs`` bundled by esbuild with libsodium-wrappers
  and libsodium (its WebAssembly module embedded) into ONE ES module. A single
  ``<script type="module" src=... integrity="sha384-...">`` then protects every byte the
  page runs: there is no further import for an attacker to swap, and no import map (an
  inline script that the CSP would have to allow by hash). SRI is enforced on module
  scripts by Chromium and Firefox.
- ``selftest.json``: the known-answer vectors the page checks on load, cut from
  ``tests/vectors/``. Its SRI is compiled into ``source.js`` (the script fetches it with
  ``integrity``), so the script's own hash covers it too.
- ``manifest.json``: ``{"source.js": "sha384-...", "selftest.json": "sha384-..."}``.

The bundle must hold libsodium's ES module build, which runs only on WebAssembly: the
CommonJS build carries an asm.js fallback (``useBackupModule``) that the page must never
use, and the build refuses a bundle that contains it. It also refuses ``eval`` and
``new Function``, which the source CSP (``script-src 'self' 'wasm-unsafe-eval'``) forbids.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ENTRY = REPO / "tipbox/source/js/submit.mjs"
VECTORS = REPO / "tests/vectors"
DEFAULT_NODE_MODULES = REPO / "node_modules"
DEFAULT_DEST = REPO / "tipbox/source/static/vendor"

BUNDLE = "source.js"
SELFTEST = "selftest.json"
MANIFEST = "manifest.json"
# What older versions of this script wrote; removed so that nothing stale is served.
STALE = ("libsodium-wrappers.mjs", "libsodium.mjs")
SELFTEST_MAX_BYTES = 40_000
# The asm.js fallback of libsodium's CommonJS build, and code the source CSP refuses.
_FORBIDDEN = re.compile(r"useBackupModule|\beval\(|\bnew Function\b|\bFunction\(")

Case = dict[str, Any]


class VendorError(RuntimeError):
    """A tool or input is missing, or the bundle is not what the page may ship."""


def sri(data: bytes) -> str:
    """The Subresource Integrity value of ``data`` (SHA-384)."""
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode("ascii")


def _load(vectors: Path, name: str) -> Case:
    data: Case = json.loads((vectors / name).read_text(encoding="utf-8"))
    return data


def _named(cases: list[Case], name: str) -> Case:
    for case in cases:
        if case["name"] == name:
            return case
    raise VendorError(f"no vector named {name!r}")


def _pick(case: Case, *fields: str) -> Case:
    return {field: case[field] for field in fields}


def selftest_vectors(vectors: Path) -> Case:
    """The small subset of tests/vectors that the page checks on every load."""
    kdf = _load(vectors, "kdf.json")["valid"]
    keys = _load(vectors, "keys.json")["valid"]
    directory = _load(vectors, "directory.json")
    envelope = _load(vectors, "envelope.json")
    padme = _load(vectors, "padme.json")["valid"]
    message = _named(envelope["valid"], "message")
    invalid = [
        _named(envelope["invalid"], name)
        for name in ("only chunk tagged TAG_MESSAGE", "not padded", "sealed as a reply")
    ] + [next(c for c in envelope["invalid"] if c["check"] == "wrap.open")]
    return {
        "kdf": [
            # Ids as strings: 2^64 - 1 does not survive a JavaScript number.
            _pick(c, "key", "context", "length", "output") | {"id": str(c["id"])}
            for c in kdf
            if c["name"]
            in ("libsodium reference id 1 length 32", "tbcontn1 id 2", "largest subkey id")
        ],
        "keys": [
            _pick(c, "role", "seed", "key_id")
            for c in keys
            if c["kind"] == "keypair" and c["name"] in ("newsroom 1", "journalist 1")
        ],
        "directory": {
            "identity": directory["identity_ed25519_public"],
            "valid": _pick(_named(directory["valid"], "newsroom current"), "entry", "signature")
            | {"key_id": _named(directory["valid"], "newsroom current")["key_id"]},
            "invalid": _pick(
                _named(directory["invalid"], "flipped signature bit"),
                "entry",
                "signature",
                "check",
            ),
        },
        "padme": [c for c in padme if c["length"] in (0, 4097, 65537, 10 * 2**20)],
        "envelope": {
            "valid": _pick(
                message,
                "kind",
                "source_id",
                "item_id",
                "ad",
                "content_key",
                "meta",
                "meta_nonce",
                "sealed_meta",
                "blob",
                "plaintext",
            )
            | _pick(message["wraps"][0], "wrap", "recipient_secret"),
            "invalid": [{k: v for k, v in c.items() if k != "name"} for c in invalid],
        },
    }


def _run_esbuild(node_modules: Path, out: Path, selftest_sri: str, meta: Path) -> None:
    esbuild = node_modules / ".bin" / "esbuild"
    if not esbuild.exists():
        raise VendorError(f"{esbuild} is missing: run `npm ci` first")
    license_text = (node_modules / "libsodium" / "LICENSE").read_text(encoding="utf-8")
    banner = "/*! tipbox source.js: tipbox/source/js bundled with libsodium.js (ISC license)\n"
    banner += license_text.replace("*/", "* /").strip() + "\n*/"
    command = [
        str(esbuild),
        str(ENTRY),
        "--bundle",
        "--format=esm",
        "--platform=browser",
        "--target=es2020",
        "--minify",
        "--charset=ascii",
        "--legal-comments=none",
        f"--banner:js={banner}",
        f"--define:__TIPBOX_SELFTEST_SRI__={json.dumps(selftest_sri)}",
        f"--metafile={meta}",
        f"--outfile={out}",
        "--log-level=warning",
    ]
    # NODE_PATH lets esbuild find the packages of --node-modules wherever that folder is.
    env = os.environ | {"NODE_PATH": str(node_modules)}
    done = subprocess.run(  # noqa: S603 - fixed arguments, no shell
        command, capture_output=True, text=True, env=env, check=False, timeout=300
    )
    if done.returncode != 0:
        raise VendorError(f"esbuild failed:\n{done.stderr}")


def check_bundle(source: str, metafile: Case) -> None:
    """Refuse a bundle that imports anything, carries the asm.js fallback or needs eval."""
    for name, output in metafile["outputs"].items():
        if output.get("imports"):
            found = sorted(i["path"] for i in output["imports"])
            raise VendorError(f"{name} still imports {', '.join(found)}")
    inputs = set(metafile["inputs"])
    if not any(path.endswith("libsodium/dist/modules-esm/libsodium.mjs") for path in inputs):
        raise VendorError("the bundle does not hold libsodium's ES module (WebAssembly) build")
    found_forbidden = sorted(set(_FORBIDDEN.findall(source)))
    if found_forbidden:
        raise VendorError(f"the bundle contains {', '.join(found_forbidden)}")


def build(
    dest: Path = DEFAULT_DEST,
    *,
    node_modules: Path = DEFAULT_NODE_MODULES,
    vectors: Path = VECTORS,
) -> dict[str, str]:
    """Write ``source.js``, ``selftest.json`` and ``manifest.json`` into ``dest``."""
    selftest = json.dumps(selftest_vectors(vectors), sort_keys=True, separators=(",", ":"))
    selftest_bytes = selftest.encode("utf-8")
    if len(selftest_bytes) > SELFTEST_MAX_BYTES:
        raise VendorError(f"selftest.json is {len(selftest_bytes)} bytes: keep it small")
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        meta_path = Path(work) / "meta.json"
        out = Path(work) / BUNDLE
        _run_esbuild(node_modules, out, sri(selftest_bytes), meta_path)
        bundle = out.read_bytes()
        check_bundle(bundle.decode("utf-8"), json.loads(meta_path.read_text(encoding="utf-8")))
    manifest = {BUNDLE: sri(bundle), SELFTEST: sri(selftest_bytes)}
    (dest / SELFTEST).write_bytes(selftest_bytes)
    (dest / BUNDLE).write_bytes(bundle)
    for stale in STALE:
        (dest / stale).unlink(missing_ok=True)
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    """``python scripts/vendor_static.py [--node-modules DIR] [--dest DIR] [--print-selftest]``."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--node-modules", type=Path, default=DEFAULT_NODE_MODULES)
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    parser.add_argument(
        "--print-selftest", action="store_true", help="print selftest.json only (for tests)"
    )
    args = parser.parse_args(argv)
    if args.print_selftest:
        print(json.dumps(selftest_vectors(VECTORS), sort_keys=True))
        return 0
    try:
        manifest = build(args.dest, node_modules=args.node_modules)
    except (VendorError, OSError) as exc:
        print(f"vendor_static: {exc}", file=sys.stderr)
        return 1
    for name, integrity in manifest.items():
        size = (args.dest / name).stat().st_size
        print(f"{args.dest / name}  {size} bytes  {integrity}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
