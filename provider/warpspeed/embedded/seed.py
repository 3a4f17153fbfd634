"""Synthetic data for the embedded stack: models, Tier-2 features and scoring requests."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import TYPE_CHECKING, Any

from warpspeed.embedded.send import send_bodies
from warpspeed.ledger.tables import FEATURE_COLUMNS, FEATURES_TABLE
from warpspeed.storage.documents import Storage, join_uri, storage_for, upload_folder
from warpspeed.window.manifests import models_uri

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog


__all__ = [  # send_bodies moved to warpspeed.embedded.send (`warpspeed send` imports no pyiceberg); kept for callers
    "SKLEARN_DEMO_MODEL", "accounts_for", "feature_rows", "invalid_bodies", "pinned_requirements",
    "publish_seed_models", "save_sklearn_model", "scoring_requests", "send_bodies", "tenant_ids",
    "train_sklearn_model", "write_features",
]

SKLEARN_DEMO_MODEL = "upsell_propensity"


def publish_seed_models(storage_prefix: str, storage: Storage | None = None) -> list[str]:
    """Publish the demo's models: the shipped expression models and a freshly trained MLflow one.

    :param storage: the storage of ``storage_prefix`` (default: :func:`storage_for` it, AWS's
        default S3 client for ``s3://``; settings give theirs with :meth:`WarpSpeedSettings.storage`).
    """
    storage = storage or storage_for(storage_prefix)
    uris = []
    for entry in sorted(resources.files("warpspeed.embedded").joinpath("models").iterdir(), key=str):
        if not entry.name.endswith(".json"):
            continue
        doc = json.loads(entry.read_text("utf-8"))
        uri = join_uri(models_uri(storage_prefix), doc["model"], f"{doc['version']}.json")
        storage.write_text(uri, json.dumps(doc, indent=1))
        uris.append(uri)
    uris.append(save_sklearn_model(join_uri(models_uri(storage_prefix), SKLEARN_DEMO_MODEL, "v1"), storage))
    return uris


def train_sklearn_model(rows: int = 4000, seed: int = 5) -> Any:
    """Train the demo's scikit-learn pipeline (impute, scale, logistic regression) in about a second."""
    import numpy as np
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = feature_rows(tenant_ids(2), seed=seed, base=rows // 2, spread=1).select(list(FEATURE_COLUMNS)).to_pandas()
    rng = np.random.default_rng(seed)
    logit = (0.25 * np.log1p(frame["engagement_30d"].fillna(0)) + 0.02 * (frame["intent_score"].fillna(50) - 50)
             - 0.1 * np.log1p(frame["employee_count"].fillna(100)) + rng.normal(0, 0.5, len(frame)))
    label = (logit > np.median(logit)).astype(int)
    model = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression(max_iter=200))
    return model.fit(frame, label)


def pinned_requirements() -> list[str]:
    """Return the demo model's pip requirements (given, so MLflow skips its slow inference subprocess)."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("scikit-learn", "skops", "numpy", "pandas")]


def save_sklearn_model(uri: str, storage: Storage | None = None) -> str:
    """Train the demo model and save it as an MLflow model folder at ``uri`` (``predict_proba`` as pyfunc)."""
    import tempfile
    from pathlib import Path

    import mlflow.sklearn
    from mlflow.models import infer_signature

    from spark_jobs.skops_import import import_skops

    import_skops()  # before MLflow imports it to save in skops format (seconds less where Airflow is loaded)
    model = train_sklearn_model()
    sample = feature_rows(tenant_ids(1), base=5, spread=1).select(list(FEATURE_COLUMNS)).to_pandas()
    with tempfile.TemporaryDirectory() as tmp:
        folder = f"{tmp}/model"
        mlflow.sklearn.save_model(model, folder, signature=infer_signature(sample, model.predict_proba(sample)),
                                  pyfunc_predict_fn="predict_proba", skops_trusted_types=["numpy.dtype"],
                                  pip_requirements=pinned_requirements())
        upload_folder(storage or storage_for(uri), Path(folder), uri)
    return uri


def tenant_ids(count: int) -> list[str]:
    """Return ``count`` stable tenant ids."""
    return [f"tenant-{i:03d}" for i in range(count)]


def accounts_for(tenant_index: int, base: int = 2000, spread: int = 3000) -> int:
    """Return a stable, varied number of accounts for a tenant."""
    return base + (tenant_index * 7919) % spread


def feature_rows(tenants: list[str], seed: int = 7, base: int = 2000, spread: int = 3000) -> Any:
    """Return a pyarrow table of realistic-looking features; about 3% of values are missing."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    columns: dict[str, list[Any]] = {"tenant_id": [], "account_id": []}
    numeric: dict[str, list[Any]] = {c: [] for c in FEATURE_COLUMNS}
    for index, tenant in enumerate(tenants):
        n = accounts_for(index, base, spread)
        columns["tenant_id"].append(np.full(n, tenant, dtype=object))
        columns["account_id"].append(np.array([f"{tenant}-a{j:06d}" for j in range(n)], dtype=object))
        values = {
            "engagement_7d": rng.poisson(4.0, n).astype(float),
            "engagement_30d": rng.poisson(15.0, n).astype(float),
            "intent_score": rng.uniform(0, 100, n),
            "employee_count": np.round(rng.lognormal(4.5, 1.2, n)),
            "annual_revenue": np.round(rng.lognormal(14.0, 1.5, n)),
        }
        for name, arr in values.items():
            mask = rng.random(n) < 0.03
            numeric[name].append(np.where(mask, np.nan, arr))
    now = datetime.now(UTC)
    arrays = {k: np.concatenate(v) for k, v in columns.items()}
    total = len(arrays["tenant_id"])
    data = {
        "tenant_id": pa.array(arrays["tenant_id"], pa.string()),
        "account_id": pa.array(arrays["account_id"], pa.string()),
    }
    for name in FEATURE_COLUMNS:
        column = np.concatenate(numeric[name])
        data[name] = pa.array(column, pa.float64(), mask=np.isnan(column))
    data["updated_at"] = pa.array([now] * total, pa.timestamp("us", tz="UTC"))
    return pa.table(data)


def write_features(catalog: Catalog, rows: Any) -> int:
    """Replace the features table's content with ``rows``; return the row count."""
    table = catalog.load_table(FEATURES_TABLE)
    table.overwrite(rows.cast(table.schema().as_arrow()))
    return int(rows.num_rows)


def scoring_requests(tenants: list[str], count: int, *, seed: int = 11) -> Iterator[dict[str, Any]]:
    """Yield ``count`` valid request documents: every tenant once, then repeats (some superseding).

    :param seed: the random choice of the repeats' tenants and models.
    """
    rng = random.Random(seed)
    models = [("scoring", "churn_risk"), ("scoring", "upsell_propensity"), ("intent", "intent_surge")]
    now = datetime.now(UTC)
    for i in range(count):
        tenant_index = i % len(tenants) if i < len(tenants) else rng.randrange(len(tenants))
        workload, model = models[i % len(models)] if i < len(tenants) else rng.choice(models)
        yield {
            "schema_version": 1,
            "request_id": f"req-{uuid.uuid4()}",  # new ids each run: a rerun really rescores
            "tenant_id": tenants[tenant_index],
            "model": model,
            "model_version": "v1",
            "workload": workload,
            "priority": "high" if i % 10 == 0 else "normal",
            "estimated_accounts": accounts_for(tenant_index),
            "requested_at": (now - timedelta(seconds=count - i)).isoformat(),
        }


def invalid_bodies(count: int) -> list[str]:
    """Return bodies that intake must refuse (each for a different reason)."""
    samples = [
        '{"schema_version": 1, "tenant_id": "Bad Tenant!", "model": "churn_risk"}',
        "this is not json",
        '{"schema_version": 2, "request_id": "r-future"}',
        json.dumps({"schema_version": 1, "request_id": "r-x", "tenant_id": "t1", "model": "nope",
                    "model_version": "v1", "workload": "unknown", "requested_at": "2026-01-01T00:00:00Z"}),
    ]
    return [samples[i % len(samples)] for i in range(count)]
