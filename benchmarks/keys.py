"""Re-wrap benchmark: moving every item's wrap to a new newsroom key, against raw libsodium.

Run from the repository root::

    .venv/bin/python -m benchmarks.keys            # 100,000 items, SQLite
    .venv/bin/python -m benchmarks.keys --quick    # 10,000 items
    .venv/bin/python -m benchmarks.keys --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Setup: a fresh instance (``tipbox.instance.init_instance`` with the real Argon2id costs) in
a temporary folder, on SQLite there or, with ``--database-url``, on a PostgreSQL database
of the run's own (created on that server, dropped after). One source gets ``--items``
messages, each with a real sealed meta and a wrap of its content key to the first newsroom
key, stored with ``tipbox.items.store_items`` 5,000 per transaction. Their blobs are not
written: a re-wrap never reads one. Then ``tipbox.rotation.rotate``.

Measured, in the same process and run:

1. **raw**: ``crypto_box_seal_open`` of a wrap with the retiring key, then ``crypto_box_seal``
   of the content key to the new key, on wraps read from the database beforehand (at most
   20,000; the best of three runs), nothing else: the floor of what a re-wrap costs;
2. **re-wrap**: ``tipbox.rotation.rewrap_batch`` in batches of ``--batch-size``, one
   transaction each, as ``tipbox keys rewrap`` runs them (seeds opened from the admin's
   grants per batch, rows locked, new wraps inserted, old ones deleted, commit);
3. the final sweep (``finish_rewrap``) and ``retire``, after the grace period.

Afterwards every wrap is checked to be to the new key, and 1,000 of them to open the item's
meta.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import secrets
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version

from nacl.bindings import crypto_box_seal, crypto_box_seal_open
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from benchmarks._common import peak_rss_kib, platform_label, scratch_folder, text_table, utc_stamp
from benchmarks._database import Database
from benchmarks._results import Figure, Results, publish
from tipbox import directory, instance, keyring, rotation, sources
from tipbox.accounts import unlock_journalist
from tipbox.config import Config
from tipbox.crypto import envelope
from tipbox.crypto.envelope import Kind, Meta
from tipbox.crypto.keys import KeyPair, PublicKeys, Role
from tipbox.db import make_engine, make_session_factory, normalise_url, transaction, upgrade
from tipbox.items import NewItem, source_for_update, store_items
from tipbox.models import Item, Journalist, Wrap, new_public_id
from tipbox.storage import FilesystemBlobStore

INSERT_CHUNK = 5_000
RAW_SAMPLE = 20_000
RAW_REPEAT = 3
CHECK_SAMPLE = 1_000


@dataclass(frozen=True)
class Opened:
    """The instance as its admin sees it: identity, admin id and key pair."""

    identity: PublicKeys
    admin_id: int
    admin: KeyPair
    source_id: bytes


def setup(config: Config, factory: sessionmaker[Session]) -> Opened:
    """Initialise the instance and one source; unlock the admin (real Argon2id costs)."""
    upgrade(config)
    with transaction(factory) as session:
        result = instance.init_instance(session, config, name="Benchmark", admin_username="admin")
        source = sources.create_source(session)
    with transaction(factory) as session:
        identity = directory.identity_public(session)
        row = session.scalars(select(Journalist)).one()
        admin = unlock_journalist(session, identity, row, result.admin.passphrase).keypair
        return Opened(identity, row.id, admin, source.public_id)


def add_items(
    factory: sessionmaker[Session], store: FilesystemBlobStore, opened: Opened, count: int
) -> None:
    """``count`` messages wrapped to the current key (meta and wraps real, no blob)."""
    blob_size = envelope.blob_length(5)
    for start in range(0, count, INSERT_CHUNK):
        with transaction(factory) as session:
            current = rotation.current_key(session, opened.identity)
            source = source_for_update(session, opened.source_id)
            assert source is not None
            items = []
            for _ in range(min(INSERT_CHUNK, count - start)):
                item_id, content_key = new_public_id(), envelope.new_content_key()
                ad = envelope.additional_data(Kind.MESSAGE, opened.source_id, item_id)
                meta = envelope.seal_meta(content_key, ad, Meta("", envelope.TEXT_MEDIA_TYPE, 5))
                wrap = envelope.wrap_key(content_key, current.x25519)
                items.append(
                    NewItem(
                        public_id=item_id,
                        kind=Kind.MESSAGE,
                        blob_id=secrets.token_hex(16),
                        blob_size=blob_size,
                        sealed_meta=meta,
                        wraps={current.key_id: wrap},
                    )
                )
            store_items(session, store, source, items, source_activity=True)


def raw_rate(
    factory: sessionmaker[Session], opened: Opened, old: PublicKeys, new: PublicKeys, sample: int
) -> tuple[int, float]:
    """Open + seal of ``sample`` wraps with libsodium alone, best of ``RAW_REPEAT`` runs;
    (count, seconds)."""
    with transaction(factory) as session:
        pair = keyring.granted_keypair(
            session, opened.identity, opened.admin, Role.NEWSROOM, old.key_id
        )
        wraps = list(
            session.scalars(select(Wrap.wrap).where(Wrap.key_id == old.key_id).limit(sample))
        )
    secret, public, target = pair.x25519_private, pair.x25519_public, new.x25519
    best = float("inf")
    for _ in range(RAW_REPEAT):  # the best run: the machine may be busy with other work
        start = time.perf_counter()
        for wrap in wraps:
            crypto_box_seal(crypto_box_seal_open(wrap, public, secret), target)
        best = min(best, time.perf_counter() - start)
    return len(wraps), best


def rewrap(
    factory: sessionmaker[Session], opened: Opened, batch_size: int
) -> tuple[Counter[bytes], list[float]]:
    """Every batch in its own transaction, as ``tipbox keys rewrap`` runs them."""
    moved: Counter[bytes] = Counter()
    times: list[float] = []
    after = 0
    while True:
        start = time.perf_counter()
        with transaction(factory) as session:
            batch = rotation.rewrap_batch(
                session, opened.identity, opened.admin, after=after, limit=batch_size
            )
        times.append(time.perf_counter() - start)
        moved.update(batch.moved)
        after = batch.last_id
        if batch.seen < batch_size:
            return moved, times


def timed_transaction(factory: sessionmaker[Session], step: Callable[[Session], object]) -> float:
    """The seconds ``step`` takes in a transaction of its own, commit included."""
    start = time.perf_counter()
    with transaction(factory) as session:
        step(session)
    return time.perf_counter() - start


def check(factory: sessionmaker[Session], opened: Opened, new: PublicKeys, items: int) -> None:
    """Every wrap is to the new key, one per item; a sample opens its item's meta."""
    with transaction(factory) as session:
        grouped = session.execute(select(Wrap.key_id, func.count()).group_by(Wrap.key_id))
        counts = {key_id: count for key_id, count in grouped}
        assert counts == {new.key_id: items}, "not every wrap moved"
        pair = keyring.granted_keypair(
            session, opened.identity, opened.admin, Role.NEWSROOM, new.key_id
        )
        rows = session.execute(
            select(Item.public_id, Item.sealed_meta, Wrap.wrap)
            .join(Wrap, Wrap.item_id == Item.id)
            .order_by(func.random())
            .limit(CHECK_SAMPLE)
        ).all()
        for item_id, sealed_meta, wrap in rows:
            content_key = envelope.unwrap_key(wrap, pair.x25519_private, pair.x25519_public)
            ad = envelope.additional_data(Kind.MESSAGE, opened.source_id, item_id)
            envelope.open_meta(content_key, ad, sealed_meta)


