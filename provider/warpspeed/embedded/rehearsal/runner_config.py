"""What the step runner process is started with: one JSON file the rehearsal stack writes (0600, it holds a key)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from warpspeed.embedded.rehearsal.command_runner import NodeIdentity
from warpspeed.embedded.rehearsal.spark_conf import Node


@dataclass(frozen=True)
class RunnerConfig:
    """The step runner's settings.

    :param home: the runner's folder (clusters, steps, Spark logs, its process registry).
    :param python_home: the node Python's ``PYTHONUSERBASE`` (kept across rehearsals: the bootstrap's
        ``pip`` then finds its requirements installed).
    :param hadoop_jars: s3a on the nodes (hadoop-aws and its SDK).
    :param iceberg_jars: the Iceberg runtime and AWS bundle (clusters with ``iceberg.enabled``).
    :param idle_seconds: the idle timeout every cluster gets instead of its auto-termination policy's
        (None: the policy's, as on EMR).
    :param max_steps: steps and Glue runs running at once on this machine, over all clusters.
    """

    home: Path
    identity: NodeIdentity
    python_home: Path
    hadoop_jars: tuple[str, ...]
    iceberg_jars: tuple[str, ...]
    workers: int = 2
    worker_memory: str = "1g"
    idle_seconds: float | None = None
    max_steps: int = 3
    poll_seconds: float = 1.0

    def node(self, master_url: str) -> Node:
        """Return what every node of the runner's clusters has."""
        return Node(master_url=master_url, s3_endpoint=self.identity.s3_endpoint, hadoop_jars=self.hadoop_jars,
                    iceberg_jars=self.iceberg_jars, executor_memory=self.worker_memory)

    def write(self, path: Path) -> Path:
        """Write the config as JSON readable by its owner only; return ``path``."""
        raw = asdict(self) | {"home": str(self.home), "python_home": str(self.python_home)}
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(raw, out)
        return path

    @classmethod
    def read(cls, path: Path) -> RunnerConfig:
        """Read a config :meth:`write` wrote."""
        raw = json.loads(path.read_text())
        return cls(**raw | {
            "home": Path(raw["home"]), "python_home": Path(raw["python_home"]),
            "identity": NodeIdentity(**raw["identity"]),
            "hadoop_jars": tuple(raw["hadoop_jars"]), "iceberg_jars": tuple(raw["iceberg_jars"]),
        })
