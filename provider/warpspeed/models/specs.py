"""What a workload scores: its tables (feature, scores) and its models (flavour and URI).

Pure module: config objects that validate in ``__post_init__``; the messages name the field,
and :mod:`warpspeed.config.workloads` prefixes the file and the workload. What a flavour means
(its default URI, its engine, how its inputs are read) is defined in
:mod:`warpspeed.models.flavours`; whether a requested version exists and fits its table is
checked at plan time by :mod:`warpspeed.models.probe`.

A model's URI is a template: ``{models_uri}`` is the deployment's model registry folder
(``<storage prefix>/models``), ``{model}`` the model's name, ``{version}`` the requested
version (``v3``) and ``{version_number}`` that version without its ``v`` (``3``, for an MLflow
registry: ``models:/churn/{version_number}``).
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.models.flavours import DEFAULT_FLAVOUR, flavour_named

URI_FIELDS = frozenset({"models_uri", "model", "version", "version_number"})
SCORE_COLUMNS = ("model", "model_version", "score", "batch_id", "scored_at")
"""Columns the scores table adds to the tenant column and the entity key."""

_MODEL_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}(\.[A-Za-z_][A-Za-z0-9_]{0,127})+")


def check_column(value: Any, where: str) -> str:
    """Return ``value`` if it is a plain column name, else raise naming ``where``."""
    if not isinstance(value, str) or not _COLUMN.fullmatch(value):
        raise WarpSpeedConfigError(f"{where} must be a column name (letters, digits, _), got {value!r}")
    return value


def check_table(value: Any, where: str) -> str:
    """Return ``value`` if it is a ``namespace.table`` identifier, else raise naming ``where``."""
    if not isinstance(value, str) or not _TABLE.fullmatch(value):
        raise WarpSpeedConfigError(f"{where} must be a table identifier like 'namespace.table', got {value!r}")
    return value


@dataclass(frozen=True)
class ModelSpec:
    """One model a workload runs.

    :param name: the model's name, as requests spell it.
    :param flavour: a name of :data:`warpspeed.models.flavours.REGISTRY`: ``expression`` (JSON
        logistic model compiled to Spark SQL), ``mlflow`` (any MLflow pyfunc model) or
        ``spark_ml`` (a saved ``PipelineModel``).
    :param uri: where version ``{version}`` lives (a template, see the module docstring).
    :param output_column: which prediction output is the score: for ``mlflow`` a column of a
        DataFrame prediction, for ``spark_ml`` the output column (default ``probability``).
    :param output_index: position in a 2-D prediction (``predict_proba``) or a probability
        vector; default 1 (the positive class of a binary classifier) when the output has 2+
        values, none for a 1-D prediction.
    :param inputs: the feature columns the model reads, when its own metadata does not say
        (an MLflow signature or an expression document does).
    """

    name: str
    flavour: str = DEFAULT_FLAVOUR
    uri: str = ""
    output_column: str | None = None
    output_index: int | None = None
    inputs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        where = f"models.{self.name}"
        if not isinstance(self.name, str) or not _MODEL_NAME.fullmatch(self.name):
            raise WarpSpeedConfigError(
                f"model name {self.name!r} must match [a-z][a-z0-9_]* (as requests spell it)"
            )
        flavour = flavour_named(self.flavour, f"{where}.flavour")
        uri = self.uri or flavour.default_uri
        if not isinstance(uri, str):
            raise WarpSpeedConfigError(f"{where}.uri must be a string, got {uri!r}")
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(uri) if f is not None}
        except ValueError as err:
            raise WarpSpeedConfigError(f"{where}.uri {uri!r} is not a valid template: {err}") from None
        if fields - URI_FIELDS:
            raise WarpSpeedConfigError(
                f"{where}.uri uses unknown placeholders {sorted(fields - URI_FIELDS)}; "
                f"known: {', '.join(sorted(URI_FIELDS))}"
            )
        if not fields & {"version", "version_number"}:
            raise WarpSpeedConfigError(
                f"{where}.uri must contain {{version}} or {{version_number}} so each version loads its own "
                f"model, got {uri!r}"
            )
        object.__setattr__(self, "uri", uri)
        if self.output_column is not None:
            check_column(self.output_column, f"{where}.output_column")
        if self.output_index is not None and (
            isinstance(self.output_index, bool) or not isinstance(self.output_index, int) or self.output_index < 0
        ):
            raise WarpSpeedConfigError(
                f"{where}.output_index must be a non-negative integer, got {self.output_index!r}"
            )
        if isinstance(self.inputs, str) or not isinstance(self.inputs, Sequence):
            raise WarpSpeedConfigError(f"{where}.inputs must be a list of column names, got {self.inputs!r}")
        object.__setattr__(
            self, "inputs", tuple(check_column(c, f"{where}.inputs[{i}]") for i, c in enumerate(self.inputs))
        )

    def resolve(self, models_uri: str, version: str) -> str:
        """Return the URI of one version of the model."""
        return self.uri.format(
            models_uri=models_uri.rstrip("/"), model=self.name, version=version,
            version_number=version.removeprefix("v"),
        )

    def to_manifest(self, models_uri: str) -> dict[str, Any]:
        """Return what the Spark job needs (``{version}`` left for it to fill)."""
        return {
            "flavour": self.flavour,
            "uri": self.uri.replace("{models_uri}", models_uri.rstrip("/")).replace("{model}", self.name),
            "output_column": self.output_column,
            "output_index": self.output_index,
            "inputs": list(self.inputs),
        }

    @classmethod
    def from_yaml(cls, name: Any, spec: Any) -> ModelSpec:
        """Build a spec from a ``models:`` entry: a bare name, or a name with a mapping."""
        if not isinstance(name, str):
            raise WarpSpeedConfigError(f"models: each model is a name (a string), got {name!r}")
        if spec is None:
            return cls(name)
        if not isinstance(spec, Mapping):
            raise WarpSpeedConfigError(f"models.{name} must be a mapping (flavour, uri, ...), got {spec!r}")
        known = {"flavour", "uri", "output_column", "output_index", "inputs", "description"}
        unknown = set(spec) - known
        if unknown:
            raise WarpSpeedConfigError(f"models.{name} has unknown keys {sorted(map(str, unknown))}; known: "
                                       f"{', '.join(sorted(known))}")
        args = {k: v for k, v in spec.items() if k != "description"}
        if "inputs" in args and isinstance(args["inputs"], list):
            args["inputs"] = tuple(args["inputs"])
        return cls(name, **args)


def parse_models(value: Any) -> dict[str, ModelSpec]:
    """Parse a workload's ``models:``: a list of names (expression models) or a name -> spec mapping."""
    if isinstance(value, str):
        raise WarpSpeedConfigError(
            f"models must be a list of model names or a mapping of name to {{flavour, uri}}, "
            f"got the string {value!r} (write [{value}])"
        )
    if isinstance(value, Mapping):
        specs = [ModelSpec.from_yaml(name, spec) for name, spec in value.items()]
    elif isinstance(value, Sequence):
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise WarpSpeedConfigError(f"models[{i}] must be a model name (a string), got {item!r}")
        if len(set(value)) != len(value):
            raise WarpSpeedConfigError(f"models lists a model twice: {list(value)}")
        specs = [ModelSpec(name) for name in value]
    elif value is None:
        specs = []
    else:
        raise WarpSpeedConfigError(f"models must be a list or a mapping, got {value!r}")
    return {s.name: s for s in specs}