def main() -> int:
    parser = argparse.ArgumentParser(description="tipbox re-wrap benchmark")
    parser.add_argument("--quick", action="store_true", help="10,000 items instead of 100,000")
    parser.add_argument("--items", type=int, help="items to re-wrap (overrides --quick)")
    parser.add_argument("--batch-size", type=int, default=rotation.DEFAULT_BATCH)
    parser.add_argument(
        "--database-url", help="a PostgreSQL server to make the run's database on (default: SQLite)"
    )
    args = parser.parse_args()
    items = args.items or (10_000 if args.quick else 100_000)

    database = Database(normalise_url(args.database_url) if args.database_url else None)
    with scratch_folder("keys") as tmp, database:
        data_dir = tmp / "instance"
        data_dir.mkdir(mode=0o700)
        config = Config.for_data_dir(data_dir, database_url=database.url(data_dir))
        engine = make_engine(config)
        try:
            factory = make_session_factory(engine)
            report = run(config, factory, items, args.batch_size)
        finally:
            engine.dispose()
    if database.server_url is None:
        backend = "SQLite (WAL, synchronous=FULL), in a temporary folder"
    else:
        backend = f"PostgreSQL {database.version}, a database of the run's own"

    print("tipbox re-wrap benchmark (benchmarks/keys.py)")
    print(f"  date      {utc_stamp()}")
    print(f"  python    {platform.python_version()}, {platform_label()}")
    print(f"  pynacl    {version('pynacl')}, sqlalchemy {version('sqlalchemy')}")
    print(f"  cpus      {os.cpu_count()}")
    print(f"  database  {backend}")
    print(
        f"  data      {items:,} items, one wrap each; batches of {args.batch_size:,};"
        f" {'--quick' if args.quick else 'full run'}"
    )
    print(f"  setup     {report.setup:.1f} s to store the items ({items / report.setup:,.0f}/s)")
    print()
    print(report.table)
    print()
    print(report.tail)
    print()
    database_label = (
        f"SQLite {database.version}"
        if database.server_url is None
        else f"PostgreSQL {database.version}"
    )
    settings = (
        f"{'--quick' if args.quick else 'full run'}: {items:,} items, batches of"
        f" {args.batch_size:,}, {database_label}, in one process"
    )
    publish(Results("keys", settings, report.figures))
    return 0


