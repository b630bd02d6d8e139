"""Journalist app benchmark: the inbox under a large newsroom, and a large download.

Run from the repository root::

    .venv/bin/python -m benchmarks.journalist           # 10,000 sources, 100,000 items, 1 GiB
    .venv/bin/python -m benchmarks.journalist --quick   # 1,000 sources, 10,000 items, 64 MiB
    .venv/bin/python -m benchmarks.journalist --sqlite  # the same on SQLite

Setup: a fresh PostgreSQL database on the server of ``--database-url`` (created for the run,
dropped after; with ``--sqlite``, a SQLite file in a temporary folder), migrated and
initialised with ``tipbox.instance.init_instance`` and the default ``Config`` (the real
Argon2id costs), blobs in a temporary folder, and the journalist app run as ``python -m
tipbox.serve journalist`` with its default workers and threads.

Seeding (``seed_inbox``, each step timed): the admin is unlocked with their passphrase
(``tipbox.accounts.unlock_journalist``, one Argon2id run) and opens the instance's metadata
key as the app does (``tipbox.tagging.open_metadata_keys``). Sources, items and wraps go
straight into their tables with bulk inserts (SQLAlchemy Core ``insert`` with
``executemany``), in the columns ``tipbox.models`` has today. The inbox never opens an item,
a wrap or a blob, so most seeded rows hold random bytes of the right sizes (public ids,
lookup hashes, X25519 keys, 1,064-byte sealed metas, 80-byte wraps, 64-byte signatures) and
name blobs that do not exist: their pages would show damaged items. The largest source's
items are sealed for real instead (``envelope.seal_text``, replies and notes signed by the
admin; files a sealed meta and a sparse blob of the right size, which the page checks but
never reads), so that its page opens every one. Everything else is as the app would write
it: unique two-word designations drawn from the codename word list, every source with at
least one item (so every source is listed unless spam) and the rest spread with a long tail,
``seq`` numbering per source with ``next_seq`` after it and ``last_source_seq`` at its
newest message or file, kinds 1..4 (the first item a message; replies and notes signed by
the admin's key id, replies also wrapped to the source's key), last activity spread over
the past year. Triage: 5% spam, about half new, the rest over the other statuses; 5%
starred; about 20% (only triaged sources) assigned to the admin; about half read by the
admin up to their last item (``read_markers``, most triaged sources and a few new ones);
30% tagged with 1 to 3 of 60 tags (English, Russian, Kazakh; a few written capitalised),
sealed and indexed under the metadata key (``tipbox.crypto.tags``) as ``add_tag`` does.
PostgreSQL then gets a ``VACUUM ANALYZE``, as autovacuum would have done in a database that
grew to this size.

1. Login: GET /login, then POST the admin's username, passphrase and a TOTP code (one
   Argon2id run at 256 MiB). The session cookie is shared by every client thread.
2. Inbox: for each kind of inbox request (each a row of ``inbox_requests``: first, middle
   and last page; searches by designation and by tag; status spam and in review, starred,
   unread, assigned to me, the most used tag; two sorts; a combination), a warm-up round and
   then ``N`` requests from ``CLIENTS`` threads, each on its own keep-alive connection.
   Every answer must be a 200 listing exactly the rows the seeded data says it should.
3. Download: one file item, added to a seeded source through the server path's own code
   (``tipbox.uploads.EncryptingUpload`` and ``tipbox.submissions.accept_server_submission``:
   a real envelope, wrapped to the current newsroom key), with deterministic content (a
   random 1 MiB block, each copy numbered), so it can be made again rather than kept. It is
   downloaded ``--repeat`` times (3 by default) through GET /items/<id>/download, streamed
   and discarded; each download must have exactly ``Content-Length`` bytes, the content's
   size, and equal the content byte for byte (each MiB compared with the same MiB made
   again: a running BLAKE2b would cost the client as much CPU as the whole download costs
   the server, and halved the measured MB/s on a 2-CPU machine). The gunicorn processes'
   peak RSS (``VmHWM``, reset just before the first download through
   ``/proc/<pid>/clear_refs``: the login's Argon2id would otherwise dominate it) is read
   after the last. Then, in this process, the same blob is decrypted from the page cache
   with ``envelope.decrypt_body`` and with raw libsodium secretstream (PyNaCl's
   ``crypto_secretstream_xchacha20poly1305_pull``, 64 KiB chunks, as benchmarks/crypto.py
   does), so the download's MB/s can be compared with raw decryption on the same machine in
   the same run. Best of ``--repeat`` runs each. The file goes to another source than the
   largest.
4. Source page: the page of the largest source, which opens and decrypts every item, so
   its cost grows with the items (reported apart, per item too): ``N / 10`` requests from
   one client (what a journalist waits on an idle server), then from ``CLIENTS``, each
   after a warm-up round. Each answer must be a 200 showing every item opened (none
   damaged or unverified). The workers' peak RSS over these requests is reported (reset
   first, as for the downloads). Opening the page marks the source read, which would change
   what the inbox's unread rows list: hence after them.

The clients run in this process, on the same machine as the server and PostgreSQL, so they
compete for the same CPUs: the tables say how much CPU each side took.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import itertools
import math
import os
import platform
import random
import re
import statistics
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import nacl.bindings as sodium
import pyotp
from sqlalchemy import Engine, Table, func, insert, select, text

from benchmarks._common import (
    GIB,
    MIB,
    MemoryWatch,
    ProcessMemory,
    memory_table,
    ms,
    percentile,
    platform_label,
    print_errors,
    print_targets,
    python_label,
    scratch_folder,
    size_label,
    text_table,
    utc_stamp,
)
from benchmarks._database import Database, add_database_url, init_instance
from benchmarks._results import Results, publish
from benchmarks._server import (
    FORM_HEADERS,
    REQUEST_TIMEOUT,
    Client,
    Load,
    Server,
    Unexpected,
    cookie_header,
    cpu_snapshot,
    cpu_spent,
    csrf_token,
    run_clients,
    server_label,
    serving,
)
from journalist_ui.listing import PAGE_SIZE
from tipbox import directory
from tipbox.accounts import Credentials, unlock_journalist
from tipbox.config import Config
from tipbox.crypto import envelope
from tipbox.crypto.keys import KeyPair, PublicKeys, Role
from tipbox.crypto.tags import MetadataKeys, normalise_tag, seal_tag, tag_index
from tipbox.crypto.wordlist import words
from tipbox.db import make_engine, make_session_factory, normalise_url, transaction
from tipbox.models import (
    KIND_FILE,
    KIND_MESSAGE,
    KIND_NOTE,
    KIND_REPLY,
    SOURCE_STATUS_CLOSED,
    SOURCE_STATUS_IN_REVIEW,
    SOURCE_STATUS_NEW,
    SOURCE_STATUS_PUBLISHED,
    SOURCE_STATUS_SPAM,
    SOURCE_STATUS_VERIFIED,
    Base,
    Journalist,
)
from tipbox.serve import THREADS, default_workers
from tipbox.storage import FilesystemBlobStore
from tipbox.submission_rules import Limits
from tipbox.submissions import accept_server_submission
from tipbox.tagging import open_metadata_keys
from tipbox.triage import NAME_OF_STATUS
from tipbox.uploads import EncryptingUpload

CHUNK = envelope.CHUNK_BYTES
CLIENTS = 4
DOWNLOAD_TIMEOUT = 600.0
PEAK_RSS_TARGET_MIB = 200
SEED = 20240601  # the seeded data and the file's content are the same on every run
INSERT_BATCH = 5000  # rows per executemany
SEARCH_SAMPLES = 20  # different search strings per kind of search


@dataclass(frozen=True)
class Plan:
    """How much the run does."""

    quick: bool
    sources: int
    items: int
    requests: int  # per kind of inbox request
    file_bytes: int
    repeats: int  # downloads and in-process decryptions; the best is reported


QUICK = Plan(quick=True, sources=1_000, items=10_000, requests=100, file_bytes=64 * MIB, repeats=3)
FULL = Plan(quick=False, sources=10_000, items=100_000, requests=400, file_bytes=GIB, repeats=3)


def progress(message: str) -> None:
    """A line on stderr while the run goes on (the report itself goes to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def listed_rows(page: str) -> int:
    """How many sources an inbox page lists: the rows of its table's body."""
    body = re.search(r"<tbody>(.*?)</tbody>", page, re.DOTALL)
    return 0 if body is None else len(re.findall(r"<tr[\s>]", body.group(1)))


# --------------------------------------------------------------------------- seeding


@dataclass(frozen=True)
class SeededSource:
    """What the inbox shows of a seeded source (to know what each page must list)."""

    id: int  # its row id
    public_id: bytes
    designation: str
    last_active_on: datetime.date
    status: int
    starred: bool
    assigned: bool  # to the admin
    items: int  # its next_seq is one more
    last_source_seq: int  # the seq of its newest message or file
    read: bool  # the admin's read marker is at its last item
    tags: tuple[str, ...]  # as written on it (display form)

    @property
    def listed(self) -> bool:
        """In the inbox when no status is asked for: every status but spam."""
        return self.status != SOURCE_STATUS_SPAM

    @property
    def unread(self) -> bool:
        """Unread for the admin: its newest message or file is past the read marker."""
        return self.last_source_seq > (self.items if self.read else 0)

    def has_tag(self, text: str) -> bool:
        """Whether ``text`` is one of its tags, as the blind index matches (case-folded)."""
        try:
            wanted = normalise_tag(text).casefold()
        except ValueError:
            return False
        return any(tag.casefold() == wanted for tag in self.tags)


@dataclass(frozen=True)
class Seeded:
    """What ``seed_inbox`` put in the database, and how long each step took."""

    sources: list[SeededSource]
    kinds: Counter[int]
    wraps: int
    sealed: SeededSource  # the source whose items are sealed for real (the largest)
    steps: dict[str, float]  # seconds per step, in order

    @property
    def seconds(self) -> float:
        return sum(self.steps.values())


def items_per_source(n_sources: int, n_items: int, rng: random.Random) -> list[int]:
    """At least one item per source, the rest with a long tail (a few sources send a lot)."""
    if n_items < n_sources:
        raise ValueError("every source needs at least one item")
    weights = [rng.paretovariate(1.5) for _ in range(n_sources)]
    extra = Counter(rng.choices(range(n_sources), weights, k=n_items - n_sources))
    return [1 + extra[index] for index in range(n_sources)]


def designations(n: int, rng: random.Random) -> list[str]:
    """``n`` unique two-word designations, as ``tipbox.sources`` draws them."""
    wordlist = words()
    pairs = rng.sample(range(len(wordlist) ** 2), n)
    return [f"{wordlist[p // len(wordlist)]} {wordlist[p % len(wordlist)]}" for p in pairs]


# Kinds after a source's first item (a message): mostly messages, some files, replies, notes.
LATER_KINDS = [KIND_MESSAGE, KIND_FILE, KIND_REPLY, KIND_NOTE]
LATER_KIND_WEIGHTS = [70, 15, 10, 5]
SEEDED_TABLES = ("sources", "items", "wraps")
# Triage: 5% spam, about half new, the rest spread over the other statuses.
STATUS_WEIGHTS: Mapping[int, float] = {
    SOURCE_STATUS_NEW: 45.0,
    SOURCE_STATUS_IN_REVIEW: 12.5,
    SOURCE_STATUS_VERIFIED: 12.5,
    SOURCE_STATUS_PUBLISHED: 12.5,
    SOURCE_STATUS_CLOSED: 12.5,
    SOURCE_STATUS_SPAM: 5.0,
}
STARRED_SHARE = 0.05
# Assigned to the admin: sources past triage (neither new nor spam), 40% of them (~20%).
ASSIGNED_SHARE = 0.4
# Read by the admin up to the last item: most triaged sources, few new ones (~half).
READ_SHARE_NEW = 0.2
READ_SHARE_TRIAGED = 0.8
TAGGED_SHARE = 0.3  # of sources, with 1 to 3 tags each
# 60 tags a newsroom might use, most used first (Zipf weights), in the scripts of the
# app's languages (English, Russian, Kazakh).
TAGS = (
    "ministry", "суд", "needs lawyer", "procurement", "выборы", "health", "police",
    "коррупция", "follow up", "energy", "әкімдік", "courts", "banking", "offshore",
    "нефть", "whistleblower", "environment", "military", "госзакупки", "prisons",
    "legal review", "mining", "таможня", "schools", "housing", "мұнай", "transport",
    "customs", "налоги", "tax", "land", "здравоохранение", "pharma", "tobacco", "жер",
    "telecom", "surveillance", "образование", "migration", "labour", "армия",
    "agriculture", "сайлау", "sports", "media", "полиция", "church", "local government",
    "министерство", "oil and gas", "construction", "urgent", "санкции", "water",
    "verified docs", "приватизация", "shell companies", "денсаулық", "leak", "budget",
)  # fmt: skip
TAG_WEIGHTS = [1 / rank for rank in range(1, len(TAGS) + 1)]
CAPITALISED_SHARE = 0.1  # a tag first written "Ministry" on a source is the same tag


def file_size_of(rng: random.Random) -> int:
    """A file's size: a few kilobytes to hundreds of megabytes."""
    return min(int(rng.lognormvariate(12.5, 2.0)), 500 * MIB)


def blob_size_of(kind: int, rng: random.Random) -> int:
    """A plausible blob size: short texts for messages, replies and notes; files of a few
    kilobytes to hundreds of megabytes."""
    content = file_size_of(rng) if kind == KIND_FILE else rng.randrange(40, 4000)
    return envelope.blob_length(content)


def text_of(rng: random.Random) -> str:
    """A message, reply or note of 40 to 4,000 characters (words of the codename list)."""
    wordlist = words()
    length = rng.randrange(40, 4000)
    written = ""
    while len(written) < length:
        written += rng.choice(wordlist) + " "
    return written[:length].strip() + "."


def drawn_tags(rng: random.Random) -> tuple[str, ...]:
    """The tags of one source: none for most, else 1 to 3 distinct ones."""
    if rng.random() >= TAGGED_SHARE:
        return ()
    chosen: list[str] = []
    for _ in range(rng.randint(1, 3)):
        tag = rng.choices(TAGS, TAG_WEIGHTS)[0]
        while tag in chosen:
            tag = rng.choices(TAGS, TAG_WEIGHTS)[0]
        chosen.append(tag)
    return tuple(t[:1].upper() + t[1:] if rng.random() < CAPITALISED_SHARE else t for t in chosen)


def table(name: str) -> Table:
    return Base.metadata.tables[name]


def next_ids(engine: Engine) -> dict[str, int]:
    """The first free primary key of each seeded table (the tables may hold rows already)."""
    with engine.connect() as conn:
        return {
            name: int(conn.scalar(select(func.coalesce(func.max(table(name).c.id), 0))) or 0) + 1
            for name in SEEDED_TABLES
        }


@dataclass(frozen=True)
class AdminKeys:
    """The admin as the seeding sees them: row and key ids, key pair, metadata keys."""

    id: int
    key_id: bytes
    keypair: KeyPair
    metadata: MetadataKeys
    newsroom_key_id: bytes
    newsroom_x25519: bytes


def open_admin(engine: Engine, admin: Credentials) -> AdminKeys:
    """Unlock the admin with their passphrase (one Argon2id run) and open the instance's
    metadata key as the app does for an admin (``tagging.open_metadata_keys``)."""
    with transaction(make_session_factory(engine)) as session:
        identity = directory.identity_public(session)
        newsroom = directory.current_newsroom_key(session, identity)
        row = session.scalars(select(Journalist).where(Journalist.username == admin.username)).one()
        if not row.is_admin or row.key_id is None:
            raise RuntimeError("the instance has no admin with a key")
        keypair = unlock_journalist(session, identity, row, admin.passphrase).keypair
        keys = open_metadata_keys(session, identity, keypair, is_admin=True)
        if keys is None:
            raise RuntimeError("the admin could not open the metadata key")
        return AdminKeys(row.id, row.key_id, keypair, keys, newsroom.key_id, newsroom.x25519)


def sealed_item(
    store: FilesystemBlobStore,
    admin: AdminKeys,
    kind: int,
    source: tuple[bytes, bytes],
    item_public_id: bytes,
    rng: random.Random,
) -> tuple[dict[str, Any], dict[bytes, bytes]]:
    """A real item of ``source`` (public id, X25519 key): its row's encrypted columns, with
    its blob written to ``store``, and its wraps. Replies and notes are signed by the admin.
    A file's blob is a sparse file of the right size: the source page checks a file's size
    and never reads it (only a download does)."""
    source_public_id, source_x25519 = source
    recipients = {admin.newsroom_key_id: admin.newsroom_x25519}
    blob_id = store.new_id()
    if kind == KIND_FILE:
        size = file_size_of(rng)
        content_key = envelope.new_content_key()
        ad = envelope.additional_data(envelope.Kind.FILE, source_public_id, item_public_id)
        meta = envelope.Meta(f"document {item_public_id.hex()[:8]}.pdf", "application/pdf", size)
        with store.writer(blob_id) as out:
            out.truncate(envelope.blob_length(size))
        columns = {
            "blob_size": envelope.blob_length(size),
            "sealed_meta": envelope.seal_meta(content_key, ad, meta),
            "signature": None,
        }
        wraps = {key_id: envelope.wrap_key(content_key, x) for key_id, x in recipients.items()}
        return {"blob_id": blob_id, **columns}, wraps
    if kind == KIND_REPLY:
        source_key = PublicKeys(Role.SOURCE, source_x25519)
        recipients[source_key.key_id] = source_key.x25519
    signed = kind in (KIND_REPLY, KIND_NOTE)
    sealed = envelope.seal_text(
        envelope.Kind(kind),
        source_public_id,
        item_public_id,
        text_of(rng),
        recipients,
        signing_key=admin.keypair.signing_key if signed else None,
    )
    with store.writer(blob_id) as out:
        out.write(sealed.blob)
    columns = {
        "blob_size": len(sealed.blob),
        "sealed_meta": sealed.sealed_meta,
        "signature": sealed.signature,
    }
    return {"blob_id": blob_id, **columns}, dict(sealed.wraps)


def seed_inbox(
    engine: Engine,
    store: FilesystemBlobStore,
    admin_credentials: Credentials,
    n_sources: int,
    n_items: int,
    rng: random.Random,
) -> Seeded:
    """Insert ``n_sources`` sources with ``n_items`` items between them, their wraps, the
    admin's read markers and the sources' tags; each step timed.

    Bulk Core inserts with explicit primary keys (so that items can name their source and
    wraps their item without reading anything back), in batches, in one transaction; on
    PostgreSQL the id sequences are moved past them and the tables vacuumed and analysed.
    Rows are made with every column the app may know and cut to the columns the models have
    when it runs; a column not made here gets its default. The largest source's items are
    sealed for real (``sealed_item``), so that its page decrypts every one of them.
    """
    steps: dict[str, float] = {}
    start = time.perf_counter()
    admin = open_admin(engine, admin_credentials)
    steps["unlock the admin (Argon2id), open the metadata key"] = time.perf_counter() - start
    ids = next_ids(engine)
    today = datetime.datetime.now(datetime.UTC).date()
    statuses, status_weights = list(STATUS_WEIGHTS), list(STATUS_WEIGHTS.values())
    counts = items_per_source(n_sources, n_items, rng)
    names = designations(n_sources, rng)
    largest = counts.index(max(counts))
    seeded: list[SeededSource] = []
    kinds: Counter[int] = Counter()
    wraps = 0
    sealing = 0.0  # seconds spent sealing the largest source's items
    # Sources first: items name them, wraps name items.
    batches: dict[str, list[dict[str, Any]]] = {name: [] for name in SEEDED_TABLES}
    sources_rows, item_rows, wrap_rows = batches.values()
    columns = {name: set(table(name).c.keys()) for name in SEEDED_TABLES}
    start = time.perf_counter()
    with engine.begin() as conn:

        def flush(force: bool = False) -> None:
            if not force and len(item_rows) < INSERT_BATCH:
                return
            for name, rows in batches.items():
                if rows:
                    keep = columns[name]
                    conn.execute(
                        insert(table(name)),
                        [{k: v for k, v in r.items() if k in keep} for r in rows],
                    )
                    rows.clear()

        for index, (count, designation) in enumerate(zip(counts, names, strict=True)):
            source_id = ids["sources"] + index
            public_id = rng.randbytes(16)
            x25519 = rng.randbytes(32)
            source_key_id = PublicKeys(Role.SOURCE, x25519).key_id
            last_active = today - datetime.timedelta(days=rng.randrange(365))
            created = last_active - datetime.timedelta(days=rng.randrange(90))
            status = rng.choices(statuses, status_weights)[0]
            starred = rng.random() < STARRED_SHARE
            triaged = status not in (SOURCE_STATUS_NEW, SOURCE_STATUS_SPAM)
            assigned = triaged and rng.random() < ASSIGNED_SHARE
            new = status == SOURCE_STATUS_NEW
            read = rng.random() < (READ_SHARE_NEW if new else READ_SHARE_TRIAGED)
            tags = drawn_tags(rng)
            source_row: dict[str, Any] = {
                "id": source_id,
                "public_id": public_id,
                "lookup_hash": rng.randbytes(32),
                "x25519": x25519,
                "designation": designation,
                "created_on": created,
                "last_active_on": last_active,
                "next_seq": count + 1,
                "last_source_seq": 0,  # set below, once the kinds are drawn
                "status": status,
                "starred": starred,
                "assignee_id": admin.id if assigned else None,
            }
            sources_rows.append(source_row)
            span = (last_active - created).days
            days = sorted(rng.randrange(span + 1) for _ in range(count - 1))
            for seq in range(1, count + 1):
                kind = KIND_MESSAGE if seq == 1 else rng.choices(LATER_KINDS, LATER_KIND_WEIGHTS)[0]
                signed = kind in (KIND_REPLY, KIND_NOTE)
                if not signed:
                    source_row["last_source_seq"] = seq
                item_id = ids["items"] + sum(kinds.values())
                kinds[kind] += 1
                day = last_active if seq == count else created + datetime.timedelta(days[seq - 1])
                item_public_id = rng.randbytes(16)
                if index == largest:
                    sealing_start = time.perf_counter()
                    real, item_wraps = sealed_item(
                        store, admin, kind, (public_id, x25519), item_public_id, rng
                    )
                    sealing += time.perf_counter() - sealing_start
                else:
                    real = {
                        "blob_id": rng.randbytes(16).hex(),
                        "blob_size": blob_size_of(kind, rng),
                        "sealed_meta": rng.randbytes(envelope.SEALED_META_BYTES),
                        "signature": rng.randbytes(envelope.SIGNATURE_BYTES) if signed else None,
                    }
                    recipients = [admin.newsroom_key_id]
                    if kind == KIND_REPLY:
                        recipients.append(source_key_id)
                    item_wraps = {k: rng.randbytes(envelope.WRAP_BYTES) for k in recipients}
                item_rows.append(
                    {
                        "id": item_id,
                        "public_id": item_public_id,
                        "source_id": source_id,
                        "seq": seq,
                        "kind": kind,
                        "version": envelope.VERSION,
                        "signer_key_id": admin.key_id if signed else None,
                        "author_journalist_id": admin.id if signed else None,
                        "created_on": day,
                        **real,
                    }
                )
                for key_id, wrap in item_wraps.items():
                    wrap_rows.append(
                        {
                            "id": ids["wraps"] + wraps,
                            "item_id": item_id,
                            "key_id": key_id,
                            "algorithm": envelope.WRAP_ALGORITHM,
                            "wrap": wrap,
                        }
                    )
                    wraps += 1
            seeded.append(
                SeededSource(
                    source_id,
                    public_id,
                    designation,
                    last_active,
                    status,
                    starred,
                    assigned,
                    count,
                    source_row["last_source_seq"],
                    read,
                    tags,
                )
            )
            flush()
        flush(force=True)
        if conn.dialect.name == "postgresql":
            for name in SEEDED_TABLES:
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'),"
                        f" (SELECT max(id) FROM {name}))"
                    )
                )
    steps["sources, items, wraps (bulk insert)"] = time.perf_counter() - start - sealing
    steps[f"the largest source's {counts[largest]:,} items, sealed for real"] = sealing
    start = time.perf_counter()
    insert_read_markers(engine, admin.id, seeded)
    steps["read markers (bulk insert)"] = time.perf_counter() - start
    start = time.perf_counter()
    insert_tags(engine, admin.metadata, seeded)
    steps["tags, sealed and indexed (bulk insert)"] = time.perf_counter() - start
    if engine.dialect.name == "postgresql":
        start = time.perf_counter()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f"VACUUM ANALYZE {', '.join(VACUUMED_TABLES)}")
        steps["VACUUM ANALYZE"] = time.perf_counter() - start
    return Seeded(seeded, kinds, wraps, seeded[largest], steps)


