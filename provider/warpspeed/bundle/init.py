"""Write a new DAG bundle: the DAG files, their ``config/*.yaml`` and example models."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.jobs import shipped_folder


@dataclass(frozen=True)
class BundleFile:
    """One file of a new bundle: where it comes from and where it goes (relative to the bundle)."""

    source: Path
    target: Path


def template_files() -> list[BundleFile]:
    """Return every file ``warpspeed init`` writes, in a stable order.

    ``dags/*.py`` and ``dags/config/*.yaml`` from the shipped DAG bundle, the shipped expression
    models as ``models/<model>.<version>.json``, and ``README.md``.
    """
    dags = shipped_folder("dags")
    files = [BundleFile(p, Path("dags") / p.name) for p in sorted(dags.glob("*.py"))]
    files += [BundleFile(p, Path("dags/config") / p.name) for p in sorted((dags / "config").glob("*.yaml"))]
    models = Path(str(resources.files("warpspeed.embedded").joinpath("models")))
    files += [BundleFile(p, Path("models") / p.name) for p in sorted(models.glob("*.json"))]
    example = Path(str(resources.files("warpspeed.bundle").joinpath("example")))
    files.append(BundleFile(example / "README.md", Path("README.md")))
    return files


def write_bundle(dest: Path, *, force: bool = False) -> list[Path]:
    """Write a new bundle into ``dest``; return the files written.

    :param force: overwrite files that exist (otherwise an existing file is refused, and nothing
        is written).
    """
    files = template_files()
    existing = [f.target for f in files if (dest / f.target).exists()]
    if existing and not force:
        raise WarpSpeedConfigError(
            f"{dest} already has {', '.join(map(str, existing[:4]))}{' …' if len(existing) > 4 else ''}: "
            "choose a new folder, or pass --force to overwrite these files with the templates"
        )
    written = []
    for f in files:
        target = dest / f.target
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f.source, target)
        written.append(target)
    return written
