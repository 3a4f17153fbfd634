"""Issue 22, bad input: a bootstrap that fails ends the task naming the profile key, not a bare CANCELLED.

EMR cancels the steps of a cluster whose bootstrap action failed and says why only on the cluster
(``BOOTSTRAP_FAILURE: On the master instance (i-...), bootstrap action 1 returned a non-zero return
code``). The backend puts that, in the profile's terms, on the steps it took down.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import Any

from tests.paths import REPO_ROOT
from warpspeed.compute.base import ClusterRef, StepStatus
from warpspeed.compute.emr.backend import EmrComputeBackend
from warpspeed.compute.emr.failures import cluster_failure
from warpspeed.compute.flow import outcome_of
from warpspeed.config.catalog import CatalogConfig
from warpspeed.config.cluster_profiles import TAG_PROFILE
from warpspeed.config.profile_catalog import ProfileCatalog
from warpspeed.config.settings import WarpSpeedSettings

PROFILES = REPO_ROOT / "dags" / "config" / "cluster_profiles.yaml"
MESSAGE = "On the master instance (i-0abc123), bootstrap action 1 returned a non-zero return code"
LOG = "s3://b/p/emr-logs/j-1/node/i-0abc123/bootstrap-actions/1/stderr.gz"
SAID = "warpspeed bootstrap: interpreter /usr/bin/python3.11 is not on this node: set the cluster profile's python:"


def described(state: str = "TERMINATED_WITH_ERRORS", code: str | None = "BOOTSTRAP_FAILURE",
              message: str = MESSAGE) -> dict[str, Any]:
    return {"Id": "j-1", "LogUri": "s3://b/p/emr-logs/", "Tags": [{"Key": TAG_PROFILE, "Value": "scoring"}],
            "Status": {"State": state, "StateChangeReason": {"Code": code, "Message": message}}}


def test_a_bootstrap_failure_names_the_action_the_interpreter_and_the_log() -> None:
    profile = ProfileCatalog.load(PROFILES)["scoring"]
    logs = {LOG: "Collecting numpy\n" + SAID + "\n"}
    why = cluster_failure(described(), profile, logs.get)
    assert why is not None
    assert why.startswith(f"cluster j-1 TERMINATED_WITH_ERRORS (BOOTSTRAP_FAILURE: {MESSAGE})")
    assert "profiles.scoring.bootstrap_actions[0] (python-deps, {bootstrap}/install_python_deps.sh)" in why
    assert "profiles.scoring.python=/usr/bin/python3.11" in why
    assert why.endswith(f"its log {LOG}: {SAID}")
    # the log is not uploaded yet: the rest still says where to look
    assert cluster_failure(described(), profile).endswith(f"its log {LOG}")  # type: ignore[union-attr]


def test_ends_that_explain_nothing_are_left_out() -> None:
    assert cluster_failure(described("WAITING", None, ""), None) is None
    assert cluster_failure(described("TERMINATED", "USER_REQUEST", "Terminated by user request"), None) is None
    assert cluster_failure(described("TERMINATED", "ALL_STEPS_COMPLETED", "idle"), None) is None
    fleet = cluster_failure(described(code="INSTANCE_FLEET_TIMEOUT", message="no Spot capacity"), None)
    assert fleet == "cluster j-1 TERMINATED_WITH_ERRORS (INSTANCE_FLEET_TIMEOUT: no Spot capacity)"


class Hook:
    def __init__(self) -> None:
        self.described = 0

    def describe(self, cluster_id: str) -> dict[str, Any]:
        self.described += 1
        return described()

    def tags(self, cluster_id: str) -> dict[str, str]:
        return {TAG_PROFILE: "scoring"}


class S3:
    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        assert f"s3://{Bucket}/{Key}" == LOG
        return {"Body": io.BytesIO(gzip.compress(SAID.encode()))}


def test_the_backend_puts_the_clusters_reason_on_the_steps_it_took_down(tmp_path: Path) -> None:
    settings = WarpSpeedSettings.from_mapping(
        {"home": str(tmp_path), "storage_prefix": "s3://b/p"},
        catalog=CatalogConfig(kind="glue", warehouse="s3://b/wh", region="eu-west-1"))
    hook = Hook()
    backend = EmrComputeBackend(settings, profiles_file=PROFILES, hook=hook, s3_client=S3())  # type: ignore[arg-type]
    cluster = ClusterRef("scoring", "j-1", "emr")
    done = StepStatus("s-1", "warpspeed-a", "COMPLETED")
    own = StepStatus("s-2", "warpspeed-b", "FAILED", "Unknown Error", "ValueError: bad batch")
    cancelled = StepStatus("s-3", "warpspeed-c", "CANCELLED")
    assert backend.explain(cluster, [done, own]) == [done, own]
    assert hook.described == 0  # nothing to explain: no DescribeCluster
    explained = backend.explain(cluster, [done, own, cancelled])
    assert explained[:2] == [done, own]
    reason = outcome_of(explained[2], 1.0).reason or ""
    assert reason.startswith("step s-3 CANCELLED: cluster j-1 TERMINATED_WITH_ERRORS (BOOTSTRAP_FAILURE")
    assert "profiles.scoring.bootstrap_actions[0] (python-deps" in reason and reason.endswith(SAID)