VACUUMED_TABLES = (*SEEDED_TABLES, "read_markers", "source_tags")


def insert_read_markers(engine: Engine, journalist_id: int, seeded: list[SeededSource]) -> None:
    """The journalist's read markers: each source read is read up to its last item
    (``seen_seq = next_seq - 1``), as opening its page or "mark read" leaves it."""
    rows = [
        {"journalist_id": journalist_id, "source_id": s.id, "seen_seq": s.items}
        for s in seeded
        if s.read
    ]
    with engine.begin() as conn:
        for at in range(0, len(rows), INSERT_BATCH):
            conn.execute(insert(table("read_markers")), rows[at : at + INSERT_BATCH])


def insert_tags(engine: Engine, keys: MetadataKeys, seeded: list[SeededSource]) -> None:
    """The sources' tags as ``tagging.add_tag`` writes them (sealed under the metadata key,
    bound to the source, with the blind index of the tag), in bulk."""
    rows = []
    for source in seeded:
        for written in source.tags:
            shown = normalise_tag(written)
            rows.append(
                {
                    "source_id": source.id,
                    "key_id": keys.key_id,
                    "blind_index": tag_index(keys, shown),
                    "sealed_tag": seal_tag(keys, source.public_id, shown),
                }
            )
    with engine.begin() as conn:
        for at in range(0, len(rows), INSERT_BATCH):
            conn.execute(insert(table("source_tags")), rows[at : at + INSERT_BATCH])


