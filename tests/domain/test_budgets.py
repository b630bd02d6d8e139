"""Flood budgets counted in the database (``tipbox.budgets``, docs/abuse.md).

Real database (each backend); time is passed in, so that windows open and end on cue.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tipbox import budgets
from tipbox.config import MIB, Config, ConfigError
from tipbox.crypto.budgets import counter_key, source_budget_key
from tipbox.models import BudgetCounter

NOON = 1_764_072_000  # 2026-11-25 12:00:00 UTC, a whole hour and minute
SEED_A = bytes(range(32))
SEED_B = bytes(range(1, 33))


def _rows(factory: sessionmaker[Session]) -> list[BudgetCounter]:
    with factory() as db:
        return list(db.scalars(select(BudgetCounter)))


def test_new_sources_stop_at_the_limit_until_the_minute_ends(
    session_factory: sessionmaker[Session],
) -> None:
    answers = [budgets.take_new_source(session_factory, 3, NOON + 10) for _ in range(4)]
    assert [taken.allowed for taken in answers] == [True, True, True, False]
    assert answers[-1].retry_after == 50
    assert not budgets.take_new_source(session_factory, 3, NOON + 59).allowed
    # The next minute has its own budget.
    assert budgets.take_new_source(session_factory, 3, NOON + 60).allowed
    [row] = _rows(session_factory)
    assert (row.key, row.window_end, row.count) == (b"new-sources", NOON + 120, 1)


def test_a_source_budget_is_its_own_and_names_no_source(
    session_factory: sessionmaker[Session],
) -> None:
    for _ in range(2):
        assert budgets.take_submission(session_factory, SEED_A, 2, NOON + 5).allowed
    refused = budgets.take_submission(session_factory, SEED_A, 2, NOON + 600)
    assert not refused.allowed
    assert refused.retry_after == 3000
    # Another source is not affected.
    assert budgets.take_submission(session_factory, SEED_B, 2, NOON + 600).allowed
    keys = {row.key for row in _rows(session_factory)}
    ends = NOON + 3600
    expected = {
        counter_key(source_budget_key(seed), b"submissions", ends) for seed in (SEED_A, SEED_B)
    }
    assert keys == expected
    # The next hour is a new window under an unrelated key.
    assert budgets.take_submission(session_factory, SEED_A, 2, NOON + 3600).allowed


def test_a_limit_of_zero_turns_a_budget_off(session_factory: sessionmaker[Session]) -> None:
    for _ in range(5):
        assert budgets.take_new_source(session_factory, 0, NOON).allowed
        assert budgets.take_submission(session_factory, SEED_A, 0, NOON).allowed
    assert _rows(session_factory) == []


def test_rows_of_ended_windows_are_forgotten(session_factory: sessionmaker[Session]) -> None:
    budgets.take_submission(session_factory, SEED_A, 5, NOON)
    budgets.take_submission(session_factory, SEED_B, 5, NOON)
    budgets.take_new_source(session_factory, 5, NOON)
    assert len(_rows(session_factory)) == 3
    assert budgets.forget_ended(session_factory, NOON + 59) == 0
    # The minute's row has ended; the hour's have not.
    assert budgets.forget_ended(session_factory, NOON + 60) == 1
    # A unit that opens a new window also forgets the ended ones.
    budgets.take_new_source(session_factory, 5, NOON + 3600)
    [row] = _rows(session_factory)
    assert row.key == b"new-sources"


def test_concurrent_takes_never_pass_the_limit(session_factory: sessionmaker[Session]) -> None:
    start = threading.Barrier(8)

    def one(_: int) -> bool:
        start.wait()
        return budgets.take_new_source(session_factory, 5, NOON + 1).allowed

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(one, range(40)))
    assert sum(answers) == 5
    with session_factory() as db:
        assert db.scalar(select(func.max(BudgetCounter.count))) == 5


def test_budget_settings_come_from_the_environment(tmp_path: Path) -> None:
    env = {
        "TIPBOX_DATA_DIR": str(tmp_path),
        "TIPBOX_LOGINS_IN_FLIGHT": "7",
        "TIPBOX_NEW_SOURCES_PER_MINUTE": "0",
        "TIPBOX_SUBMISSIONS_PER_HOUR": "3",
        "TIPBOX_SOURCE_STORAGE_CAP_MIB": "50",
        "TIPBOX_MIN_FREE_DISK_MIB": "5",
        "TIPBOX_RUNTIME_DIR": str(tmp_path / "rt"),
    }
    config = Config.from_env(env)
    assert (config.logins_in_flight, config.new_sources_per_minute) == (7, 0)
    assert config.submissions_per_hour == 3
    assert config.source_storage_cap_bytes == 50 * MIB
    assert config.min_free_disk_bytes == 5 * MIB
    assert config.run_dir == (tmp_path / "rt").resolve()
    default = Config.from_env({"TIPBOX_DATA_DIR": str(tmp_path)})
    assert default.run_dir == tmp_path.resolve() / "run"
    with pytest.raises(ConfigError):
        Config.from_env({**env, "TIPBOX_SUBMISSIONS_PER_HOUR": "many"})
