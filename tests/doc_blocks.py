"""The runnable blocks of a documentation page (fenced ``bash`` and ``python``), in order."""

from __future__ import annotations

import re

FENCE = re.compile(r"^```(bash|python)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def doc_blocks(text: str) -> list[tuple[str, str]]:
    """Return the page's (language, code) blocks that run, in order."""
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(text)]