# --------------------------------------------------------------------------- login


def log_in(port: int, admin: Credentials) -> tuple[dict[str, str], float]:
    """Log in as a browser does; the session's cookies and the POST's time (Argon2id)."""
    client = Client(port)
    try:
        page = client.request("GET", "/login")
        if page.status != 200:
            raise Unexpected(f"GET /login: {page.status}")
        fields = {
            "csrf_token": csrf_token(page.text),
            "username": admin.username,
            "passphrase": admin.passphrase,
            "code": pyotp.TOTP(admin.totp_secret).now(),
        }
        start = time.perf_counter()
        answer = client.request(
            "POST", "/login", urllib.parse.urlencode(fields).encode(), FORM_HEADERS
        )
        seconds = time.perf_counter() - start
        if answer.status != 303 or not answer.location.endswith("/"):
            raise Unexpected(f"POST /login: {answer.status} {answer.location}".rstrip())
        return dict(client.cookies), seconds
    finally:
        client.close()


# --------------------------------------------------------------------------- inbox


@dataclass(frozen=True)
class Variant:
    """One URL and how many rows its answer must show (``count`` counts them): the table
    rows of an inbox page, or the items of a source page that opened."""

    path: str
    rows: int
    count: Callable[[str], int] = listed_rows


@dataclass(frozen=True)
class InboxRequest:
    """One kind of request: the URLs it goes through in turn, from ``clients`` threads.
    ``share`` scales the plan's requests per row; a source page is reported apart."""

    label: str
    variants: list[Variant]
    source_page: bool = False
    share: float = 1.0
    clients: int = CLIENTS


