"""The score job's read split size: the batch's feature files dealt into equal tasks, a multiple of the cores."""

from __future__ import annotations

import math

import pytest

from spark_jobs.jobio import SnapshotStats
from spark_jobs.score_batch import MAX_SPLIT_BYTES, read_split_size

MIB = 1 << 20


def tasks_for(file_weight: int, files: int, split: int) -> list[int]:
    """Pack equal files into splits the way Iceberg's bin packing does with equal weights."""
    per_task = split // file_weight
    return [min(per_task, files - i) for i in range(0, files, per_task)]


@pytest.mark.parametrize(
    ("records", "files", "file_mib", "batch_rows", "cores", "tasks"),
    [
        (2_000_000, 20, 2, 2_000_000, 2, [5, 5, 5, 5]),  # Iceberg alone: 5 tasks of 4 files on 2 cores
        (10_000_000, 100, 2, 10_000_000, 2, [25, 25, 25, 25]),  # alone: 32, 32, 32, 4
        (10_000_000, 100, 2, 1_000_000, 2, [5, 5]),  # ten of the hundred files are the batch's
        (2_000_000, 20, 2, 2_000_000, 4, [5, 5, 5, 5]),
        (3_000_000, 30, 2, 3_000_000, 2, [5] * 6),  # as short as 2 x 15, and closer to 2 tasks a core
    ],
)
def test_the_batch_files_go_to_equal_tasks(records: int, files: int, file_mib: int, batch_rows: int, cores: int,
                                           tasks: list[int]) -> None:
    stats = SnapshotStats(1, records, files, files * file_mib * MIB, 4 * MIB)
    split = read_split_size(stats, batch_rows, cores)
    batch_files = math.ceil(batch_rows / (records / files))
    assert tasks_for(max(file_mib, 4) * MIB, batch_files, split) == tasks


def test_big_files_keep_the_default_split_and_an_empty_table_too() -> None:
    big = SnapshotStats(1, 10**9, 2000, 2000 * 200 * MIB, 4 * MIB)
    assert read_split_size(big, 10**8, 2) == MAX_SPLIT_BYTES
    assert read_split_size(SnapshotStats(1, 0, 0, 0, 4 * MIB), 1000, 2) == MAX_SPLIT_BYTES
