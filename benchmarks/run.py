"""Run every ``benchmarks/bench_*.py`` and print one ``BENCH {json}`` line per figure.

Each module exposes ``run() -> Iterable[dict]`` yielding figures with ``name``, ``value``,
``unit`` and ``note``. Figures compare things measured side by side in this one run; no
threshold is asserted here. ``python benchmarks/run.py planner`` runs only matching modules.

``benchmarks/slow/bench_*.py`` run only with ``--slow`` (the last step of ``make bench``, or ``make
bench-rehearsal`` alone): each needs minutes and a rehearsal of its own, too much for ``make test``'s
smoke runs.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    """Run the selected benchmark modules; exit 1 if any of them raised."""
    failed = 0
    folder = HERE / "slow" if "--slow" in argv else HERE
    argv = [a for a in argv if a != "--slow"]
    for path in sorted(folder.glob("bench_*.py")):
        if argv and not any(word in path.stem for word in argv):
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        started = time.monotonic()
        try:
            spec.loader.exec_module(module)
            for figure in module.run():
                print("BENCH " + json.dumps(figure, sort_keys=True), flush=True)
        except Exception:
            failed += 1
            traceback.print_exc()
        print(f"# {path.stem} took {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