def rows_on_page(matching: int, page: int) -> int:
    return max(0, min(PAGE_SIZE, matching - (page - 1) * PAGE_SIZE))


def not_spam(source: SeededSource) -> bool:
    """In the inbox when no status is asked for."""
    return source.listed


def inbox_variant(
    seeded: list[SeededSource],
    params: Mapping[str, str],
    matches: Callable[[SeededSource], bool] = not_spam,
) -> Variant:
    """The URL of ``params`` and the rows it lists: the page's share of the seeded sources
    that ``matches`` (what the query parameters should select; without a status, that
    leaves spam out)."""
    query = urllib.parse.urlencode(params)
    matching = sum(1 for source in seeded if matches(source))
    return Variant(
        "/" + (f"?{query}" if query else ""), rows_on_page(matching, int(params.get("page", "1")))
    )


def opened_items(page: str) -> int:
    """How many items a source page shows opened: neither damaged nor unverified."""
    shown = len(re.findall(r'<li class="item"', page))
    failed = len(re.findall(r'class="item-(?:damaged|unverified)"', page))
    return shown - failed


SOURCE_PAGE_SHARE = 0.1  # of the plan's requests: each decrypts every item of the source
TAG_SEARCHES = 10  # different tags searched for with ``q``


def inbox_requests(seeded: list[SeededSource], rng: random.Random) -> list[InboxRequest]:
    """The kinds of inbox request measured. A filter or sort is one more row here: its query
    parameters and the predicate over ``SeededSource`` that says which sources it lists."""
    shown = [s for s in seeded if s.listed]
    pages = max(1, math.ceil(len(shown) / PAGE_SIZE))
    middle = max(1, pages // 2)
    picks = rng.sample(shown, min(SEARCH_SAMPLES, len(shown)))
    uses = Counter(tag.casefold() for s in seeded for tag in s.tags)
    common = uses.most_common(1)[0][0] if uses else TAGS[0]
    # Tags as typed in the search box: some in capitals (matching ignores case).
    typed = rng.sample(TAGS, min(TAG_SEARCHES, len(TAGS)))
    typed = [tag.upper() if index % 2 else tag for index, tag in enumerate(typed)]
    by_designation = min(100, pages)

    def view(params: Mapping[str, str], matches: Callable[[SeededSource], bool]) -> Variant:
        return inbox_variant(seeded, params, matches)

    def search(fragment: str) -> Variant:
        # A part of a designation (ILIKE), or exactly a tag (its blind index).
        part = fragment.strip().lower()
        return view(
            {"q": fragment},
            lambda s: s.listed and (part in s.designation.lower() or s.has_tag(fragment)),
        )

    return [
        InboxRequest("first page", [view({}, not_spam)]),
        InboxRequest(f"page {middle} of {pages}", [view({"page": str(middle)}, not_spam)]),
        InboxRequest(f"page {pages} of {pages}", [view({"page": str(pages)}, not_spam)]),
        InboxRequest("search: a designation", [search(s.designation) for s in picks]),
        InboxRequest("search: 3 letters", [search(s.designation[:3]) for s in picks]),
        InboxRequest("search: a tag", [search(tag) for tag in typed]),
        InboxRequest(
            "status: spam", [view({"status": "spam"}, lambda s: s.status == SOURCE_STATUS_SPAM)]
        ),
        InboxRequest(
            "status: in review",
            [view({"status": "review"}, lambda s: s.status == SOURCE_STATUS_IN_REVIEW)],
        ),
        InboxRequest("starred", [view({"starred": "1"}, lambda s: s.listed and s.starred)]),
        InboxRequest("unread", [view({"unread": "1"}, lambda s: s.listed and s.unread)]),
        InboxRequest(
            "assigned to me", [view({"assignee": "me"}, lambda s: s.listed and s.assigned)]
        ),
        InboxRequest(
            f"tag: {common} (most used)",
            [view({"tag": common}, lambda s: s.listed and s.has_tag(common))],
        ),
        InboxRequest("sort: unread first", [view({"sort": "unread"}, not_spam)]),
        InboxRequest(
            f"sort: designation, page {by_designation}",
            [view({"sort": "designation", "page": str(by_designation)}, not_spam)],
        ),
        InboxRequest(
            "new + unread, oldest first",
            [
                view(
                    {"status": "new", "unread": "1", "sort": "oldest"},
                    lambda s: s.status == SOURCE_STATUS_NEW and s.unread,
                )
            ],
        ),
    ]


def source_page_requests(largest: SeededSource) -> list[InboxRequest]:
    """The page of the largest source, which opens every item: alone (the latency a
    journalist sees) and from ``CLIENTS`` threads. Measured after the inbox, as opening it
    marks the source read, which would change what the unread rows list."""
    page = [Variant(f"/sources/{largest.public_id.hex()}", largest.items, opened_items)]
    label = f"source page: {largest.items:,} items"
    return [
        InboxRequest(label, page, source_page=True, share=SOURCE_PAGE_SHARE, clients=clients)
        for clients in (1, CLIENTS)
    ]


@dataclass(frozen=True)
class Answer:
    """One inbox or source page request: its time and the rows its answer showed."""

    seconds: float
    rows: int


def in_turn(variants: list[Variant]) -> Callable[[], Variant]:
    """The variants one after the other, whichever client thread asks for the next."""
    lock = threading.Lock()
    turn = itertools.count()

    def next_variant() -> Variant:
        with lock:
            return variants[next(turn) % len(variants)]

    return next_variant


def get_inbox(client: Client, next_variant: Callable[[], Variant]) -> Answer:
    """One request of the next variant, its rows checked against the variant's."""
    variant = next_variant()
    start = time.perf_counter()
    answer = client.request("GET", variant.path)
    seconds = time.perf_counter() - start
    if answer.status != 200:
        raise Unexpected(f"GET {variant.path}: {answer.status} {answer.location}".rstrip())
    rows = variant.count(answer.text)
    if rows != variant.rows:
        raise Unexpected(f"GET {variant.path}: {rows} rows shown, {variant.rows} expected")
    return Answer(seconds, rows)


def run_inbox(
    server: Server, cookies: Mapping[str, str], request: InboxRequest, total: int
) -> Load[Answer]:
    """``total`` requests of ``request`` from its client threads, each on its own connection."""
    clients = [Client(server.port, cookies) for _ in range(request.clients)]
    next_variant = in_turn(request.variants)
    try:
        units = [partial(get_inbox, client, next_variant) for client in clients]
        # No time limit of its own: as long as its requests may take one after the other.
        return run_clients(server, units, total, total * REQUEST_TIMEOUT)
    finally:
        for client in clients:
            client.close()


def phase_inbox(
    server: Server, cookies: Mapping[str, str], requests: list[InboxRequest], plan: Plan
) -> tuple[dict[str, tuple[InboxRequest, Load[Answer]]], list[Load[Answer]]]:
    """Every kind of inbox request: a warm-up round (checked, not reported), then measured."""
    loads, warm_ups = {}, []
    for request in requests:
        key = f"{request.label}, {request.clients} client{'s' if request.clients > 1 else ''}"
        progress(f"{'source page' if request.source_page else 'inbox'}: {key}")
        warm_ups.append(run_inbox(server, cookies, request, 2 * CLIENTS))
        total = max(CLIENTS, round(plan.requests * request.share))
        loads[key] = (request, run_inbox(server, cookies, request, total))
    return loads, warm_ups


def phase_source_page(
    server: Server, cookies: Mapping[str, str], requests: list[InboxRequest], plan: Plan
) -> tuple[dict[str, tuple[InboxRequest, Load[Answer]]], list[Load[Answer]], ProcessMemory]:
    """The source page rows, with the workers' memory over them."""
    memory = MemoryWatch(server.process.pid, server.workers())
    loads, warm_ups = phase_inbox(server, cookies, requests, plan)
    return loads, warm_ups, memory.stop()


# --------------------------------------------------------------------------- download


def file_blocks(total: int, seed: int) -> Iterator[bytes]:
    """``total`` bytes of deterministic content: one random 1 MiB block, each copy starting
    with its own number (so no two MiB are alike), cut at ``total``."""
    base = random.Random(seed).randbytes(MIB)
    for index in range(math.ceil(total / MIB)):
        block = index.to_bytes(8, "big") + base[8:]
        yield block[: min(MIB, total - index * MIB)]


@dataclass(frozen=True)
class StoredFile:
    """The file item made for the download."""

    item_id: bytes
    source_id: bytes
    blob_id: str
    blob_size: int
    size: int
    content_key: bytes = field(repr=False)
    seconds: float  # to encrypt and store it


def add_file(config: Config, source_id: bytes, total: int) -> StoredFile:
    """Encrypt ``total`` bytes into a file item of ``source_id`` through the server path's
    own code (``EncryptingUpload``, ``accept_server_submission``), as an upload would."""
    store = FilesystemBlobStore(config.blob_dir)
    limits = replace(Limits.from_config(config), max_file_bytes=total)
    start = time.perf_counter()
    upload = EncryptingUpload(store, source_id, "benchmark.bin", "application/octet-stream", total)
    for block in file_blocks(total, SEED):
        upload.write(block)
    upload.finish()
    engine = make_engine(config)
    try:
        with transaction(make_session_factory(engine)) as session:
            identity = directory.identity_public(session)
            accept_server_submission(session, store, identity, source_id, "", [upload], limits)
    finally:
        engine.dispose()
    assert upload.info is not None
    return StoredFile(
        upload.item_id,
        source_id,
        upload.blob_id,
        upload.info.blob_length,
        total,
        upload.content_key,
        time.perf_counter() - start,
    )


@dataclass(frozen=True)
class Download:
    """One download through the journalist app."""

    seconds: float
    received: int
    content_length: int
    same_content: bool  # every byte read equals the file's, and none is missing
    cpu: dict[str, float]
    error: str = ""


def download(server: Server, cookies: Mapping[str, str], stored: StoredFile) -> Download:
    """GET the file a MiB at a time, comparing each MiB with the content made again."""
    before = cpu_snapshot(server)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=DOWNLOAD_TIMEOUT)
    expected = file_blocks(stored.size, SEED)
    same = True
    received = content_length = 0
    error = ""
    start = time.perf_counter()
    try:
        path = f"/items/{stored.item_id.hex()}/download"
        conn.request("GET", path, headers=cookie_header(cookies))
        answer = conn.getresponse()
        content_length = int(answer.getheader("Content-Length", "-1"))
        if answer.status != 200:
            error = f"GET download: {answer.status}"
        # read(n) gives n bytes until the body ends (fewer if the server cut it short), so
        # the pieces line up with the content's MiB blocks.
        while not error and (piece := answer.read(MIB)):
            received += len(piece)
            same = same and piece == next(expected, b"")
    except (OSError, http.client.HTTPException) as exc:
        error = f"{type(exc).__name__}: {exc}"[:120]
    finally:
        seconds = time.perf_counter() - start
        conn.close()
    same = same and next(expected, None) is None
    return Download(
        seconds, received, content_length, same, cpu_spent(before, cpu_snapshot(server)), error
    )


