"""Old import paths (before the one-room-per-stage layout) still work, with a deprecation warning."""

from __future__ import annotations

import importlib
import sys

import pytest

from warpspeed import MOVED_MODULES


@pytest.mark.parametrize("old", sorted(MOVED_MODULES))
def test_an_old_path_forwards_to_the_same_objects(old: str) -> None:
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=MOVED_MODULES[old]):
        moved = importlib.import_module(old)
    new = importlib.import_module(MOVED_MODULES[old])
    public = [n for n in vars(new) if not n.startswith("_")]
    assert public and all(getattr(moved, n) is getattr(new, n) for n in public)


def test_a_dag_file_import_of_the_old_operator_paths_gets_the_same_classes() -> None:
    from warpspeed.operators.score import ScoreBatchesOperator
    from warpspeed.triggers.sqs import ScoringWindowTrigger

    for old in ("warpspeed.operators.scoring", "warpspeed.triggers.sqs_intake"):
        sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning):
        from warpspeed.operators.scoring import ScoreBatchesOperator as old_operator  # type: ignore[import-not-found]
        from warpspeed.triggers.sqs_intake import ScoringWindowTrigger as old_trigger  # type: ignore[import-not-found]
    assert old_operator is ScoreBatchesOperator and old_trigger is ScoringWindowTrigger


def test_every_new_path_exists_and_no_old_path_is_a_file() -> None:
    for old, new in MOVED_MODULES.items():
        assert importlib.util.find_spec(new) is not None, new
        spec = importlib.machinery.PathFinder.find_spec(old.rsplit(".", 1)[-1],
                                                        importlib.import_module(old.rsplit(".", 1)[0]).__path__)
        assert spec is None, f"{old} is still a module file"


def test_an_old_module_split_in_two_forwards_to_both_homes() -> None:
    from warpspeed.operators.clusters import EnsureClustersOperator
    from warpspeed.operators.score import ScoreBatchesOperator

    sys.modules.pop("warpspeed.operators.scoring", None)
    with pytest.warns(DeprecationWarning, match="operators.score and warpspeed.operators.clusters"):
        old = importlib.import_module("warpspeed.operators.scoring")
    assert old.EnsureClustersOperator is EnsureClustersOperator and old.ScoreBatchesOperator is ScoreBatchesOperator
    assert {"EnsureClustersOperator", "ScoreBatchesOperator"} <= set(dir(old))
    with pytest.raises(ImportError):
        from warpspeed.operators.scoring import NoSuchOperator  # type: ignore[import-not-found]  # noqa: F401
