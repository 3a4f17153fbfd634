"""Import ``skops.io`` without its module-by-module search for scipy's ufuncs.

On its first import, ``skops.io`` lists scipy.special's ufuncs among the types it trusts, each
under the name of the module it lives in, found as :func:`pickle.whichmodule` does: from the
object's ``__module__`` or else the first loaded module that holds it, tried one ``getattr`` at
a time. scipy's ufuncs (about 230) have no ``__module__``, so each one is looked for in every
module loaded before scipy. In an Airflow process that is thousands: ``import skops.io`` took
2.9 CPU-s in an ``airflow dags test`` run's scoring task (4,219 modules loaded), against 0.4 s
in a process that had imported scipy first. Every process that saves or loads a skops-format
MLflow model (an Airflow task, a seeding command) paid it once.

:func:`import_skops` finds, in one pass over the loaded modules' dictionaries, the same first
module the search would find for each ufunc, sets it as the ufunc's ``__module__`` while
``skops.io`` is imported, then takes it away again: the names skops trusts are the same ones.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import warnings
from collections.abc import Iterable
from types import ModuleType
from typing import Any

_SKIPPED = ("__main__", "__mp_main__")  # as pickle.whichmodule


def first_holders(wanted: dict[str, Any], modules: dict[str, Any]) -> dict[str, str]:
    """Return, for each ``name -> object`` of ``wanted``, the first of ``modules`` whose ``name`` is that object.

    The same answer as trying ``getattr(module, name, None) is obj`` over ``modules`` in order:
    a plain module is read from its ``__dict__`` (the names it holds, at once); a module with a
    module-level ``__getattr__``, or any other object, through ``getattr`` as the search does.
    """
    found: dict[str, str] = {}
    names = set(wanted)
    for module_name, module in modules.items():
        if module is None or module_name in _SKIPPED:
            continue
        held = getattr(module, "__dict__", None)
        if type(module) is ModuleType and isinstance(held, dict) and "__getattr__" not in held:
            values = {name: held[name] for name in names & held.keys()}
        else:
            values = {}
            for name in names:
                try:
                    values[name] = getattr(module, name, None)
                except Exception:  # the search skips what fails, as pickle.whichmodule does
                    continue
        for name, value in values.items():
            if value is wanted[name]:
                found[name] = module_name
                names.discard(name)
        if not names:
            break
    return found


def ufuncs_without_module(values: Iterable[Any], ufunc: Any) -> dict[str, Any]:
    """Return ``__name__ -> ufunc`` for the ufuncs among ``values`` that have no ``__module__``.

    skops looks each one up by its ``__name__``; a name two different ufuncs share is left out
    (skops's own search then finds it).
    """
    by_name: dict[str, Any] = {}
    shared: set[str] = set()
    for value in values:
        if (isinstance(value, ufunc) and getattr(value, "__module__", None) is None
                and by_name.setdefault(value.__name__, value) is not value):
            shared.add(value.__name__)
    return {name: value for name, value in by_name.items() if name not in shared}


def import_skops() -> ModuleType:
    """Import and return ``skops.io``, its scipy ufuncs' modules found in one pass (see the module's text)."""
    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # as skops does around the same search
        try:
            import numpy as np
            import scipy.special
        except ImportError:
            return importlib.import_module("skops.io")
        wanted = ufuncs_without_module(vars(scipy.special).values(), np.ufunc)
        lent = first_holders(wanted, sys.modules.copy())
    try:
        for name, module_name in lent.items():
            wanted[name].__module__ = module_name
        return importlib.import_module("skops.io")
    finally:
        for name in lent:
            with contextlib.suppress(AttributeError):
                del wanted[name].__module__