def decrypt_in_process(stored: StoredFile, blob_path: Path, variant: str) -> float:
    """Decrypt the stored blob here, discarding the plaintext: with ``envelope.decrypt_body``
    (every check of the format) or with raw secretstream pulls (as benchmarks/crypto.py)."""
    ad = envelope.additional_data(envelope.Kind.FILE, stored.source_id, stored.item_id)
    with blob_path.open("rb") as blob:
        start = time.perf_counter()
        if variant == "raw":
            state = sodium.crypto_secretstream_xchacha20poly1305_state()
            body_key, _ = envelope.content_subkeys(stored.content_key)
            sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, blob.read(24), body_key)
            chunk_ad: bytes | None = ad
            while sealed := blob.read(CHUNK + 17):
                sodium.crypto_secretstream_xchacha20poly1305_pull(state, sealed, chunk_ad)
                chunk_ad = None
        else:
            for _ in envelope.decrypt_body(stored.content_key, ad, blob, stored.size):
                pass
        return time.perf_counter() - start


@dataclass
class DownloadResult:
    """Phase 3's result."""

    stored: StoredFile
    downloads: list[Download]
    in_process: dict[str, list[float]]  # variant -> seconds of each run
    memory: ProcessMemory  # gunicorn's processes over the downloads

    @property
    def downloads_ok(self) -> bool:
        return all(
            not d.error and d.received == d.content_length == self.stored.size and d.same_content
            for d in self.downloads
        )


