"""The ``warpspeed`` console command."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``warpspeed <command>``."""
    parser = argparse.ArgumentParser(prog="warpspeed", description="Warp Speed tools")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="score one window end to end on the embedded stack")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from warpspeed.embedded.demo import main as demo_main

        return demo_main()
    return 2


if __name__ == "__main__":
    sys.exit(main())
