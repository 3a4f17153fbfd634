"""The flavour registry: every model flavour, once, with what the provider does for each.

A flavour says how a model version is stored and scored. Everything the provider does per
flavour is one :class:`Flavour` entry of :data:`REGISTRY`:

- ``default_uri``: where a version lives when ``workloads.yaml`` gives no ``uri``
  (:class:`warpspeed.models.specs.ModelSpec`);
- ``single_node``: whether the single-node Arrow engine scores it
  (:mod:`warpspeed.planning.routing`);
- ``read_inputs``: how the plan-time probe (:mod:`warpspeed.models.probe`) finds the columns a
  version reads without loading it (no MLflow or Spark on the Airflow worker);
- ``read_input_types``: the types a version's own metadata gives its inputs (an MLflow
  signature's), which the probe asks only when a column is not a number
  (:mod:`spark_jobs.feature_types`: an input the model itself types otherwise is its choice).

:func:`flavour_named` is the one lookup: a name not in the registry is a
:class:`~warpspeed.exceptions.WarpSpeedConfigError` naming the key and the known flavours, never
another flavour's branch.

The scoring job (``spark_jobs/``) runs where the provider is not installed, so it keeps its own
list and dispatch (``spark_jobs.flavours.FLAVOURS``); ``tests/unit/test_flavours.py`` fails when
the two lists differ. Adding a flavour: an entry here, its loader in ``spark_jobs/flavours.py``
(and ``spark_jobs/arrow_io.py`` if the single-node engine scores it), its scorer in
``spark_jobs/scoring.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

import yaml

from spark_jobs.flavours import signature_names, signature_types
from spark_jobs.models import parse_model
from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.storage.documents import join_uri

if TYPE_CHECKING:
    from warpspeed.storage.documents import Storage

__all__ = ["DEFAULT_FLAVOUR", "FLAVOURS", "REGISTRY", "SINGLE_NODE_FLAVOURS", "Flavour", "flavour_named"]

InputReader = Callable[[str, str, tuple[str, ...], "Storage"], tuple[str, ...]]
"""(model name, version URI, inputs declared in workloads.yaml, storage) -> the columns it reads."""
TypeReader = Callable[[str, "Storage"], Mapping[str, str]]
"""(version URI, storage) -> input -> the type the version's own metadata gives it (empty: none)."""


@dataclass(frozen=True)
class Flavour:
    """One model flavour: where its versions live by default, which engine scores it, its inputs.

    :param name: as ``workloads.yaml`` spells it (``models.<name>.flavour``).
    :param default_uri: URI template of a version (``{models_uri}``, ``{model}``, ``{version}``).
    :param single_node: the single-node Arrow engine scores it (else only Spark does).
    :param read_inputs: return the columns a version reads; raise ``FileNotFoundError`` when it
        is missing and ``ValueError`` when it is unusable.
    :param read_input_types: return the types the version itself declares for its inputs.
    """

    name: str
    default_uri: str
    single_node: bool
    read_inputs: InputReader
    read_input_types: TypeReader = lambda uri, storage: MappingProxyType({})


def _expression_inputs(model: str, uri: str, declared: tuple[str, ...], storage: Storage) -> tuple[str, ...]:
    """Return the features of a JSON logistic model document (its own list; ``declared`` is unused)."""
    return parse_model(storage.read_text(uri), expect_model=model).features


def _mlflow_inputs(model: str, uri: str, declared: tuple[str, ...], storage: Storage) -> tuple[str, ...]:
    """Return the declared inputs, else the ``MLmodel`` signature's (the file must exist either way)."""
    meta = yaml.safe_load(storage.read_text(join_uri(uri, "MLmodel")))
    names = declared or signature_names(meta)
    if not names:
        raise ValueError(f"{uri} has no input signature; set models.{model}.inputs in workloads.yaml")
    return names


def _mlflow_input_types(uri: str, storage: Storage) -> Mapping[str, str]:
    """Return the ``MLmodel`` signature's input types (the job reads them the same way)."""
    return signature_types(yaml.safe_load(storage.read_text(join_uri(uri, "MLmodel"))))


def _spark_ml_inputs(model: str, uri: str, declared: tuple[str, ...], storage: Storage) -> tuple[str, ...]:
    """Return the declared inputs of a saved ``PipelineModel`` whose ``metadata`` folder exists."""
    if not storage.list(join_uri(uri, "metadata")):
        raise FileNotFoundError(join_uri(uri, "metadata"))
    return declared


REGISTRY: Mapping[str, Flavour] = MappingProxyType({f.name: f for f in (
    Flavour("expression", "{models_uri}/{model}/{version}.json", single_node=True, read_inputs=_expression_inputs),
    Flavour("mlflow", "{models_uri}/{model}/{version}", single_node=True, read_inputs=_mlflow_inputs,
            read_input_types=_mlflow_input_types),
    Flavour("spark_ml", "{models_uri}/{model}/{version}", single_node=False, read_inputs=_spark_ml_inputs),
)})
"""Every flavour by name: ``expression`` (JSON logistic model compiled to Spark SQL), ``mlflow``
(any MLflow pyfunc model), ``spark_ml`` (a saved Spark ML ``PipelineModel``); docs/scoring.md."""

FLAVOURS: tuple[str, ...] = tuple(sorted(REGISTRY))
SINGLE_NODE_FLAVOURS: frozenset[str] = frozenset(n for n, f in REGISTRY.items() if f.single_node)
DEFAULT_FLAVOUR = "expression"
"""The flavour of a model ``workloads.yaml`` lists by name only (or does not list)."""


def flavour_named(name: object, where: str) -> Flavour:
    """Return the registered flavour ``name``; raise naming ``where`` (the config key) and the known ones."""
    found = REGISTRY.get(name) if isinstance(name, str) else None
    if found is None:
        raise WarpSpeedConfigError(f"{where} must be one of {', '.join(FLAVOURS)}, got {name!r}")
    return found