@dataclass(frozen=True)
class Report:
    """What ``main`` prints: the setup time, the rate table and the lines under it."""

    setup: float
    table: str
    tail: str
    figures: list[Figure]  # for the runner's table


def run(config: Config, factory: sessionmaker[Session], items: int, batch_size: int) -> Report:
    """Set up, measure, check; return what ``main`` prints."""
    store = FilesystemBlobStore(config.blob_dir)
    opened = setup(config, factory)
    start = time.perf_counter()
    add_items(factory, store, opened, items)
    setup_seconds = time.perf_counter() - start
    with transaction(factory) as session:
        now = datetime.datetime.now(datetime.UTC)
        rotated = rotation.rotate(
            session, opened.identity, opened.admin, opened.admin_id, now, config.key_grace_seconds
        )
    old, new = rotated.previous, rotated.current

    raw_count, raw_seconds = raw_rate(factory, opened, old, new, min(items, RAW_SAMPLE))
    start = time.perf_counter()
    moved, batch_times = rewrap(factory, opened, batch_size)
    rewrap_seconds = time.perf_counter() - start
    assert sum(moved.values()) == items, "the re-wrap missed items"

    later = rotated.commits_until + datetime.timedelta(seconds=1)
    admin = (opened.identity, opened.admin, opened.admin_id)
    grace = config.key_grace_seconds
    sweep_seconds = timed_transaction(
        factory, lambda session: rotation.finish_rewrap(session, *admin, moved, later, grace)
    )
    retire_seconds = timed_transaction(
        factory, lambda session: rotation.retire(session, *admin, old.key_id, later, grace)
    )
    check(factory, opened, new, items)

    raw = raw_count / raw_seconds
    rate = items / rewrap_seconds
    rows = [
        [
            "raw sealed-box open + seal (libsodium only)",
            f"{raw_count:,}",
            f"{raw_seconds:.2f}",
            f"{raw:,.0f}",
            "1.00",
        ],
        [
            "re-wrap (rewrap_batch, a transaction per batch)",
            f"{items:,}",
            f"{rewrap_seconds:.2f}",
            f"{rate:,.0f}",
            f"{rate / raw:.2f}",
        ],
    ]
    ms = [t * 1000 for t in batch_times]
    tail = "\n".join(
        [
            f"re-wrap batches: {len(ms):,}; per batch median {statistics.median(ms):.0f} ms,"
            f" max {max(ms):.0f} ms"
            + (" (the longest a batch holds SQLite's write lock)" if config.is_sqlite else ""),
            f"final sweep {sweep_seconds * 1000:.0f} ms, retire {retire_seconds * 1000:.0f} ms;"
            f" checked: every wrap to the new key, {CHECK_SAMPLE:,} open their item's meta",
            f"peak RSS {peak_rss_kib() / 1024:.0f} MiB"
            " (the admin's Argon2id run at setup takes 256 MiB of it)",
        ]
    )
    header = ["measurement", "wraps", "seconds", "wraps/s", "vs raw"]
    figures = [
        Figure(
            "re-wrap",
            f"{rate:,.0f} wraps/s",
            f"rewrap_batch, a transaction per batch, {items:,} wraps; {rate / raw:.2f} x raw"
            " libsodium open + seal",
        ),
        Figure(
            "raw sealed-box open + seal",
            f"{raw:,.0f} wraps/s",
            f"libsodium only, {raw_count:,} wraps read beforehand, best of {RAW_REPEAT}",
        ),
        Figure(
            "re-wrap batch, longest",
            f"{max(ms):,.0f} ms",
            f"one transaction; median {statistics.median(ms):.0f} ms over {len(ms):,} batches",
        ),
        Figure(
            "final sweep + retire",
            f"{(sweep_seconds + retire_seconds) * 1000:,.0f} ms",
            "finish_rewrap and retire, a transaction each",
        ),
        Figure(
            "peak RSS",
            f"{peak_rss_kib() / 1024:.0f} MiB",
            "ru_maxrss of the process; the admin's Argon2id (256 MiB) is in it",
        ),
    ]
    return Report(setup_seconds, text_table(rows, header), tail, figures)


if __name__ == "__main__":
    sys.exit(main())