def phase_download(
    server: Server, cookies: Mapping[str, str], config: Config, plan: Plan, source_id: bytes
) -> DownloadResult:
    """Phase 3: store one file, download it ``plan.repeats`` times, then decrypt it here."""
    progress(f"download: encrypting a {size_label(plan.file_bytes)} file item")
    stored = add_file(config, source_id, plan.file_bytes)
    blob_path = FilesystemBlobStore(config.blob_dir).path(stored.blob_id)

    # The login's Argon2id (256 MiB) is in some worker's peak: start afresh.
    memory = MemoryWatch(server.process.pid, [server.process.pid, *server.workers()])
    downloads = []
    for run in range(plan.repeats):
        progress(f"download {run + 1} of {plan.repeats}")
        downloads.append(download(server, cookies, stored))
    memory_over_downloads = memory.stop()

    in_process: dict[str, list[float]] = {"envelope": [], "raw": []}
    for run in range(plan.repeats):
        progress(f"in-process decryption {run + 1} of {plan.repeats}")
        for variant in in_process:  # interleaved, as benchmarks/crypto.py does
            in_process[variant].append(decrypt_in_process(stored, blob_path, variant))
    return DownloadResult(stored, downloads, in_process, memory_over_downloads)


# --------------------------------------------------------------------------- report


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def seeding_table(seeded: Seeded) -> str:
    kinds = seeded.kinds
    items = sum(kinds.values())
    sources = seeded.sources
    per_source = [s.items for s in sources]
    statuses = Counter(s.status for s in sources)
    status_spread = ", ".join(
        f"{NAME_OF_STATUS[status]} {statuses[status]:,}" for status in STATUS_WEIGHTS
    )
    tagged = [s for s in sources if s.tags]
    tags = sum(len(s.tags) for s in sources)
    distinct = {tag.casefold() for s in tagged for tag in s.tags}
    cyrillic = {tag for tag in distinct if re.search("[\u0400-\u04ff]", tag)}
    read = sum(1 for s in sources if s.read)
    rows = [
        [
            "sources",
            f"{len(sources):,}",
            f"items per source: median {statistics.median(per_source):g}, max {max(per_source):,}",
        ],
        ["  by status", "", status_spread],
        [
            "  starred, assigned",
            "",
            f"{sum(s.starred for s in sources):,} starred,"
            f" {sum(s.assigned for s in sources):,} assigned to the admin",
        ],
        [
            "items",
            f"{items:,}",
            f"{kinds[KIND_MESSAGE]:,} messages, {kinds[KIND_FILE]:,} files,"
            f" {kinds[KIND_REPLY]:,} replies, {kinds[KIND_NOTE]:,} notes",
        ],
        [
            "  sealed for real",
            f"{seeded.sealed.items:,}",
            f"every item of the largest source ({seeded.sealed.designation}); random bytes"
            " elsewhere",
        ],
        ["wraps", f"{seeded.wraps:,}", "newsroom key; replies also the source's key"],
        [
            "read markers",
            f"{read:,}",
            f"the admin's, at the last item; {sum(s.unread for s in sources):,} sources unread",
        ],
        [
            "source tags",
            f"{tags:,}",
            f"on {len(tagged):,} sources (1 to 3 each), {len(distinct)} distinct tags"
            f" ({len(cyrillic)} in Cyrillic)",
        ],
    ]
    done = f"seeded in {seeded.seconds:,.1f} s"
    table_rows = text_table(rows, [done, "rows", "spread"])
    steps = [[step, f"{seconds:,.2f}"] for step, seconds in seeded.steps.items()]
    return table_rows + "\n\n" + text_table(steps, ["seeding step", "seconds"])


