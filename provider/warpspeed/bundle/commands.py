"""``warpspeed init DIR``: write a new DAG bundle to edit."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    """Add ``init`` to the ``warpspeed`` command's subparsers."""
    init = sub.add_parser("init", help="write a new DAG bundle (DAG files, config/*.yaml, example models) to edit")
    init.add_argument("dir", type=Path, help="the bundle folder (created; its dags/ is the Airflow DAG folder)")
    init.add_argument("--force", action="store_true", help="overwrite files of the templates that exist")
    init.set_defaults(run=init_bundle)


def init_bundle(args: argparse.Namespace) -> int:
    """Write the bundle and say what to do next."""
    from warpspeed.bundle.init import write_bundle

    written = write_bundle(args.dir, force=args.force)
    for path in written:
        print(f"wrote {path}")
    print(f"\nNext: cd {args.dir}; warpspeed setup; warpspeed stack up; eval \"$(warpspeed stack env)\"\n"
          "(the README.md there, and docs/byo-model.md, go on from there)")
    return 0
