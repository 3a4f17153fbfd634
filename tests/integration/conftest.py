"""One state folder ready for score jobs, shared by the session, with its warm Spark engine."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from warpspeed.compute.local.engine import stop_engine
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.embedded.seed import feature_rows, publish_seed_models
from warpspeed.ledger.tables import FEATURES_TABLE, ensure_tables

if TYPE_CHECKING:
    from tests.conftest import RestCatalogs


@pytest.fixture(scope="session")
def scoring_home(
    tmp_path_factory: pytest.TempPathFactory, rest_catalog_for: RestCatalogs,
    keep_warm_engine: Callable[[Path], None],
) -> Iterator[Callable[[list[str]], WarpSpeedSettings]]:
    """Return a function that gives settings on the session's scoring state folder with features for ``tenants``.

    The folder has the scoring tables and the seed models; each call adds small features for the
    tenants it names that are not there yet, so modules that score disjoint tenants share the
    folder, its catalog and its warm Spark engine (stopped when the session ends).
    """
    home = tmp_path_factory.mktemp("scoring-home")
    rest_catalog_for.for_session(home)
    settings = WarpSpeedSettings.from_mapping({"home": str(home)})
    catalog = settings.catalog.load()
    ensure_tables(catalog)
    publish_seed_models(settings.storage_prefix, settings.storage())
    seeded: set[str] = set()

    def with_tenants(tenants: list[str]) -> WarpSpeedSettings:
        if new := [t for t in tenants if t not in seeded]:
            table = catalog.load_table(FEATURES_TABLE)
            table.append(feature_rows(new, base=40, spread=30).cast(table.schema().as_arrow()))
            seeded.update(new)
        return settings

    keep_warm_engine(home)
    yield with_tenants
    stop_engine(home)
