"""Staging the job packages: concurrent score tasks share one build folder (the live stack runs them at once)."""

from __future__ import annotations

import threading
import zipfile
from pathlib import Path

from warpspeed.compute.staging import ZIP_NAME, package_spark_jobs


def test_concurrent_packaging_into_one_folder_never_collides(tmp_path: Path) -> None:
    dest = tmp_path / "build" / ZIP_NAME
    writers, rounds = 6, 5
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def writer() -> None:
        for _ in range(rounds):
            barrier.wait()
            try:
                package_spark_jobs(dest)
            except BaseException as err:  # a collision shows as FileNotFoundError on the rename
                errors.append(err)

    threads = [threading.Thread(target=writer) for _ in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with zipfile.ZipFile(dest) as zf:
        names = zf.namelist()
        assert zf.testzip() is None
    assert "spark_jobs/score_batch.py" in names and "maintenance/iceberg_maintenance.py" in names
    assert sorted(p.name for p in dest.parent.iterdir()) == [ZIP_NAME]  # no temp file left behind
