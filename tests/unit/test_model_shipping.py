"""An MLflow model reaches the executors on any Spark master, not only ``local`` (issue 22's rehearsal).

The rehearsal's first run on a standalone master failed every MLflow batch with
``UNSUPPORTED_ADD_FILE.LOCAL_DIRECTORY``: ``SparkContext.addFile(folder, recursive=True)`` is refused
on every master but ``local`` (``SparkContext.addFile``: ``!isLocal && scheme == "file" && isDir``),
so it would have failed on EMR's YARN as well. The fake context below keeps that rule.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest

from spark_jobs import flavours


class MasterRules:
    """A SparkContext with Spark's rule for shipping files on a non-local master."""

    def __init__(self, master: str) -> None:
        self.master = master
        self.files: list[str] = []
        self.archives: list[str] = []

    def addFile(self, path: str, recursive: bool = False) -> None:
        if not self.master.startswith("local") and os.path.isdir(path):
            raise RuntimeError(f"[UNSUPPORTED_ADD_FILE.LOCAL_DIRECTORY] {path} is not supported on a non-local master")
        self.files.append(path)

    def addArchive(self, path: str) -> None:
        assert os.path.isfile(path), f"an archive is a file, got {path}"
        self.archives.append(path)


class Session:
    def __init__(self, master: str) -> None:
        self.sparkContext = MasterRules(master)


def mlflow_folder(root: Path) -> Path:
    folder = root / "upsell" / "v1"
    folder.mkdir(parents=True)
    signature = json.dumps([{"name": "engagement_7d", "type": "double"}])
    (folder / "MLmodel").write_text(f"flavors: {{}}\nsignature:\n  inputs: '{signature}'\n")
    (folder / "model.skops").write_bytes(b"weights")
    return folder


@pytest.mark.parametrize("master", ["yarn", "spark://127.0.0.1:7077", "local[*]"])
def test_an_mlflow_model_ships_as_one_archive_on_every_master(tmp_path: Path, master: str) -> None:
    spark: Any = Session(master)
    common = {"model": "upsell", "version": "v1", "flavour": "mlflow", "uri": mlflow_folder(tmp_path).as_uri(),
              "output_column": None, "output_index": 1}
    loaded = flavours._load_mlflow(spark, common, ())
    assert loaded.inputs == ("engagement_7d",)
    (archive,) = spark.sparkContext.archives
    assert spark.sparkContext.files == []
    # SparkFiles.get(<archive's name>) is the folder Spark unpacks it into, with MLmodel at its top
    assert loaded.shipped_name == os.path.basename(archive) and archive.endswith(".zip")
    assert sorted(zipfile.ZipFile(archive).namelist()) == ["MLmodel", "model.skops"]
