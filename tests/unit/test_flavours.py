"""One flavour list: the provider's registry and the scoring job's dispatch agree, and an unknown flavour is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from spark_jobs import arrow_io, arrow_scoring, flavours, scoring
from spark_jobs.flavours import LoadedModel
from spark_jobs.models import ModelError
from warpspeed.config.workloads import WorkloadCatalog
from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.models import flavours as registry
from warpspeed.models.probe import probe_models
from warpspeed.storage.documents import LocalStorage

UNKNOWN = "onnx"


def test_the_provider_and_the_scoring_job_know_the_same_flavours() -> None:
    assert tuple(sorted(flavours.FLAVOURS)) == registry.FLAVOURS
    assert frozenset(flavours.SINGLE_NODE_FLAVOURS) == registry.SINGLE_NODE_FLAVOURS
    assert registry.DEFAULT_FLAVOUR == flavours.DEFAULT_FLAVOUR
    # the Spark job scores expression models together and every other flavour with its own transform
    assert {"expression", *scoring.PER_MODEL_SCORERS} == set(flavours.FLAVOURS)
    # a model the manifest does not list is found where the provider's default URI puts it
    default = registry.REGISTRY[registry.DEFAULT_FLAVOUR].default_uri.replace("{models_uri}", "s3://b/models")
    assert flavours.default_spec("s3://b/models/")["uri"] == default


@pytest.mark.parametrize("spec", [{"flavour": UNKNOWN}, {"flavour": UNKNOWN, "uri": "s3://b/m/{version}"}])
def test_an_unknown_flavour_is_refused_when_the_workloads_file_loads(spec: dict[str, str]) -> None:
    with pytest.raises(WarpSpeedConfigError, match=r"workloads\.scoring: models\.pipe\.flavour must be one of "
                                                   r"expression, mlflow, spark_ml, got 'onnx'$"):
        WorkloadCatalog.from_dict({"workloads": {"scoring": {"models": {"pipe": spec}}}})


def test_the_probe_refuses_an_unknown_flavour_instead_of_checking_it_as_spark_ml(tmp_path: Path) -> None:
    workloads = WorkloadCatalog.from_dict({"workloads": {"scoring": {"models": {"pipe": {"flavour": "spark_ml"}}}}})
    spec = workloads.workloads["scoring"].models["pipe"]
    object.__setattr__(spec, "flavour", UNKNOWN)  # past the config check, as a spec changed after loading would be
    (tmp_path / "pipe" / "v1" / "metadata").mkdir(parents=True)  # what a spark_ml check would accept
    (tmp_path / "pipe" / "v1" / "metadata" / "part-00000").write_text("{}")
    with pytest.raises(WarpSpeedConfigError, match=r"workloads\.scoring: models\.pipe\.flavour must be one of "
                                                   r"expression, mlflow, spark_ml, got 'onnx'"):
        probe_models(workloads, [("scoring", "pipe", "v1")], LocalStorage(), tmp_path.as_uri(), lambda t: ["a"])


def test_both_engines_refuse_to_load_an_unknown_flavour() -> None:
    spec = {"flavour": UNKNOWN, "uri": "file:///nowhere/{model}/{version}"}
    message = f"model m v1: flavour '{UNKNOWN}' is not one of expression, mlflow, spark_ml"
    with pytest.raises(ModelError, match=message):
        flavours.load_model(None, "m", "v1", spec)  # refused before Spark is touched
    with pytest.raises(ModelError, match=message):
        arrow_io.load_model("m", "v1", spec)
    with pytest.raises(ModelError, match="flavour spark_ml runs on the Spark engine only"):
        arrow_io.load_model("m", "v1", {"flavour": "spark_ml", "uri": "file:///nowhere/{version}"})


def loaded(flavour: str) -> LoadedModel:
    return LoadedModel("m", "v1", flavour, "file:///m/v1", ("x",))


def test_the_spark_job_scores_each_flavour_with_its_own_transform_and_never_guesses() -> None:
    assert scoring.scorer_for(loaded("mlflow")) is scoring.score_mlflow
    assert scoring.scorer_for(loaded("spark_ml")) is scoring.score_spark_ml
    with pytest.raises(ModelError, match=f"model m v1: flavour '{UNKNOWN}' is not one of mlflow, spark_ml"):
        scoring.scorer_for(loaded(UNKNOWN))


def test_the_single_node_engine_scores_no_flavour_as_another() -> None:
    rows = pa.table({"tenant_id": ["t1"], "account_id": ["a1"], "x": [1.0]})

    class Pyfunc:
        def predict(self, frame: object) -> list[float]:
            return [0.5]

    keys = ["tenant_id", "account_id"]
    scored = arrow_scoring.score_model(rows, loaded("mlflow"), keys, Pyfunc())
    assert scored.column("score").to_pylist() == [0.5]
    for flavour in (UNKNOWN, "spark_ml"):
        with pytest.raises(ModelError, match=f"flavour '{flavour}' is not one of expression, mlflow"):
            arrow_scoring.score_model(rows, loaded(flavour), keys, Pyfunc())


def test_the_probe_reads_an_mlflow_signature_the_way_the_job_does(tmp_path: Path) -> None:
    signature = json.dumps([{"name": "a", "type": "double"}, {"type": "double"}, {"name": "b", "type": "long"}])
    (tmp_path / "MLmodel").write_text(f"signature:\n  inputs: '{signature}'\n")
    reader = registry.REGISTRY["mlflow"].read_inputs
    assert reader("m", tmp_path.as_uri(), (), LocalStorage()) == flavours.signature_inputs(str(tmp_path)) == ("a", "b")
    assert reader("m", tmp_path.as_uri(), ("c",), LocalStorage()) == ("c",)
