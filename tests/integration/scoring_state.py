"""A state folder ready for score jobs: scoring tables, small features for some tenants, the seed models."""

from __future__ import annotations

from pathlib import Path

from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.embedded.seed import feature_rows, publish_seed_models, write_features
from warpspeed.ledger.tables import ensure_tables


def seeded_settings(home: Path, tenants: list[str]) -> WarpSpeedSettings:
    """Return settings on ``home`` (its REST catalog running) with tables, features and models in place."""
    settings = WarpSpeedSettings.from_mapping({"home": str(home)})
    catalog = settings.catalog.load()
    ensure_tables(catalog)
    write_features(catalog, feature_rows(tenants, base=40, spread=30))
    publish_seed_models(settings.storage_prefix)
    return settings
