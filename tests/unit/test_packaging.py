"""What the wheel declares and carries: no top-level job packages, pyspark only where Spark runs, a license."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

from tests.paths import REPO_ROOT
from warpspeed.jobs import JOB_PACKAGES, _JobCodeFinder, job_code_root, job_package_dirs, shipped_folder

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]


def test_a_checkout_ships_its_own_top_level_folders() -> None:
    assert job_package_dirs() == [REPO_ROOT / name for name in JOB_PACKAGES]
    assert shipped_folder("dags") == REPO_ROOT / "dags"
    assert job_code_root() == REPO_ROOT


def test_setup_maps_the_job_and_bundle_folders_into_the_warpspeed_namespace() -> None:
    text = (REPO_ROOT / "setup.py").read_text(encoding="utf-8")
    mapped = (("spark_jobs", "jobs.spark_jobs"), ("maintenance", "jobs.maintenance"), ("dags", "bundle.dags"))
    for name, inside in mapped:
        assert f'"warpspeed.{inside}": "{name}"' in text
    assert 'include=["warpspeed", "warpspeed.*"]' in text  # find_packages finds nothing else top-level
    assert "packages" not in PYPROJECT["tool"]["setuptools"]  # setup.py alone lists them
    data = PYPROJECT["tool"]["setuptools"]["package-data"]
    assert "embedded/maven/*/pom.xml" in data["warpspeed"] and data["warpspeed.bundle.dags"] == ["config/*.yaml"]


def test_pyspark_is_an_extra_of_the_local_backend_and_the_embedded_stack() -> None:
    assert not any(d.startswith("pyspark") for d in PROJECT["dependencies"])
    extras = PROJECT["optional-dependencies"]
    for extra in ("spark", "embedded", "dev"):
        assert any(d.startswith("pyspark>=3.5,<3.6") for d in extras[extra]), extra



def test_moto_comes_with_the_rehearsal_only_not_with_the_embedded_stack() -> None:
    extras = PROJECT["optional-dependencies"]
    assert not any(d.startswith("moto") for d in extras["embedded"])
    assert extras["rehearsal"] == ["warpspeed-airflow-provider[embedded]", "moto[server]>=5"]
    assert any(d.startswith("moto[server]") for d in extras["dev"])  # the tests' control planes
    provider = REPO_ROOT / "provider" / "warpspeed"
    importers = sorted(str(p.relative_to(provider)) for p in provider.rglob("*.py")
                       if any(line.strip().startswith(("from moto", "import moto"))
                              for line in p.read_text(encoding="utf-8").splitlines()))
    assert all(p.startswith("embedded/rehearsal/") or p == "embedded/control_planes.py" for p in importers), importers

def test_the_distribution_says_what_it_is_and_under_which_license() -> None:
    assert "Framework :: Apache Airflow :: Provider" in PROJECT["classifiers"]
    assert PROJECT["license"] == "Apache-2.0" and PROJECT["license-files"] == ["LICENSE"]
    license_text = (REPO_ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text


def test_the_job_code_finder_claims_spark_jobs_only(tmp_path: Path) -> None:
    package = tmp_path / "shipped" / "spark_jobs"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "jobio.py").write_text("from spark_jobs.helper import VALUE\n")
    (package / "helper.py").write_text("VALUE = 42\n")
    code = textwrap.dedent(f"""
        import sys
        from warpspeed.jobs import _JobCodeFinder
        from pathlib import Path
        sys.meta_path.insert(0, _JobCodeFinder(Path({str(package)!r})))
        import spark_jobs.jobio, spark_jobs.helper
        assert spark_jobs.jobio.VALUE == 42 and spark_jobs.__file__.startswith({str(tmp_path)!r})
        assert sys.modules["spark_jobs.helper"] is spark_jobs.helper  # one module per file
        assert _JobCodeFinder(Path(".")).find_spec("maintenance") is None
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=tmp_path)
    assert out.stdout.strip() == "ok", out.stderr
    assert _JobCodeFinder(package).find_spec("spark_jobs_other") is None


def test_a_spark_jobs_on_sys_path_wins_over_the_shipped_copy(tmp_path: Path) -> None:
    """A warm engine runs from its copy of spark_jobs.zip, put first on sys.path: that copy must be the one imported."""
    for name in ("zip_copy", "shipped"):
        (tmp_path / name / "spark_jobs").mkdir(parents=True)
        (tmp_path / name / "spark_jobs" / "__init__.py").write_text(f"WHERE = {name!r}\n")
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        import warpspeed.jobs as jobs
        sys.modules.pop("spark_jobs", None)
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, jobs._JobCodeFinder)]
        jobs.shipped_folder = lambda name: Path({str(tmp_path / "shipped" / "spark_jobs")!r})
        jobs.make_job_code_importable()
        sys.path.insert(0, {str(tmp_path / "zip_copy")!r})
        import spark_jobs
        first = spark_jobs.WHERE
        sys.path.pop(0)
        del sys.modules["spark_jobs"]
        import spark_jobs
        print(first, spark_jobs.WHERE)
    """)
    # -S: no site-packages, so no editable install's finder takes part
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=False,
                         cwd=tmp_path, env={"PYTHONPATH": str(REPO_ROOT / "provider"), "PATH": "/usr/bin:/bin"})
    assert out.stdout.split() == ["zip_copy", "shipped"], out.stderr


HIDE_PYSPARK = textwrap.dedent("""
    import importlib, pkgutil, runpy, sys
    from pathlib import Path

    class HidePyspark:
        def find_spec(self, name, path=None, target=None):
            if name == "pyspark" or name.startswith("pyspark."):
                raise ModuleNotFoundError(f"No module named {name!r} (hidden by the test)")

    sys.meta_path.insert(0, HidePyspark())
    import warpspeed
    failed = []
    for info in pkgutil.walk_packages(warpspeed.__path__, "warpspeed."):
        try:
            importlib.import_module(info.name)
        except Exception as err:
            failed.append(f"{info.name}: {err!r}")
    for dag in sorted(Path(sys.argv[1]).glob("*.py")):
        runpy.run_path(str(dag))
    assert not [m for m in sys.modules if m.split(".")[0] == "pyspark"]
    print("\\n".join(failed) or "ok")
""")


def test_every_module_and_dag_file_imports_without_pyspark() -> None:
    """A worker that only drives EMR and Glue installs no pyspark: operators, hooks and DAGs still import."""
    out = subprocess.run([sys.executable, "-c", HIDE_PYSPARK, str(REPO_ROOT / "dags")], capture_output=True,
                         text=True, check=False, cwd=REPO_ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "ok", out.stdout
