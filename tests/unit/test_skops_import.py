"""``import_skops``: the same trusted names as skops's own search, found in one pass."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from typing import Any

import pytest

from spark_jobs.skops_import import first_holders, ufuncs_without_module
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.unit


def _search(wanted: dict[str, Any], modules: dict[str, Any]) -> dict[str, str]:
    """Return what pickle's and skops's ``whichmodule`` find: one ``getattr`` per module, in order."""
    found = {}
    for name, obj in wanted.items():
        for module_name, module in modules.items():
            if module is None or module_name in ("__main__", "__mp_main__"):
                continue
            if getattr(module, name, None) is obj:
                found[name] = module_name
                break
    return found


def _module(name: str, **attrs: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    return module


def test_first_holders_finds_what_the_getattr_search_finds() -> None:
    erf, gamma, beta, other = object(), object(), object(), object()
    wanted = {"erf": erf, "gamma": gamma, "beta": beta}
    lazy = _module("lazy", __getattr__=lambda name: gamma if name == "gamma" else None)

    class Holder:  # not a module: some packages put other objects in sys.modules
        beta = other

    modules = {
        "__main__": _module("__main__", erf=erf, gamma=gamma, beta=beta),  # skipped, as pickle skips it
        "gone": None,
        "early": _module("early", erf=other),  # the same name, another object
        "lazy": lazy,  # found through its module-level __getattr__
        "holder": Holder(),
        "scipy.special": _module("scipy.special", erf=erf, gamma=gamma, beta=beta),
        "late": _module("late", beta=beta),
    }
    assert first_holders(wanted, modules) == _search(wanted, modules) == {
        "erf": "scipy.special", "gamma": "lazy", "beta": "scipy.special"}
    assert first_holders({"missing": object()}, modules) == {}


def test_ufuncs_without_module_leaves_out_a_name_two_ufuncs_share() -> None:
    class Ufunc:  # like scipy's: no __module__ unless one is given
        def __init__(self, name: str, module: str | None = None) -> None:
            self.__name__, self.module = name, module

        def __getattribute__(self, attr: str) -> Any:
            if attr == "__module__" and object.__getattribute__(self, "module") is None:
                raise AttributeError(attr)
            return object.__getattribute__(self, "module" if attr == "__module__" else attr)

    erf, erf_twin, alias = Ufunc("erf"), Ufunc("erf"), Ufunc("gamma")
    values = [erf, erf_twin, alias, alias, Ufunc("add", module="numpy"), "not a ufunc"]
    assert ufuncs_without_module(values, Ufunc) == {"gamma": alias}


TRUSTED = """
import json, sys, types
# a module loaded before scipy that holds one of its ufuncs: skops names that ufunc after it (and then
# leaves it out, not being scipy's)
sys.modules["holder"] = holder = types.ModuleType("holder")
import numpy, scipy.special
holder.erf = scipy.special.erf
if sys.argv[1] == "one-pass":
    from spark_jobs.skops_import import import_skops
    import_skops()
else:
    import skops.io
from skops.io import _trusted_types as trusted
print(json.dumps({"scipy": trusted.SCIPY_UFUNC_TYPE_NAMES, "numpy": trusted.NUMPY_UFUNC_TYPE_NAMES,
                  "left": [u.__name__ for u in vars(scipy.special).values()
                           if isinstance(u, numpy.ufunc) and getattr(u, "__module__", None) is not None]}))
"""


def test_skops_trusts_the_same_names_and_no_ufunc_keeps_a_module() -> None:
    pytest.importorskip("skops")
    out = {how: json.loads(subprocess.run([sys.executable, "-c", TRUSTED, how], cwd=REPO_ROOT, check=True,
                                          capture_output=True, text=True).stdout)
           for how in ("one-pass", "skops")}
    assert out["one-pass"] == out["skops"]
    names = out["skops"]["scipy"]
    assert len(names) > 200 and not [n for n in names if n.endswith(".erf")]
    assert out["one-pass"]["left"] == []
