"""What every Warp Speed trigger shares: its arguments are declared once, as dataclass fields."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from airflow.triggers.base import BaseTrigger


class DeclaredTrigger(BaseTrigger):
    """Base of a trigger written as ``@dataclass(kw_only=True, eq=False, repr=False)``: its fields are its arguments.

    The triggerer rebuilds a trigger from :meth:`serialize`; deriving the constructor and
    ``serialize`` from one list of fields means an argument added later cannot be left out of
    what the trigger is rebuilt from. ``eq=False`` keeps triggers hashable by identity and
    ``repr=False`` keeps Airflow's ``repr`` (which shows the serialized arguments).
    """

    def __post_init__(self) -> None:
        super().__init__()

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the classpath and the arguments that rebuild this trigger (every field)."""
        declared: Any = self
        return f"{type(self).__module__}.{type(self).__qualname__}", {f.name: getattr(self, f.name)
                                                                      for f in fields(declared)}