def request_cells(load: Load[Answer]) -> list[str]:
    """The cells of a row of requests that both tables have: answers, errors, answers per
    second, latency (p50, p99, max), rows per answer and gunicorn's CPU per answer."""
    latencies = [answer.seconds for answer in load.samples] or [0.0]
    per = max(load.done, 1)
    return [
        f"{load.done:,}",
        f"{sum(load.errors.values())}",
        f"{load.rate:,.1f}",
        ms(percentile(latencies, 0.5)),
        ms(percentile(latencies, 0.99)),
        ms(max(latencies)),
        f"{sum(answer.rows for answer in load.samples) / per:,.0f}",
        ms(load.cpu["gunicorn"] / per),
    ]


def postgres_cell(load: Load[Answer], postgres: bool) -> str:
    """PostgreSQL's CPU per answer ("-" on SQLite, whose CPU is in gunicorn's)."""
    return ms(load.cpu["postgres"] / max(load.done, 1)) if postgres else "-"


def inbox_table(loads: dict[str, tuple[InboxRequest, Load[Answer]]], postgres: bool) -> str:
    """Latency and CPU per kind of inbox request."""
    rows = [
        [
            request.label,
            *request_cells(load),
            postgres_cell(load, postgres),
            urllib.parse.unquote_plus(request.variants[0].path),
        ]
        for request, load in loads.values()
        if not request.source_page
    ]
    header = [f"inbox GET, {CLIENTS} clients", "200s", "errors", "per s", "p50 ms", "p99 ms"]
    extra = ["max ms", "rows", "gunicorn CPU ms", "postgres CPU ms", "first URL"]
    return text_table(rows, [*header, *extra])


def source_page_table(
    loads: dict[str, tuple[InboxRequest, Load[Answer]]], memory: ProcessMemory, postgres: bool
) -> str:
    """The source page rows: their cost grows with the source's items, each one opened."""
    rows = []
    for request, load in loads.values():
        items = max(request.variants[0].rows, 1)
        per_item = load.cpu["gunicorn"] / max(load.done, 1) / items
        rows.append(
            [
                request.label,
                f"{request.clients}",
                *request_cells(load),
                f"{per_item * 1e6:,.0f}",
                postgres_cell(load, postgres),
            ]
        )
    header = ["source page GET", "clients", "200s", "errors", "per s", "p50 ms", "p99 ms"]
    extra = ["max ms", "items opened", "gunicorn CPU ms", "per item us", "postgres CPU ms"]
    before = max(at_start for _, at_start, _ in memory.pids.values())
    peak = "peak" if memory.reset else "peak (VmHWM not reset: since start)"
    return (
        text_table(rows, [*header, *extra])
        + f"\nworker RSS: {before / 1024:,.0f} MiB at most before these requests,"
        + f" {peak} {memory.worker_peak_mib:,.0f} MiB during them"
    )


def mb_s(total: int, seconds: float) -> float:
    return total / seconds / 1e6 if seconds else 0.0


def download_table(result: DownloadResult) -> str:
    total = result.stored.size
    raw_best = mb_s(total, min(result.in_process["raw"]))
    timed = {
        "GET /items/<id>/download (HTTP, gunicorn)": [d.seconds for d in result.downloads],
        "envelope.decrypt_body, in-process": result.in_process["envelope"],
        "raw secretstream pull, in-process": result.in_process["raw"],
    }
    rows = []
    for label, seconds in timed.items():
        best = mb_s(total, min(seconds))
        rows.append(
            [
                label,
                f"{min(seconds):,.2f}",
                f"{best:,.0f}",
                f"{mb_s(total, statistics.median(seconds)):,.0f}",
                f"{best / raw_best:.2f}" if raw_best else "-",
            ]
        )
    header = [f"{size_label(total)} file, decrypting", "best s", "best MB/s", "median MB/s"]
    main = text_table(rows, [*header, "of raw"])
    cpu_rows = []
    for index, d in enumerate(result.downloads, 1):
        checked = d.error or ("every byte as sent" if d.same_content else "CONTENT DIFFERS")
        cpu_rows.append(
            [
                f"download {index}",
                f"{d.received:,}",
                f"{d.content_length:,}",
                f"{mb_s(total, d.seconds):,.0f}",
                f"{d.cpu['gunicorn']:,.2f}",
                f"{d.cpu['client']:,.2f}",
                f"{d.cpu['others']:,.2f}",
                checked,
            ]
        )
    header = ["each download", "bytes read", "Content-Length", "MB/s", "gunicorn CPU s"]
    each = text_table(cpu_rows, [*header, "client CPU s", "others CPU s", "check"])
    return main + "\n\n" + each


def print_header(
    plan: Plan,
    db: Database,
    started: datetime.datetime,
    load_before: float,
    seeded: Seeded,
    login_seconds: float,
    stored: StoredFile,
) -> None:
    print("tipbox journalist app benchmark (benchmarks/journalist.py)")
    print(f"  date      {utc_stamp(started)}")
    print(f"  python    {python_label()}, {platform_label()}")
    print(
        f"  machine   {os.cpu_count()} CPUs ({cpu_model()}), shared by server, database and"
        f" clients; load average {load_before:.2f} before the run"
    )
    print(f"  database  {db.describe()}")
    print(f"  server    {server_label('journalist')}")
    print(
        f"  data      {len(seeded.sources):,} sources, {sum(seeded.kinds.values()):,} items,"
        f" {seeded.wraps:,} wraps, bulk-inserted (random bytes for the encrypted columns,"
        f" but the largest source's {seeded.sealed.items:,} items sealed for real); tags sealed"
        f" under the metadata key; {'--quick' if plan.quick else 'full run'}"
    )
    print(
        f"  login     once, as the admin (Argon2id opslimit 3, 256 MiB: {login_seconds:.1f} s);"
        " the session cookie is shared by every client"
    )
    print(
        f"  inbox     {plan.requests:,} requests per row after {2 * CLIENTS} warm-up ones;"
        f" {CLIENTS} client threads in this process, one keep-alive connection each;"
        f" {PAGE_SIZE} sources a page; the source page {SOURCE_PAGE_SHARE:.0%} of that (1 and"
        f" {CLIENTS} clients), after the download"
    )
    print(
        f"  file      {size_label(plan.file_bytes)} ({stored.size:,} bytes, blob"
        f" {stored.blob_size:,} bytes), encrypted and stored in {stored.seconds:.1f} s through"
        f" EncryptingUpload; {plan.repeats} downloads and {plan.repeats} in-process runs each"
    )
    print()


