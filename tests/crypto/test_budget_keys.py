"""Budget counter keys (docs/envelope.md 15): known-answer vectors and refusals."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from tipbox.crypto.budgets import counter_key, source_budget_key
from tipbox.crypto.errors import Rejected

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
CASES: dict[str, Any] = json.loads((VECTORS / "budgets.json").read_text(encoding="utf-8"))


def test_vectors_are_what_the_generator_makes() -> None:
    spec = importlib.util.spec_from_file_location("make_budgets", VECTORS / "make_budgets.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.render() == (VECTORS / "budgets.json").read_text(encoding="utf-8")


@pytest.mark.parametrize("case", CASES["valid"], ids=[c["comment"] for c in CASES["valid"]])
def test_valid(case: dict[str, Any]) -> None:
    key = source_budget_key(bytes.fromhex(case["source_seed"]))
    assert key.hex() == case["budget_key"]
    name = case["name"].encode("ascii")
    assert counter_key(key, name, case["window_end"]).hex() == case["counter_key"]


def test_keys_differ_by_source_and_window() -> None:
    keys = {case["counter_key"] for case in CASES["valid"]}
    assert len(keys) == len(CASES["valid"])


@pytest.mark.parametrize("case", CASES["invalid"], ids=[c["comment"] for c in CASES["invalid"]])
def test_invalid(case: dict[str, Any]) -> None:
    with pytest.raises(Rejected):
        counter_key(bytes(32), case["name"].encode("ascii"), case["window_end"])


def test_budget_key_must_be_32_bytes() -> None:
    with pytest.raises(Rejected):
        counter_key(bytes(31), b"submissions", 1)
