"""`warpspeed init` writes the repository's own bundle; `warpspeed setup` fetches with the shipped poms."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from xml.etree import ElementTree

import pytest

from tests.paths import DAGS
from warpspeed.bundle.init import template_files
from warpspeed.cli import main
from warpspeed.embedded import jars
from warpspeed.exceptions import WarpSpeedConfigError


def test_init_writes_the_dag_bundle_byte_for_byte_with_models_and_a_readme(tmp_path: Path) -> None:
    assert main(["init", str(tmp_path / "mine")]) == 0
    bundle = tmp_path / "mine"
    repo = sorted(p.relative_to(DAGS) for p in DAGS.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    written = sorted(p.relative_to(bundle / "dags") for p in (bundle / "dags").rglob("*") if p.is_file())
    assert written == repo
    for rel in repo:
        assert (bundle / "dags" / rel).read_bytes() == (DAGS / rel).read_bytes()
    assert sorted(p.name for p in (bundle / "models").iterdir()) == ["churn_risk.v1.json", "intent_surge.v1.json"]
    assert "warpspeed stack up" in (bundle / "README.md").read_text(encoding="utf-8")


def test_init_refuses_to_overwrite_unless_forced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path)]) == 0
    workloads = tmp_path / "dags" / "config" / "workloads.yaml"
    workloads.write_text("# mine\n", encoding="utf-8")
    assert main(["init", str(tmp_path)]) == 2
    assert "--force" in capsys.readouterr().err
    assert workloads.read_text(encoding="utf-8") == "# mine\n"  # nothing was written
    assert main(["init", str(tmp_path), "--force"]) == 0
    assert workloads.read_bytes() == (DAGS / "config" / "workloads.yaml").read_bytes()


def test_every_template_file_exists() -> None:
    assert all(f.source.is_file() for f in template_files())


def test_setup_fetches_artifacts_and_each_shipped_pom_once(tmp_path: Path) -> None:
    calls: list[list[str]] = []
    artifacts: list[str] = []

    def fake_mvn(command: Sequence[str]) -> None:
        calls.append(list(command))
        pom = Path(command[command.index("-f") + 1])
        out = Path(next(a for a in command if a.startswith("-DoutputDirectory=")).split("=", 1)[1])
        if pom.parent == tmp_path:  # the local Spark jars: the pom written for them, copied into the folder itself
            for dep in ElementTree.parse(pom).getroot().iterfind(".//{*}dependencies/{*}dependency"):
                coordinate = (dep.findtext(f"{{*}}{k}") or "" for k in ("groupId", "artifactId", "version"))
                artifacts.append(":".join(coordinate))
                # each artifact alone, as `dependency:copy` fetched it
                assert [e.findtext("{*}artifactId") for e in dep.iterfind(".//{*}exclusion")] == ["*"]
            assert out == tmp_path
        else:  # a server's pom: make its classpath
            out.mkdir(parents=True)
            (out / "server.jar").write_bytes(b"jar")

    (tmp_path / "elasticmq").mkdir()
    (tmp_path / "elasticmq" / "old-version.jar").write_bytes(b"old")
    made = jars.fetch(tmp_path, run=fake_mvn, mvn="mvn")
    poms = [Path(c[c.index("-f") + 1]) for c in calls[1:]]
    assert sorted(p.parent.name for p in poms) == ["elasticmq", "iceberg-rest", "s3proxy"]
    assert all(p.is_file() and p.is_relative_to(jars.MAVEN_POMS) for p in poms)
    assert artifacts == list(jars.MAVEN_ARTIFACTS) and len(made) == len(calls) == 1 + len(poms)
    assert not (tmp_path / jars.ARTIFACTS_POM).exists()  # the pom written for the artifacts is gone
    assert sorted(p.name for p in (tmp_path / "elasticmq").iterdir()) == ["server.jar"]  # old classpath gone
    assert not list(tmp_path.glob(".*.new")) and not list(tmp_path.glob(".*.old"))
    calls.clear()
    assert jars.fetch(tmp_path, run=fake_mvn, mvn="mvn") == [] and calls == []  # up to date
    assert len(jars.fetch(tmp_path, run=fake_mvn, mvn="mvn", force=True)) == 1 + len(poms)


def test_setup_without_maven_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(jars.shutil, "which", lambda name: None)
    with pytest.raises(WarpSpeedConfigError, match=r"Maven 3 \(`mvn`\) and Java 17"):
        jars.fetch(tmp_path)
    assert not (tmp_path / jars.STAMP).exists()


def test_a_failed_maven_call_names_the_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "mvn"
    fake.write_text("#!/bin/sh\necho 'Could not resolve artifact' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(WarpSpeedConfigError, match=r"dependency:copy.*failed \(exit 1\):\nCould not resolve"):
        jars.fetch(tmp_path / "jars", mvn=str(fake))
    assert not (tmp_path / "jars" / jars.STAMP).exists()


@pytest.mark.parametrize(("given", "seen"), [(None, jars.QUICK_MAVEN_OPTS), ("-Xmx2g", "-Xmx2g")])
def test_maven_starts_with_quick_jvm_options_unless_the_user_has_their_own(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, given: str | None, seen: str) -> None:
    if given is None:
        monkeypatch.delenv("MAVEN_OPTS", raising=False)
    else:
        monkeypatch.setenv("MAVEN_OPTS", given)
    fake = tmp_path / "mvn"
    fake.write_text(f"#!/bin/sh\nprintf '%s' \"$MAVEN_OPTS\" > {tmp_path / 'opts'}\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(WarpSpeedConfigError):
        jars.fetch(tmp_path / "jars", mvn=str(fake))
    assert (tmp_path / "opts").read_text() == seen