def report_checks(loads: list[Load[Answer]], result: DownloadResult, results: Results) -> int:
    """Print the errors and the targets (and add the targets to ``results``); 0 when all
    is well."""
    errors = print_errors(load.errors for load in loads)
    peak_mib = result.memory.worker_peak_mib
    checks = {
        "every inbox and source page answer a 200 with the rows expected (0 errors)": (
            not errors and all(load.finished for load in loads)
        ),
        "every download complete and equal to the file, byte for byte": result.downloads_ok,
        f"worker peak RSS in the downloads < {PEAK_RSS_TARGET_MIB} MiB ({peak_mib:,.0f} MiB)": (
            peak_mib < PEAK_RSS_TARGET_MIB and result.memory.reset
        ),
    }
    for check, ok in checks.items():
        results.target(check, ok)
    return print_targets(checks)


# --------------------------------------------------------------------------- main


def run(plan: Plan, db: Database) -> int:
    started = datetime.datetime.now(datetime.UTC)
    load_before = os.getloadavg()[0]
    rng = random.Random(SEED)
    with scratch_folder("journalist") as tmp, db:
        config, admin = init_instance(tmp / "instance", db)
        progress(f"seeding {plan.sources:,} sources and {plan.items:,} items")
        engine = make_engine(config)
        try:
            store = FilesystemBlobStore(config.blob_dir)
            seeded = seed_inbox(engine, store, admin, plan.sources, plan.items, rng)
        finally:
            engine.dispose()
        progress(f"seeded in {seeded.seconds:.1f} s; starting the journalist app")
        with serving("journalist", config, tmp) as server:
            cookies, login_seconds = log_in(server.port, admin)
            requests = inbox_requests(seeded.sources, rng)
            inbox, warm_ups = phase_inbox(server, cookies, requests, plan)
            # The file goes to a source whose page is not measured (it would gain an item).
            other = next(s for s in seeded.sources if s is not seeded.sealed)
            result = phase_download(server, cookies, config, plan, other.public_id)
            pages, page_warm_ups, page_memory = phase_source_page(
                server, cookies, source_page_requests(seeded.sealed), plan
            )

    print_header(plan, db, started, load_before, seeded, login_seconds, result.stored)
    print(seeding_table(seeded))
    print()
    print(inbox_table(inbox, postgres=db.server_url is not None))
    print()
    print(source_page_table(pages, page_memory, postgres=db.server_url is not None))
    print()
    print(download_table(result))
    print()
    print(memory_table(result.memory, "downloads"))
    print()
    loads = [*warm_ups, *page_warm_ups, *(load for _, load in [*inbox.values(), *pages.values()])]
    results = figures(plan, db, seeded, login_seconds, inbox, pages, page_memory, result)
    code = report_checks(loads, result, results)
    print()
    publish(results)
    return code


def latency(load: Load[Answer]) -> tuple[float, float]:
    """p50 and p99 of a load's answers, in seconds."""
    seconds = [answer.seconds for answer in load.samples] or [0.0]
    return percentile(seconds, 0.5), percentile(seconds, 0.99)


def figures(
    plan: Plan,
    db: Database,
    seeded: Seeded,
    login_seconds: float,
    inbox: dict[str, tuple[InboxRequest, Load[Answer]]],
    pages: dict[str, tuple[InboxRequest, Load[Answer]]],
    page_memory: ProcessMemory,
    result: DownloadResult,
) -> Results:
    """The run's figures for the runner's table (the targets are added after)."""
    settings = (
        f"{'--quick' if plan.quick else 'full run'}: {db.label()}, {len(seeded.sources):,}"
        f" sources, {sum(seeded.kinds.values()):,} items; gunicorn {default_workers()} workers"
        f" x {THREADS} threads, {CLIENTS} client threads"
    )
    results = Results("journalist", settings)
    results.add(
        "seeding", f"{seeded.seconds:,.1f} s", "bulk inserts, tags sealed; VACUUM ANALYZE on PG"
    )
    results.add("login", f"{login_seconds:,.1f} s", "GET + POST /login, Argon2id 256 MiB")
    inbox_loads = {key: load for key, (request, load) in inbox.items() if not request.source_page}
    first_key = next(iter(inbox_loads))
    slowest_key = max(inbox_loads, key=lambda key: latency(inbox_loads[key])[1])
    for what, key in (("first page", first_key), ("slowest kind", slowest_key)):
        p50, p99 = latency(inbox_loads[key])
        load = inbox_loads[key]
        results.add(
            f"inbox GET, {what}, p50 / p99",
            f"{ms(p50)} / {ms(p99)} ms",
            f"{key}; {load.done:,} requests, {load.rate:,.1f} per s",
        )
    all_p99 = sorted(latency(load)[1] for load in inbox_loads.values())
    results.add(
        "inbox GET, median of the p99s",
        f"{ms(all_p99[len(all_p99) // 2])} ms",
        f"over {len(all_p99)} kinds of inbox request (pages, searches, filters, sorts)",
    )
    for key, (request, load) in pages.items():
        p50, p99 = latency(load)
        results.add(
            f"source page, {request.clients} client{'s' if request.clients > 1 else ''}, p50 / p99",
            f"{ms(p50)} / {ms(p99)} ms",
            f"{key}, every item opened; {load.done:,} requests",
        )
    results.add(
        "worker peak RSS, source pages",
        f"{page_memory.worker_peak_mib:,.0f} MiB",
        "largest worker's VmHWM over the source page requests",
    )
    total = result.stored.size
    best = mb_s(total, min(d.seconds for d in result.downloads))
    raw = mb_s(total, min(result.in_process["raw"]))
    results.add(
        f"{size_label(total)} download",
        f"{best:,.0f} MB/s",
        f"GET /items/<id>/download, best of {len(result.downloads)};"
        f" {best / raw if raw else 0:.2f} x raw secretstream in this process",
    )
    results.add(
        "worker peak RSS, downloads",
        f"{result.memory.worker_peak_mib:,.0f} MiB",
        "largest worker's VmHWM, reset just before"
        + ("" if result.memory.reset else " (reset REFUSED: peak since start)"),
    )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description="tipbox journalist app benchmark")
    parser.add_argument(
        "--quick", action="store_true", help="1,000 sources, 10,000 items, a 64 MiB file"
    )
    add_database_url(parser)
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="downloads and in-process decryptions of the file (the best is reported)",
    )
    parser.add_argument(
        "--sqlite", action="store_true", help="use a SQLite file instead of PostgreSQL"
    )
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    plan = replace(QUICK if args.quick else FULL, repeats=args.repeat)
    return run(plan, Database(None if args.sqlite else normalise_url(args.database_url)))


if __name__ == "__main__":
    raise SystemExit(main())
