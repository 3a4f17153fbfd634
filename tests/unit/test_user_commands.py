"""What a user does on a stack: create and load a feature table, publish a model, send requests, read scores."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pyarrow as pa
import pytest
from moto import mock_aws

from warpspeed.cli import build_parser
from warpspeed.config.catalog import CatalogConfig
from warpspeed.config.s3 import EmbeddedS3, embedded_bucket, embedded_endpoint_file
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.config.workloads import WorkloadCatalog
from warpspeed.embedded import commands, feature_tables, registry, scores, send
from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.intake.schema import validate_message

WORKLOADS = {"workloads": {"orgs": {
    "features_table": "crm.org_health", "entity_key": ["member_no"], "tenant_column": "org",
    "scores_table": "crm.org_health_scores",
    "models": {"health_risk": {"flavour": "mlflow", "output_index": 1}, "health_rule": {"flavour": "expression"}},
}}}


@pytest.fixture
def catalog(tmp_path: Path) -> object:
    return CatalogConfig.embedded(tmp_path).load()


@pytest.fixture
def workloads() -> WorkloadCatalog:
    return WorkloadCatalog.from_dict(WORKLOADS)


def test_a_feature_table_is_created_from_a_schema_file_and_loaded_from_csv(catalog, tmp_path: Path) -> None:
    schema_file = tmp_path / "schema.json"
    schema_file.write_text(json.dumps({"org": "string", "member_no": "long", "logins_30d": "double"}))
    feature_tables.create_table(catalog, "crm.org_health", feature_tables.read_schema_file(schema_file), ["org"])
    rows = tmp_path / "rows.csv"
    rows.write_text("member_no,org,logins_30d,label\n7,acme,1.5,1\n0012,acme,,0\n")  # any column order, extras
    assert feature_tables.load_rows(catalog, "crm.org_health", rows) == 2
    table = catalog.load_table("crm.org_health")
    assert [f.name for f in table.spec().fields] == ["org"]
    got = table.scan().to_arrow().sort_by("member_no").to_pylist()
    assert got == [{"org": "acme", "member_no": 7, "logins_30d": 1.5},
                   {"org": "acme", "member_no": 12, "logins_30d": None}]  # "0012" is the long 12
    assert feature_tables.load_rows(catalog, "crm.org_health", rows, overwrite=True) == 2
    assert "crm.org_health: 2 rows, partitioned by ['org']" in feature_tables.describe(catalog, "crm.org_health")


def test_table_mistakes_are_refused_with_the_fix(catalog, tmp_path: Path) -> None:
    with pytest.raises(WarpSpeedConfigError, match="column 'x' has type 'varchar'; use one of string"):
        feature_tables.arrow_schema({"x": "varchar"})
    schema = feature_tables.arrow_schema({"org": "string", "n": "int"})
    with pytest.raises(WarpSpeedConfigError, match=r"name it <namespace>\.<table>"):
        feature_tables.create_table(catalog, "flat", schema)
    with pytest.raises(WarpSpeedConfigError, match=r"partition column\(s\) \['tenant'\] not in the schema"):
        feature_tables.create_table(catalog, "crm.t", schema, ["tenant"])
    feature_tables.create_table(catalog, "crm.t", schema)
    with pytest.raises(WarpSpeedConfigError, match="exists already; load rows into it"):
        feature_tables.create_table(catalog, "crm.t", schema)
    bad = tmp_path / "bad.csv"
    bad.write_text("org,n\nacme,many\n")
    with pytest.raises(WarpSpeedConfigError, match="do not fit the table's schema"):
        feature_tables.load_rows(catalog, "crm.t", bad)
    with pytest.raises(WarpSpeedConfigError, match=r"load rows from \.csv, \.parquet or \.jsonl"):
        feature_tables.load_rows(catalog, "crm.t", tmp_path / "rows.xlsx")


def test_requests_from_flags_and_files_are_what_intake_accepts(workloads: WorkloadCatalog, tmp_path: Path) -> None:
    doc = send.request_doc("orgs", "health_risk", "v1", "acme", accounts=1800)
    assert validate_message(json.dumps(doc), allowed_models=workloads.allowed_models).ok
    lines = tmp_path / "requests.jsonl"
    lines.write_text('{"tenant_id": "acme", "model": "health_rule", "model_version": "v2", "workload": "orgs"}\n\n'
                     '{"tenant_id": "Bad!", "model": "nope", "model_version": "v1", "workload": "orgs"}\n')
    docs = send.docs_from_file(lines)
    assert [d["schema_version"] for d in docs] == [1, 1] and docs[0]["request_id"] != docs[1]["request_id"]
    refused = send.refusals(docs, workloads.allowed_models)
    assert len(refused) == 1 and refused[0].startswith("request 2 (Bad!, nope): ")
    array = tmp_path / "requests.json"
    array.write_text(json.dumps([docs[0]]))
    assert send.docs_from_file(array) == [docs[0]]  # given ids and times are kept
    array.write_text("[1]")
    with pytest.raises(WarpSpeedConfigError, match="request 1 is not a JSON object"):
        send.docs_from_file(array)


def test_sent_requests_arrive_on_the_queue() -> None:
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="requests")["QueueUrl"]
        docs = [send.request_doc("orgs", "health_risk", "v1", f"t{i}") for i in range(12)]
        assert send.send_docs(sqs, url, docs) == 12
        bodies = []
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
            bodies += [json.loads(m["Body"]) for m in batch]
        assert sorted(b["request_id"] for b in bodies) == sorted(d["request_id"] for d in docs)


def test_scores_print_the_asked_slices_sorted_by_key(catalog, workloads: WorkloadCatalog) -> None:
    orgs = workloads["orgs"]
    assert scores.read_slice(catalog, orgs, ["acme"], "health_risk").num_rows == 0  # nothing scored yet
    catalog.create_namespace("crm")
    rows = pa.table({"org": ["acme", "acme", "globex", "acme"], "model": ["health_risk", "health_risk",
                     "health_risk", "health_rule"], "model_version": ["v1"] * 4, "member_no": [9, 2, 1, 2],
                     "score": [0.9, 0.2, 0.1, 0.5]})
    catalog.create_table("crm.org_health_scores", schema=rows.schema).append(rows)
    got = scores.read_slice(catalog, orgs, ["acme"], "health_risk")
    assert got.column("member_no").to_pylist() == [2, 9]
    assert scores.read_slice(catalog, orgs, ["acme", "globex"], "health_risk", "v1").num_rows == 3
    assert scores.read_slice(catalog, orgs, ["acme"], "health_risk", "v2").num_rows == 0
    csv_text = scores.render(got, "csv")
    assert csv_text.splitlines()[0] == '"org","model","model_version","member_no","score"'
    assert [json.loads(line)["member_no"] for line in scores.render(got, "jsonl").splitlines()] == [2, 9]
    table = scores.render(got, "table", limit=1).splitlines()
    assert table[0].split() == ["org", "model", "model_version", "member_no", "score"]
    assert table[-1] == "… 1 more rows (--limit)"


@pytest.fixture
def model_folder(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "health_risk_v1"
    (folder / "sub").mkdir(parents=True)
    (folder / "MLmodel").write_text("flavors: {}\n")
    (folder / "sub" / "model.skops").write_bytes(b"\x00\x01")
    yield folder


def test_a_model_is_published_where_its_workload_loads_it(workloads: WorkloadCatalog, model_folder: Path,
                                                          tmp_path: Path) -> None:
    prefix = (tmp_path / "storage").as_uri()
    uri = registry.version_uri(workloads, "health_risk", "v1", prefix)
    assert uri == f"{prefix}/models/health_risk/v1"
    assert registry.version_uri(workloads, "health_rule", "v3", prefix) == f"{prefix}/models/health_rule/v3.json"
    with pytest.raises(WarpSpeedConfigError, match="no workload runs model 'other'"):
        registry.version_uri(workloads, "other", "v1", prefix)
    target = tmp_path / "storage" / "models" / "health_risk" / "v1"
    target.mkdir(parents=True)
    (target / "stale.pkl").write_bytes(b"old")
    written = registry.publish(model_folder, uri)
    assert sorted(Path(p).relative_to(target).as_posix() for p in written) == ["MLmodel", "sub/model.skops"]
    assert sorted(p.name for p in target.rglob("*") if p.is_file()) == ["MLmodel", "model.skops"]  # stale gone
    with pytest.raises(WarpSpeedConfigError, match="register the model with MLflow"):
        registry.publish(model_folder, "models:/health_risk/1")


def test_a_model_is_published_to_s3(model_folder: Path) -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="ml-models")
        s3.put_object(Bucket="ml-models", Key="models/health_risk/v1/stale.pkl", Body=b"old")
        written = registry.publish(model_folder, "s3://ml-models/models/health_risk/v1", lambda: s3)
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="ml-models")["Contents"])
    assert keys == ["models/health_risk/v1/MLmodel", "models/health_risk/v1/sub/model.skops"]
    assert sorted(written) == [f"s3://ml-models/{k}" for k in keys]


def test_models_publish_uses_the_embedded_s3_servers_own_client(model_folder: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # On `warpspeed stack up` the AWS connection's endpoint is the SQS server's: a model published through
    # it reached ElasticMQ ("MissingAction" on ListObjectsV2). Storage's own client goes to the S3 server.
    home = tmp_path / "home"
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"stack": {"access_key_id": "stack-key", "secret_access_key": "s"}}))
    embedded_endpoint_file(home).parent.mkdir(parents=True)
    embedded_endpoint_file(home).write_text(
        EmbeddedS3("http://127.0.0.1:9", "us-east-1", keys, embedded_bucket(home)).to_json())
    workloads_file = tmp_path / "workloads.yaml"
    workloads_file.write_text(json.dumps(WORKLOADS))
    monkeypatch.setattr(commands, "airflow_settings", lambda: WarpSpeedSettings.from_mapping({"home": str(home)}))
    published = {}

    def publish(source: Path, uri: str, s3_client) -> list[str]:
        published.update(uri=uri, client=s3_client())
        return []

    monkeypatch.setattr(registry, "publish", publish)
    args = build_parser().parse_args(["models", "publish", "health_risk", "v1", str(model_folder),
                                      "--workloads", str(workloads_file)])
    assert args.run(args) == 0
    assert published["uri"] == f"s3://{embedded_bucket(home)}/storage/models/health_risk/v1"
    assert published["client"].meta.endpoint_url == "http://127.0.0.1:9"
