"""Model documents of the registry (``models/<model>/<version>.json``), validated on load.

Pure Python: used by the Spark job and by tests and the provider.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MODEL_SCHEMA = "warpspeed.model/v1"
TRANSFORMS = ("identity", "log1p", "standardize")


class ModelError(ValueError):
    """A model document is missing or invalid; the message names the field."""


@dataclass(frozen=True)
class FeatureTerm:
    """One input of a logistic model: ``coefficient * transform(coalesce(x, impute))``."""

    name: str
    coefficient: float
    transform: str = "identity"
    impute: float = 0.0
    mean: float = 0.0
    std: float = 1.0


@dataclass(frozen=True)
class LogisticModel:
    """A logistic model: ``sigmoid(intercept + sum(terms))``."""

    model: str
    version: str
    intercept: float
    terms: tuple[FeatureTerm, ...]

    @property
    def features(self) -> tuple[str, ...]:
        """Return the feature columns the model reads."""
        return tuple(t.name for t in self.terms)

    def score_one(self, row: Mapping[str, float | None]) -> float:
        """Score one account in plain Python (the reference for tests)."""
        z = self.intercept
        for term in self.terms:
            x = row.get(term.name)
            x = term.impute if x is None else float(x)
            if term.transform == "log1p":
                x = math.log1p(x)
            elif term.transform == "standardize":
                x = (x - term.mean) / term.std
            z += term.coefficient * x
        return 1.0 / (1.0 + math.exp(-z))


    def score_arrays(self, columns: Mapping[str, Any]) -> Any:
        """Score whole columns at once with NumPy (NaN is missing): the single-process peer of the Spark path."""
        import numpy as np

        z: Any = 0.0
        for term in self.terms:
            x = np.asarray(columns[term.name], dtype="float64")
            x = np.where(np.isnan(x), term.impute, x)
            if term.transform == "log1p":
                x = np.log1p(x)
            elif term.transform == "standardize":
                x = (x - term.mean) / term.std
            z = z + term.coefficient * x
        return 1.0 / (1.0 + np.exp(-(self.intercept + z)))


def _number(doc: Mapping[str, Any], key: str, where: str, default: float | None = None) -> float:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ModelError(f"{where}.{key} must be a finite number, got {value!r}")
    return float(value)


def parse_model(text: str, *, expect_model: str | None = None, expect_version: str | None = None) -> LogisticModel:
    """Parse and validate a model document."""
    try:
        doc = json.loads(text)
    except ValueError as err:
        raise ModelError(f"model document is not JSON: {err}") from err
    if not isinstance(doc, dict) or doc.get("schema") != MODEL_SCHEMA:
        raise ModelError(f"expected schema {MODEL_SCHEMA!r}")
    if doc.get("kind") != "logistic":
        raise ModelError(f"kind {doc.get('kind')!r} is not supported (only 'logistic')")
    model, version = doc.get("model"), doc.get("version")
    if expect_model is not None and model != expect_model:
        raise ModelError(f"model is {model!r}, expected {expect_model!r}")
    if expect_version is not None and version != expect_version:
        raise ModelError(f"version is {version!r}, expected {expect_version!r}")
    raw_terms = doc.get("features")
    if not isinstance(raw_terms, list) or not raw_terms:
        raise ModelError("features must be a non-empty list")
    terms = []
    for i, raw in enumerate(raw_terms):
        where = f"features[{i}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise ModelError(f"{where}.name must be a string")
        transform = raw.get("transform", "identity")
        if transform not in TRANSFORMS:
            raise ModelError(f"{where}.transform {transform!r} is not one of {', '.join(TRANSFORMS)}")
        std = _number(raw, "std", where, 1.0)
        if transform == "standardize" and std <= 0:
            raise ModelError(f"{where}.std must be positive")
        terms.append(
            FeatureTerm(
                name=raw["name"],
                coefficient=_number(raw, "coefficient", where),
                transform=transform,
                impute=_number(raw, "impute", where, 0.0),
                mean=_number(raw, "mean", where, 0.0),
                std=std,
            )
        )
    return LogisticModel(str(model), str(version), _number(doc, "intercept", "model"), tuple(terms))
