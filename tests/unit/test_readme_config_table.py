"""README's configuration table lists every `[warpspeed]` key with the provider's own default."""

from __future__ import annotations

import re

from tests.paths import REPO_ROOT
from warpspeed.provider_info import CONFIG_OPTIONS


def _table() -> dict[str, str]:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Configuration"):]
    table = section[section.index("| key |"):]
    rows = {}
    for line in table[:table.index("\n\n")].splitlines()[2:]:  # after the header and its rule
        keys, default = line.split(" | ")[:2]
        for key in re.findall(r"`([a-z_]+)`", keys):
            rows[key] = default
    return rows


def test_every_key_has_a_row_with_the_providers_default() -> None:
    rows = _table()
    assert sorted(rows) == sorted(CONFIG_OPTIONS)
    for key, option in CONFIG_OPTIONS.items():
        if option["default"]:
            assert rows[key] == f"`{option['default']}`", key
