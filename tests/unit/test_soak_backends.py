"""``SOAK_BACKEND``: the soak on the local backend or on the production rehearsal (``emr``), without servers.

The emr soak itself runs the live stack on the rehearsal (docs/emr.md, "The soak on the rehearsal");
these pin what its chaos owes and how a wrong value is refused.
"""

from __future__ import annotations

import pytest

from warpspeed.embedded.soak.backends import EMR_MUST_KILL, NO_WARM_ENGINE
from warpspeed.embedded.soak.chaos import MUST_KILL, SERVERS, owed_kills
from warpspeed.embedded.soak.run import SoakConfig, config_from_env
from warpspeed.exceptions import WarpSpeedConfigError


def test_soak_backend_emr_owes_no_warm_engine_kill_and_the_s3_server_first() -> None:
    config = config_from_env({"SOAK_BACKEND": "emr", "SOAK_KILLS": "1", "SOAK_WINDOWS": "2", "SOAK_REQUESTS": "300"})
    assert config.backend == "emr" and config.chaos.at_least == {"s3": 1}
    weights = config.chaos.weights or {}
    assert all(weights[a] == 0 for a in NO_WARM_ENGINE) and weights["task"] > 0 and weights["postgres"] > 0
    assert set(EMR_MUST_KILL) == set(MUST_KILL) - {"engine"} and EMR_MUST_KILL[0] == "s3"
    assert config_from_env({"SOAK_BACKEND": "emr"}).chaos.at_least == owed_kills(12, EMR_MUST_KILL)
    assert set(SERVERS) <= set(EMR_MUST_KILL)
    local = config_from_env({})
    assert local.backend == "local" and local.chaos.weights is None and local.chaos.at_least == owed_kills(12)


def test_an_unknown_soak_backend_names_the_variable() -> None:
    with pytest.raises(WarpSpeedConfigError, match=r"SOAK_BACKEND='yarn': the soak runs on local or emr"):
        config_from_env({"SOAK_BACKEND": "yarn"})
    with pytest.raises(WarpSpeedConfigError, match=r"SoakConfig.backend='k8s'"):
        SoakConfig(backend="k8s")
