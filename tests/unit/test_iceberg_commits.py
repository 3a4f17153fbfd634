from __future__ import annotations

import pytest
from pyiceberg.exceptions import CommitFailedException

from warpspeed.ledger.commits import commit_with_retries


def test_a_conflict_is_retried_on_freshly_loaded_metadata() -> None:
    loads: list[int] = []
    outcomes = [CommitFailedException("409: requirement failed: branch main has changed"), None]

    def load() -> object:
        loads.append(len(loads))
        return f"metadata-v{len(loads)}"

    def change(table: object) -> str:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return f"committed on {table}"

    assert commit_with_retries(load, change, min_wait=0) == "committed on metadata-v2"
    assert len(loads) == 2


def test_conflicts_past_the_budget_and_other_errors_propagate() -> None:
    def conflict(_table: object) -> None:
        raise CommitFailedException("409")

    with pytest.raises(CommitFailedException):
        commit_with_retries(lambda: "t", conflict, attempts=3, min_wait=0)

    def broken(_table: object) -> None:
        raise ValueError("not a conflict")

    calls = []
    with pytest.raises(ValueError, match="not a conflict"):
        commit_with_retries(lambda: calls.append(1), broken, min_wait=0)
    assert len(calls) == 1