@dataclass(frozen=True)
class TableBinding:
    """Where a workload reads features and writes scores.

    The scores table has the columns ``<tenant_column>, model, model_version, <entity key...>,
    score, batch_id, scored_at``, partitioned by tenant and model; the scoring job creates it
    when it is missing (key types taken from the feature table).
    """

    features_table: str = "features.account_features"
    entity_key: tuple[str, ...] = ("account_id",)
    tenant_column: str = "tenant_id"
    scores_table: str = "scores.account_scores"

    def __post_init__(self) -> None:
        check_table(self.features_table, "features_table")
        check_table(self.scores_table, "scores_table")
        check_column(self.tenant_column, "tenant_column")
        key = (self.entity_key,) if isinstance(self.entity_key, str) else self.entity_key
        if not isinstance(key, Sequence) or not key:
            raise WarpSpeedConfigError(f"entity_key must be a column name or a non-empty list, got {key!r}")
        key = tuple(check_column(c, f"entity_key[{i}]") for i, c in enumerate(key))
        if len(set(key)) != len(key) or self.tenant_column in key:
            raise WarpSpeedConfigError(
                f"entity_key {list(key)} must name distinct columns other than tenant_column {self.tenant_column!r}"
            )
        clash = sorted(set(key) & set(SCORE_COLUMNS))
        if clash or self.tenant_column in SCORE_COLUMNS:
            raise WarpSpeedConfigError(
                f"entity_key/tenant_column may not use the scores table's own columns {list(SCORE_COLUMNS)}: "
                f"{clash or self.tenant_column}"
            )
        if self.features_table == self.scores_table:
            raise WarpSpeedConfigError("scores_table must differ from features_table")
        object.__setattr__(self, "entity_key", key)
