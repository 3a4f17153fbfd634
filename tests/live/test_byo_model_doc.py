"""Issue 26 acceptance: from the wheel alone, docs/byo-model.md works as written.

Builds the wheel, installs it into a new virtualenv, and runs every ``bash`` and ``python``
block of ``docs/byo-model.md`` in order, in a folder that holds no file of the repository, with
only that virtualenv on ``PATH``: ``pip install …[embedded,models]``, ``warpspeed init``,
``warpspeed setup`` (Maven), ``warpspeed stack up``, a new feature table, four models
(scikit-learn, LightGBM, Spark ML, expression), a workload, requests, one scoring window
through ``airflow dags test``, the page's check of every score against the model's own
prediction (``predict_proba`` for scikit-learn) to 1e-9, and ``warpspeed stack down``.

The page's ``pip`` is a shell function that installs the wheel just built (``uv pip``), since
the package is not fetched from an index here; everything else runs verbatim. Blocks share
their shell state as one terminal would: each ``bash`` block starts from the exported
variables and the folder the previous one ended with. Minutes: Maven, a Spark session, a window.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.doc_blocks import doc_blocks
from tests.paths import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.live]

DOC = REPO_ROOT / "docs" / "byo-model.md"
UV = Path(sys.executable).with_name("uv")
BLOCK_TIMEOUT_S = 1800
DROPPED_ENV = ("WARPSPEED_", "AIRFLOW", "PYTHON", "VIRTUAL_ENV", "PYSPARK_", "SPARK_")
"""Variables of the test's own environment a new user's shell has not (the machine's TLS and proxy settings stay)."""


class Terminal:
    """Run a page's blocks one after another, carrying exported variables and the folder between them."""

    def __init__(self, work: Path, venv: Path, wheel: Path) -> None:
        self.state, self.logs = work / "state", work / "logs"
        self.state.mkdir()
        self.logs.mkdir()
        (self.state / "cwd").write_text(str(work / "user"))
        (work / "user").mkdir()
        path = [p for p in os.environ.get("PATH", "/usr/bin:/bin").split(":") if "/.venv/" not in f"{p}/"]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(DROPPED_ENV)} | {
            "PATH": ":".join([str(venv / "bin"), *path]), "VIRTUAL_ENV": str(venv),
            "WARPSPEED_HOME": str(work / "home"),  # the page's ~/.warpspeed, kept inside the test's folder
        }
        self.prelude = "\n".join([
            "set -euo pipefail",
            f'[ -f {self.state}/env.sh ] && source {self.state}/env.sh',
            f'cd "$(cat {self.state}/cwd)"',
            # the page's `pip install "warpspeed-airflow-provider[extras]"` installs the wheel built here (the user's
            # shell has no PYTHONDONTWRITEBYTECODE: Python writes the .pyc files of what it imports); from uv's
            # cache when it holds every package (`make setup` put them there), else from the index: online, uv
            # downloads and builds pyspark's sdist again each time (the index's answers never match its cache)
            "pip() { [ \"$1\" = install ] || return 1; shift; local a args=(); "
            f'for a in "$@"; do args+=("${{a/warpspeed-airflow-provider/{wheel}}}"); done; '
            f'{UV} pip install --quiet --offline --python {venv / "bin" / "python"} "${{args[@]}}" 2>/dev/null || '
            f'{UV} pip install --quiet --python {venv / "bin" / "python"} "${{args[@]}}"; }}',
        ])
        self.timings: list[tuple[str, float]] = []

    def run(self, index: int, language: str, code: str) -> str:
        """Run one block; return its output (the test fails with the output's end if the block fails)."""
        script = self.state / f"block{index:02d}.{'sh' if language == 'bash' else 'py'}"
        if language == "bash":
            script.write_text(f"{self.prelude}\n{code}\nexport -p > {self.state}/env.sh\npwd > {self.state}/cwd\n")
            command = ["bash", str(script)]
        else:
            script.write_text(code)
            command = ["bash", "-c", f"{self.prelude}\nexec python {shlex.quote(str(script))}"]
        log = self.logs / f"block{index:02d}.log"
        started = time.monotonic()
        with log.open("w") as out:
            proc = subprocess.run(command, env=self.env, stdout=out, stderr=subprocess.STDOUT, check=False,
                                  timeout=BLOCK_TIMEOUT_S)
        self.timings.append((code.strip().splitlines()[0][:70], time.monotonic() - started))
        output = log.read_text(errors="replace")
        assert proc.returncode == 0, f"block {index} ({language}) failed:\n{code}\n--- output:\n{output[-6000:]}"
        return output

    def stack_down(self) -> None:
        """Stop the page's stack if a failed block left it running."""
        if (self.state / "env.sh").is_file():
            subprocess.run(["bash", "-c", f"{self.prelude}\nwarpspeed stack down"], env=self.env,
                           capture_output=True, check=False, timeout=300)


@pytest.fixture
def work() -> Iterator[Path]:
    """Return a new folder under /tmp, not pytest's basetemp (whose mode a concurrent pytest run resets to 0700)."""
    with tempfile.TemporaryDirectory(prefix="warpspeed-byo-") as folder:
        yield Path(folder)


def test_a_new_user_brings_their_own_models_and_table_from_the_wheel(work: Path) -> None:
    build_env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    subprocess.run([str(UV), "build", "--wheel", "--quiet", "--out-dir", str(work / "dist"), str(REPO_ROOT)],
                   check=True, env=build_env, cwd=work)
    (wheel,) = (work / "dist").glob("warpspeed_airflow_provider-*.whl")
    venv = work / "venv"
    subprocess.run([str(UV), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, env=build_env)

    terminal = Terminal(work, venv, wheel)
    outputs = []
    try:
        for index, (language, code) in enumerate(doc_blocks(DOC.read_text(encoding="utf-8"))):
            outputs.append(terminal.run(index, language, code))
            if index == 0:  # installed: the wheel carries one top-level package and the repo's own bundle
                _check_installed(venv)
    finally:
        terminal.stack_down()
        print("\n".join(f"{seconds:7.1f} s  {first}" for first, seconds in terminal.timings))
        print(f"{sum(s for _, s in terminal.timings):7.1f} s  in all")
    checked = [line for line in outputs[-2].splitlines() if "largest difference from the model's own" in line]
    print("\n".join(checked))
    assert [line.split(":")[0] for line in checked] == ["health_risk", "health_gbm", "health_fit", "health_rule"]
    assert "stopped the stack" in outputs[-1]


def _check_installed(venv: Path) -> None:
    (site,) = (venv / "lib").glob("python3*/site-packages")
    assert not (site / "spark_jobs").exists() and not (site / "maintenance").exists()
    bundle = site / "warpspeed" / "bundle" / "dags"
    repo = sorted(p.relative_to(REPO_ROOT / "dags") for p in (REPO_ROOT / "dags").rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts)
    assert sorted(p.relative_to(bundle) for p in bundle.rglob("*") if p.is_file() and "__pycache__" not in p.parts) \
        == repo
    assert all((bundle / rel).read_bytes() == (REPO_ROOT / "dags" / rel).read_bytes() for rel in repo)
    assert (site / "warpspeed" / "embedded" / "maven" / "elasticmq" / "pom.xml").is_file()
