"""Copy libsodium.js's ES module build into the source app's static files (``make static``).

Two files make the build: ``libsodium-wrappers.mjs`` (the API) imports ``libsodium.mjs``
(the WebAssembly module, embedded). The wrapper imports it by the bare name
``"libsodium"``, which a browser resolves only through an import map's ``imports``; the
copy imports ``"./libsodium.mjs"`` instead, so that the pair loads from any folder with
no mapping at all. Nothing else changes.

``manifest.json`` beside the copies gives each file's Subresource Integrity hash (SHA-384)
over the bytes served. How a page must use them (checked in Chromium 156 and Firefox ESR
153 on this project's machines):

- ``<link rel="modulepreload" integrity=...>`` is NOT enough: when the hash does not match,
  the preload is blocked, but a later ``import`` of the same URL fetches it again without
  any check, and runs it.
- An import map's ``"integrity"`` table is enforced for every import of the listed URLs,
  static imports inside the wrapper included, in both browsers::

      <script type="importmap">{"imports": {}, "integrity": {
        "/static/vendor/libsodium-wrappers.mjs": "sha384-...",
        "/static/vendor/libsodium.mjs": "sha384-..."}}</script>

  An import map is an inline script, so the CSP must then allow exactly its hash
  (``script-src 'self' 'wasm-unsafe-eval' 'sha256-<hash of the map's text>'``); the text
  is fixed by this manifest, so the hash can be computed once when the app starts.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WRAPPERS = Path("libsodium-wrappers/dist/modules-esm/libsodium-wrappers.mjs")
LIBSODIUM = Path("libsodium/dist/modules-esm/libsodium.mjs")
DEFAULT_DEST = REPO / "tipbox/source/static/vendor"

_BARE_IMPORT = re.compile(r"""\bfrom\s*(["'])libsodium\1""")
# Any import specifier that is not relative: the browser could not load it.
_ANY_BARE = re.compile(r"""\b(?:from|import)\s*\(?\s*(["'])(?![./])([^"']+)\1""")


class VendorError(RuntimeError):
    """The npm packages are missing or not shaped as this script expects."""


def sri(data: bytes) -> str:
    """The Subresource Integrity value of ``data`` (SHA-384)."""
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode("ascii")


def _package_version(node_modules: Path, name: str) -> str:
    meta = json.loads((node_modules / name / "package.json").read_text(encoding="utf-8"))
    version: str = meta["version"]
    return version


def rewrite_wrapper_import(source: str) -> str:
    """Point the wrapper's import of ``libsodium`` at the file beside it."""
    rewritten, count = _BARE_IMPORT.subn('from"./libsodium.mjs"', source)
    if count != 1:
        raise VendorError(f"expected one import of 'libsodium' in the wrapper, found {count}")
    return rewritten


def check_no_bare_imports(name: str, source: str) -> None:
    """Refuse a module that still imports a package by bare name."""
    found = sorted({match.group(2) for match in _ANY_BARE.finditer(source)})
    if found:
        raise VendorError(f"{name} imports {', '.join(found)} by bare name")


def vendor(node_modules: Path, dest: Path) -> dict[str, object]:
    """Write the two modules and ``manifest.json`` into ``dest``; return the manifest."""
    try:
        wrapper_source = (node_modules / WRAPPERS).read_text(encoding="utf-8")
        libsodium_bytes = (node_modules / LIBSODIUM).read_bytes()
    except FileNotFoundError as exc:
        raise VendorError(f"{exc.filename} is missing: run `npm ci` first") from None

    wrapper_source = rewrite_wrapper_import(wrapper_source)
    check_no_bare_imports("libsodium-wrappers.mjs", wrapper_source)
    check_no_bare_imports("libsodium.mjs", libsodium_bytes.decode("utf-8"))
    files = {
        "libsodium-wrappers.mjs": (wrapper_source.encode("utf-8"), "libsodium-wrappers"),
        "libsodium.mjs": (libsodium_bytes, "libsodium"),
    }

    dest.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, object] = {
        "generated_by": "scripts/vendor_static.py (make static)",
        "entry": "libsodium-wrappers.mjs",
        "preload": ["libsodium.mjs"],
        "files": {
            name: {
                "integrity": sri(data),
                "bytes": len(data),
                "package": f"{package}@{_package_version(node_modules, package)}",
            }
            for name, (data, package) in files.items()
        },
    }
    for name, (data, _) in files.items():
        (dest / name).write_bytes(data)
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python scripts/vendor_static.py [--node-modules DIR] [--dest DIR]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--node-modules", type=Path, default=REPO / "node_modules")
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    args = parser.parse_args(argv)
    try:
        manifest = vendor(args.node_modules, args.dest)
    except VendorError as exc:
        print(f"vendor_static: {exc}", file=sys.stderr)
        return 1
    files = manifest["files"]
    assert isinstance(files, dict)
    for name, entry in files.items():
        print(f"{args.dest / name}  {entry['integrity']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
