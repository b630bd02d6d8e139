"""Sources: create, confirm, log in, discard (tipbox.sources; DESIGN 4.4)."""

from __future__ import annotations

from datetime import date

import nacl.pwhash.argon2id
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tipbox import instance, sources
from tipbox.config import Config
from tipbox.crypto.codenames import lookalike_table
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import Role, keypair_from_seed
from tipbox.crypto.wordlist import word_set
from tipbox.models import InstanceSettings, Item, Source, today

LONG_AGO = date(2020, 1, 1)


@pytest.fixture
def db_instance(db: Session, config: Config) -> Session:
    """``db`` holding an initialised instance (cheap Argon2id costs)."""
    instance.init_instance(db, config, name="Test", admin_username="admin")
    db.commit()
    return db


def _row(db: Session, public_id: bytes) -> Source:
    return db.scalars(select(Source).where(Source.public_id == public_id)).one()


def _latin_to_cyrillic(codename: str) -> str:
    """Type ``codename`` as on a Russian keyboard: every look-alike letter in Cyrillic."""
    back: dict[str, str] = {}
    for code_point, latin in lookalike_table().items():
        if chr(code_point).islower():
            back.setdefault(latin, chr(code_point))
    return "".join(back.get(ch, ch) for ch in codename)


def _other_codename(codename: str) -> str:
    words = codename.split()
    return " ".join([*words[:-1], "abacus" if words[-1] != "abacus" else "zoom"])


def test_create_source_stores_only_hash_and_public_key(db_instance: Session) -> None:
    db = db_instance
    new = sources.create_source(db)
    db.commit()
    row = _row(db, new.public_id)
    assert len(new.codename.split()) == 7
    assert set(new.codename.split()) <= word_set()
    assert row.x25519 == keypair_from_seed(Role.SOURCE, new.seed).x25519_public
    assert len(row.lookup_hash) == 32
    assert row.lookup_hash not in (new.seed, new.codename.encode())
    assert row.designation is not None
    assert len(row.designation.split()) == 2
    assert set(row.designation.split()) <= word_set()
    assert row.created_on == row.last_active_on == today()
    assert row.next_seq == 1
    # Neither the codename nor the seed appears in a repr (logs, tracebacks).
    assert new.codename not in repr(new)
    assert new.seed.hex() not in repr(new)


def test_confirm_codename(db_instance: Session) -> None:
    db = db_instance
    new = sources.create_source(db)
    assert sources.confirm_codename(db, new.public_id, new.codename)
    assert sources.confirm_codename(db, new.public_id, new.codename.upper())
    assert not sources.confirm_codename(db, new.public_id, _other_codename(new.codename))
    assert not sources.confirm_codename(db, new.public_id, "not a codename")
    other = sources.create_source(db)
    assert not sources.confirm_codename(db, other.public_id, new.codename)
    assert not sources.confirm_codename(db, bytes(16), new.codename)


def test_login_with_cyrillic_lookalikes(db_instance: Session) -> None:
    db = db_instance
    new = sources.create_source(db)
    db.commit()
    typed = "  " + _latin_to_cyrillic(new.codename).upper().replace(" ", " ,  ") + "\u200b "
    assert any("\u0400" <= ch <= "\u04ff" for ch in typed)
    logged_in = sources.login(db, typed)
    assert logged_in is not None
    assert logged_in.public_id == new.public_id
    assert logged_in.seed == new.seed
    assert new.seed.hex() not in repr(logged_in)


def test_login_failures_all_give_none(db_instance: Session) -> None:
    db = db_instance
    new = sources.create_source(db)
    db.commit()
    assert sources.login(db, _other_codename(new.codename)) is None
    assert sources.login(db, "") is None
    assert sources.login(db, "seven words but not from the list at all") is None
    assert sources.login(db, new.codename + " " + new.codename.split()[0]) is None
    assert sources.login(db, "x" * 5000) is None


def test_login_refuses_a_stored_key_the_codename_does_not_derive(db_instance: Session) -> None:
    db = db_instance
    new = sources.create_source(db)
    other_key = keypair_from_seed(Role.SOURCE, bytes(32)).x25519_public
    db.execute(update(Source).where(Source.public_id == new.public_id).values(x25519=other_key))
    db.commit()
    assert sources.login(db, new.codename) is None
    assert not sources.confirm_codename(db, new.public_id, new.codename)


def test_login_marks_the_source_active_today(db_instance: Session) -> None:
    db = db_instance
    new = sources.create_source(db)
    db.execute(
        update(Source).where(Source.public_id == new.public_id).values(last_active_on=LONG_AGO)
    )
    db.commit()
    assert sources.login(db, new.codename) is not None
    db.commit()
    assert _row(db, new.public_id).last_active_on == today()


def test_unparseable_input_runs_no_argon2(db_instance: Session) -> None:
    db = db_instance
    new = sources.create_source(db)
    # A cost Argon2id refuses to run: any derivation now raises instead of answering.
    db.execute(
        update(InstanceSettings).values(codename_memlimit=nacl.pwhash.argon2id.MEMLIMIT_MAX + 1)
    )
    db.commit()
    for typed in ("", "one two three", "x" * 5000, "abacus " * 6 + "notaword"):
        assert sources.login(db, typed) is None
        assert not sources.confirm_codename(db, new.public_id, typed)
    # The same functions do run Argon2id once the input parses: the refusal above came
    # before it.
    with pytest.raises(Rejected, match=r"^argon2\.cost"):
        sources.login(db, new.codename)
    with pytest.raises(Rejected, match=r"^argon2\.cost"):
        sources.confirm_codename(db, new.public_id, new.codename)


def test_designation_clash_draws_again(
    db_instance: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = db_instance
    first = sources.create_source(db)
    taken = _row(db, first.public_id).designation
    draws = iter([taken, taken, "fresh words"])
    monkeypatch.setattr(sources, "_designation", lambda: next(draws))
    second = sources.create_source(db)
    db.commit()
    assert _row(db, second.public_id).designation == "fresh words"
    monkeypatch.setattr(sources, "_designation", lambda: "fresh words")
    with pytest.raises(RuntimeError, match="designation"):
        sources.create_source(db)


def test_discard_unconfirmed_deletes_only_a_source_without_items(db_instance: Session) -> None:
    db = db_instance
    empty = sources.create_source(db)
    busy = sources.create_source(db)
    db.add(
        Item(
            source_id=_row(db, busy.public_id).id,
            seq=1,
            kind=1,
            blob_id="0" * 32,
            blob_size=4137,
            sealed_meta=bytes(1064),
        )
    )
    db.commit()
    sources.discard_unconfirmed(db, empty.public_id)
    sources.discard_unconfirmed(db, busy.public_id)
    sources.discard_unconfirmed(db, bytes(16))  # unknown: nothing to do
    db.commit()
    remaining = set(db.scalars(select(Source.public_id)))
    assert remaining == {busy.public_id}
    assert db.scalar(select(func.count()).select_from(Item)) == 1
