"""The backup reader (``tipbox.restore.verify_archive``) against damaged and hostile archives.

A small valid archive is built here as ``write_backup`` lays it out (a dump member per
table, the identity key file, the manifest and its signature), signed with the identity
key of ``tests/vectors/backup.json``. Then: its bytes mutated (a damaged or truncated
file), and manifests of every shape signed with the real key (the reader trusts a signed
manifest's signature, not its shape). The only failure allowed is ``BackupRefused``.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tipbox import backup, restore
from tipbox.crypto.keys import Role, identity_file_text, keypair_from_seed
from tipbox.db import head_revision

from .profiles import fuzz, hostile_bytes, mutated, pure_parser

pytestmark = pure_parser

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
_SEED = json.loads((VECTORS / "backup.json").read_text(encoding="utf-8"))["identity_seed"]
IDENTITY = keypair_from_seed(Role.IDENTITY, bytes.fromhex(_SEED))
TRUSTED = restore.TrustedIdentity(public=IDENTITY.public)
BY_FINGERPRINT = restore.TrustedIdentity(fingerprint=IDENTITY.public.fingerprint)


def _member(name: str, content: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(content)
    info.mode = 0o600
    return info, content


def _members() -> list[tuple[str, bytes]]:
    dumps = [(f"db/{table.name}.jsonl", b"") for table in backup.backed_up_tables()]
    return [*dumps, (backup.IDENTITY_MEMBER, identity_file_text(IDENTITY.public).encode())]


def _manifest(members: list[tuple[str, bytes]]) -> dict[str, Any]:
    assert IDENTITY.public.ed25519 is not None
    return {
        "format": backup.FORMAT,
        "version": backup.VERSION,
        "identity": {"ed25519": IDENTITY.public.ed25519.hex()},
        "created_on": "2026-01-01",
        "schema_revision": head_revision(),
        "tables": [
            {"name": t.name, "columns": [c.name for c in t.columns], "rows": 0}
            for t in backup.backed_up_tables()
        ],
        "members": [
            {"name": name, "size": len(data), "blake2b": _digest(data)} for name, data in members
        ],
    }


def _digest(data: bytes) -> str:
    digest = backup.member_hash()
    digest.update(data)
    return str(digest.hexdigest())


def archive(manifest: bytes, members: list[tuple[str, bytes]] | None = None) -> bytes:
    """A tar of ``members`` (the default dump) and ``manifest`` signed by the identity."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in members if members is not None else _members():
            info, data = _member(name, content)
            tar.addfile(info, io.BytesIO(data))
        signature = backup.sign_manifest(IDENTITY, manifest)
        for name, data in ((backup.MANIFEST, manifest), (backup.SIGNATURE, signature)):
            info, content = _member(name, data)
            tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


VALID_MANIFEST = json.dumps(_manifest(_members())).encode()
VALID = archive(VALID_MANIFEST)


def verifies_or_refuses(path: Path, data: bytes, trusted: restore.TrustedIdentity) -> bool:
    """Write ``data`` to ``path`` and verify it: True if it verified, False if refused."""
    path.write_bytes(data)
    try:
        restore.verify_archive(path, trusted)
    except backup.BackupRefused:
        return False
    return True


def test_the_valid_archive_verifies(tmp_path: Path) -> None:
    assert verifies_or_refuses(tmp_path / "a.tar", VALID, TRUSTED)
    assert verifies_or_refuses(tmp_path / "a.tar", VALID, BY_FINGERPRINT)


@fuzz(150)
@given(mutated(VALID), st.booleans())
def test_damaged_archives_are_refused(tmp_path: Path, data: bytes, by_fingerprint: bool) -> None:
    trusted = BY_FINGERPRINT if by_fingerprint else TRUSTED
    verifies_or_refuses(tmp_path / "damaged.tar", data, trusted)


@st.composite
def manifests(draw: st.DrawFn) -> bytes:
    """Signed manifests of any shape: the valid one mutated as bytes or as JSON, values of
    the wrong type, huge or non-finite numbers, deep nesting."""
    base = _manifest(_members())
    values = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=20),
        st.lists(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    )
    key = draw(st.sampled_from([*base, "members.size", "tables.rows", "members.name"]))
    changed = dict(base)
    if key == "members.size":
        members = [dict(m) for m in base["members"]]
        members[0]["size"] = draw(st.one_of(values, st.just(1e400), st.just(-1)))
        changed["members"] = members
    elif key == "members.name":
        members = [dict(m) for m in base["members"]]
        members[0]["name"] = draw(values)
        changed["members"] = members
    elif key == "tables.rows":
        tables = [dict(t) for t in base["tables"]]
        tables[0]["rows"] = draw(values)
        changed["tables"] = tables
    else:
        changed[key] = draw(values)
    depth = draw(st.integers(1, 5000))
    return draw(
        st.one_of(
            st.just(json.dumps(changed).encode()),
            st.just(json.dumps(changed).replace("Infinity", "1e400").encode()),
            mutated(VALID_MANIFEST),
            st.just(b'{"format":' * depth),
            hostile_bytes(),
        )
    )


@fuzz(100)
@given(manifests())
def test_signed_manifests_of_any_shape_are_refused_cleanly(tmp_path: Path, manifest: bytes) -> None:
    verifies_or_refuses(tmp_path / "signed.tar", archive(manifest), TRUSTED)


@fuzz(50)
@given(st.data())
def test_members_of_any_kind_are_refused_cleanly(tmp_path: Path, data: st.DataObject) -> None:
    members = _members()
    index = data.draw(st.integers(0, len(members) - 1))
    name, content = members[index]
    members[index] = (
        data.draw(st.one_of(st.just(name), st.text(min_size=1, max_size=40))),
        data.draw(st.one_of(mutated(content), hostile_bytes())),
    )
    manifest = json.dumps(_manifest(members)).encode()
    verifies_or_refuses(tmp_path / "members.tar", archive(manifest, members), BY_FINGERPRINT)
