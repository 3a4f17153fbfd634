from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from spark_jobs.models import ModelError, parse_model
from warpspeed.window.rule import floor_to_window, window_from_context

MODEL = {
    "schema": "warpspeed.model/v1", "kind": "logistic", "model": "m", "version": "v1", "intercept": 0.5,
    "features": [{"name": "x", "transform": "log1p", "coefficient": 2.0, "impute": 1.0},
                 {"name": "y", "transform": "standardize", "mean": 10, "std": 5, "coefficient": -1.0}],
}


def test_model_scores_like_the_formula() -> None:
    model = parse_model(json.dumps(MODEL), expect_model="m", expect_version="v1")
    import math

    z = 0.5 + 2.0 * math.log1p(3.0) - 1.0 * (20 - 10) / 5
    assert model.score_one({"x": 3.0, "y": 20.0}) == pytest.approx(1 / (1 + math.exp(-z)))
    assert model.score_one({"x": None, "y": 10.0}) == pytest.approx(1 / (1 + math.exp(-(0.5 + 2 * math.log1p(1)))))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema": "other"}, "expected schema"),
        ({"kind": "tree"}, "only 'logistic'"),
        ({"features": []}, "features must be a non-empty list"),
        ({"intercept": "high"}, "model.intercept must be a finite number"),
        ({"features": [{"name": "x", "coefficient": 1, "transform": "sqrt"}]}, "features\\[0\\].transform 'sqrt'"),
        ({"features": [{"name": "x", "coefficient": 1, "transform": "standardize", "std": 0}]}, "std must be positive"),
        ({"features": [{"coefficient": 1}]}, "features\\[0\\].name must be a string"),
        ({"version": "v2"}, "version is 'v2', expected 'v1'"),
    ],
)
def test_invalid_models_name_the_field(change: dict, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        parse_model(json.dumps(MODEL | change), expect_model="m", expect_version="v1")


def test_windows_start_at_a_boundary_date_or_are_the_last_closed_one() -> None:
    start = datetime(2026, 11, 20, 21, 0, tzinfo=UTC)
    window = window_from_context({"logical_date": start}, 30)
    assert (window.id, window.end) == ("20261120T2100Z", datetime(2026, 11, 20, 21, 30, tzinfo=UTC))
    manual = {"logical_date": None, "dag_run": SimpleNamespace(run_after=datetime(2026, 11, 20, 21, 44, tzinfo=UTC))}
    # issue 12: a run dated inside a window (manual trigger, dags test) scores the window that
    # ended last, so it finishes at once instead of waiting for [21:30, 22:00) to close.
    assert window_from_context(manual, 30).id == "20261120T2100Z"
    assert floor_to_window(datetime(2026, 11, 20, 21, 59, tzinfo=UTC), 15).minute == 45


def test_score_arrays_matches_score_one() -> None:
    import numpy as np

    model = parse_model(json.dumps({
        "schema": "warpspeed.model/v1", "kind": "logistic", "model": "m", "version": "v1", "intercept": 0.3,
        "features": [{"name": "a", "transform": "log1p", "coefficient": 0.7, "impute": 1.0},
                     {"name": "b", "transform": "standardize", "mean": 2.0, "std": 4.0, "coefficient": -0.2}],
    }))
    a, b = [0.0, None, 5.0], [1.0, 3.0, None]
    scores = model.score_arrays({"a": np.array(a, dtype=float), "b": np.array(b, dtype=float)})
    assert list(scores) == pytest.approx([model.score_one({"a": x, "b": y}) for x, y in zip(a, b, strict=True)],
                                         rel=0, abs=1e-12)
