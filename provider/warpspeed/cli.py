"""The ``warpspeed`` console command: one dispatcher over the subcommands of the rooms.

- ``warpspeed init DIR``: a new DAG bundle to edit (:mod:`warpspeed.bundle.commands`);
- ``warpspeed setup``, ``stack up|down|env``, ``tables``, ``models``, ``send``, ``scores``,
  ``demo``: the embedded stack and what a user does on it (:mod:`warpspeed.embedded.commands`);
- ``warpspeed simulate``: the cost simulator (:mod:`warpspeed.sim.commands`).

Each room registers its subcommands (``register(subparsers)``) without importing anything heavy;
a subcommand's handler imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import sys

from warpspeed.bundle import commands as bundle_commands
from warpspeed.embedded import commands as embedded_commands
from warpspeed.exceptions import WarpSpeedError
from warpspeed.sim import commands as sim_commands


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of ``warpspeed`` with every subcommand."""
    parser = argparse.ArgumentParser(prog="warpspeed", description="Warp Speed: batched multi-tenant scoring on "
                                     "Airflow. Start with `warpspeed init DIR` (see docs/byo-model.md).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for room in (bundle_commands, embedded_commands, sim_commands):
        room.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``warpspeed <command>``; a configuration error is printed (no traceback) with exit code 2."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except WarpSpeedError as err:
        print(f"warpspeed {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
