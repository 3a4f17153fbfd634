"""The built wheel alone registers the dashboard: clean virtualenv, no file copied by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from warpspeed.provider_info import DOCUMENTATION_URL, get_provider_info

ROOT = Path(__file__).resolve().parents[2]
UV = Path(sys.executable).with_name("uv")


def test_documentation_url_is_real_and_matches_the_project_urls() -> None:
    info = get_provider_info()
    assert info["integrations"][0]["external-doc-url"] == DOCUMENTATION_URL
    assert DOCUMENTATION_URL.startswith("https://") and "example.invalid" not in DOCUMENTATION_URL
    assert f'Documentation = "{DOCUMENTATION_URL}"' in (ROOT / "pyproject.toml").read_text(encoding="utf-8")


@pytest.mark.integration
def test_wheel_in_a_clean_virtualenv_lists_the_dashboard_plugin(tmp_path: Path) -> None:
    dist, venv, home = tmp_path / "dist", tmp_path / "venv", tmp_path / "airflow"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    subprocess.run([str(UV), "build", "--wheel", "--quiet", "--out-dir", str(dist), str(ROOT)],
                   check=True, env=env, cwd=tmp_path)
    (wheel,) = dist.glob("warpspeed_airflow_provider-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        metadata = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "warpspeed/dashboard/plugin.py" in names
    assert f"Project-URL: Documentation, {DOCUMENTATION_URL}" in metadata

    subprocess.run([str(UV), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, env=env)
    subprocess.run([str(UV), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), str(wheel)],
                   check=True, env=env)
    airflow_env = env | {"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                         "AIRFLOW__CORE__PLUGINS_FOLDER": str(tmp_path / "no-plugins-folder")}
    out = subprocess.run(
        [str(venv / "bin" / "airflow"), "plugins", "--output", "json"],
        env=airflow_env, capture_output=True, text=True, check=True, cwd=tmp_path,
    ).stdout
    plugins = {p["name"]: p for p in json.loads(out[out.index("["):])}
    assert "warpspeed" in plugins, out
    assert "warpspeed-airflow-provider" in plugins["warpspeed"]["source"]  # from the entry point
    assert [v["href"] for v in plugins["warpspeed"]["external_views"]] == ["/warpspeed/"]
    assert plugins["warpspeed"]["fastapi_apps"][0]["url_prefix"] == "/warpspeed"

    # issue 25: the installed wheel registers the catalog's connection type
    out = subprocess.run([str(venv / "bin" / "airflow"), "providers", "hooks", "--output", "json"],
                         env=airflow_env, capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    hooks = {h["connection_type"]: h for h in json.loads(out[out.index("["):])}
    assert hooks["warpspeed_catalog"]["class"] == "warpspeed.hooks.catalog.IcebergCatalogHook", out
    assert hooks["warpspeed_catalog"]["package_name"] == "warpspeed-airflow-provider"
