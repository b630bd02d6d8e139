"""The source app holds no newsroom secret (DESIGN invariant 2), checked in a live process.

After a source's whole journey through a real gunicorn source app (first contact, a
submission, a journalist's reply read back), the worker's memory is read from
``/proc/<pid>/mem``: no seed or private key of the identity, the newsroom key, any
journalist or the recovery key may be in it. As a control, the scan must find the identity
*public* key, which the app holds for its whole life: that shows the scan sees the heap.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tipbox import directory, keyring
from tipbox.crypto.keys import KeyPair, Role, keypair_from_seed
from tipbox.crypto.recovery import recovery_seed
from tipbox.db import transaction

from .conftest import Instance, children_of, start_source_server
from .http_client import Client, csrf_token, multipart, new_source

pytestmark = pytest.mark.browser


def _secrets_of(pair: KeyPair, seed: bytes) -> dict[str, bytes]:
    found = {"seed": seed, "x25519 private": pair.x25519_private}
    if pair.signing_key is not None:
        found["ed25519 seed"] = bytes(pair.signing_key)
    return found


def _newsroom_secrets(live: Instance) -> dict[str, bytes]:
    """Every secret the newsroom side has, labelled."""
    with transaction(live.factory) as session:
        _, admin = live.unlocked_admin(session)
        identity = directory.identity_public(session)
        newsroom = directory.current_newsroom_key(session, identity)
        identity_seed = keyring.granted_seed(
            session, identity, admin.keypair, Role.IDENTITY, identity.key_id
        )
        newsroom_seed = keyring.granted_seed(
            session, identity, admin.keypair, Role.NEWSROOM, newsroom.key_id
        )
    labelled: dict[str, bytes] = {}
    for role, seed in [
        (Role.IDENTITY, identity_seed),
        (Role.NEWSROOM, newsroom_seed),
        (Role.JOURNALIST, admin.seed),
        (Role.RECOVERY, recovery_seed(live.recovery_secret)),
    ]:
        for what, value in _secrets_of(keypair_from_seed(role, seed), seed).items():
            labelled[f"{role.name.lower()} {what}"] = value
    return labelled


def _memory_of(pid: int) -> bytes:
    """Every readable, private or anonymous mapping of a process, concatenated."""
    chunks = []
    maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for line in maps:
            fields = line.split()
            start, end = (int(x, 16) for x in fields[0].split("-"))
            path = fields[5] if len(fields) > 5 else ""
            if "r" not in fields[1] or (path.startswith("/") and "(deleted)" not in line):
                continue  # unreadable, or a mapped file (code, libraries): not the heap
            if path == "[vvar]" or path == "[vsyscall]":
                continue
            try:
                mem.seek(start)
                chunks.append(mem.read(end - start))
            except (OSError, ValueError, OverflowError):
                continue
    return b"".join(chunks)


def test_a_live_source_process_holds_no_newsroom_secret(live_instance: Instance) -> None:
    server = start_source_server(live_instance, "secrets")
    try:
        client = Client(server.base)
        new_source(client)
        _, _, page = client.request("GET", "/submit")
        body, content_type = multipart({"csrf_token": csrf_token(page), "message": "hello"})
        status, _, _ = client.request("POST", "/submit", body, {"Content-Type": content_type})
        assert status == 303
        source_id = live_instance.source_ids()[-1]
        live_instance.add_reply(source_id, "We read it. Thank you.")
        status, _, page = client.request("GET", "/replies")
        assert status == 200
        assert "We read it. Thank you." in page

        workers = children_of(server.pid)
        assert workers, "no gunicorn worker"
        memory = b"".join(_memory_of(pid) for pid in workers)
    finally:
        server.process.terminate()
        server.process.wait(timeout=60)

    with transaction(live_instance.factory) as session:
        identity = directory.identity_public(session)
    assert identity.ed25519 is not None
    assert identity.ed25519 in memory  # the control: the scan sees what the app holds
    leaked = [name for name, value in _newsroom_secrets(live_instance).items() if value in memory]
    assert leaked == []
    assert re.search(rb"BEGIN [A-Z ]*PRIVATE KEY", memory) is None
