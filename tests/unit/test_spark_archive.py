"""Local Spark drivers get the class archive through ``SPARK_SUBMIT_OPTS`` once it exists, and only once."""

from __future__ import annotations

from pathlib import Path

import pytest

from warpspeed.compute.local.backend import REQUIRED_JARS
from warpspeed.embedded import spark_archive


@pytest.fixture
def fake_jars(tmp_path: Path) -> Path:
    """Return a jars folder with one (empty) file per jar local Spark needs."""
    for pattern in REQUIRED_JARS:
        (tmp_path / pattern.replace("*", "1.0")).write_bytes(b"")
    return tmp_path


def test_no_archive_no_option(fake_jars: Path) -> None:
    assert spark_archive.submit_opts(fake_jars, {"SPARK_SUBMIT_OPTS": "-Xss4m"}) == {}


def test_the_archive_is_added_after_the_options_already_there(fake_jars: Path) -> None:
    archive = spark_archive.archive_path(fake_jars)
    archive.parent.mkdir()
    archive.write_bytes(b"jsa")
    assert spark_archive.submit_opts(fake_jars, {"SPARK_SUBMIT_OPTS": "-Xss4m"}) == {
        "SPARK_SUBMIT_OPTS": f"-Xss4m -XX:SharedArchiveFile={archive}"}
    assert spark_archive.submit_opts(fake_jars, {}) == {"SPARK_SUBMIT_OPTS": f"-XX:SharedArchiveFile={archive}"}
    # a process that inherited it (a task, a bench run) does not get it twice
    assert spark_archive.submit_opts(fake_jars, {"SPARK_SUBMIT_OPTS": f"-XX:SharedArchiveFile={archive}"}) == {}


def test_other_jars_mean_another_archive(fake_jars: Path) -> None:
    before = spark_archive.archive_path(fake_jars)
    (fake_jars / REQUIRED_JARS[0].replace("*", "1.0")).write_bytes(b"a newer runtime")
    assert spark_archive.archive_path(fake_jars) != before


def test_a_folder_without_the_jars_gets_no_option(tmp_path: Path) -> None:
    assert spark_archive.submit_opts(tmp_path, {}) == {}
