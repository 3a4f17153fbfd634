"""``make rehearsal``: the live stack of ``make airflow`` with ``compute_backend = emr``, on the rehearsal.

    python -m warpspeed.embedded.rehearsal                  # run it (Ctrl-C stops everything)
    python -m warpspeed.embedded.rehearsal spot [REGEX]     # the next matching Spark step loses its Spot nodes
    python -m warpspeed.embedded.rehearsal idle SECONDS     # every cluster's idle timeout from now on

Airflow (api-server, scheduler, dag-processor, triggerer) runs the shipped DAG bundle; the scoring
window creates one EMR cluster per workload from ``dags/config/cluster_profiles.yaml`` on the
rehearsal's control plane, reuses it across windows, and the clusters idle out after their
profile's ``idle_timeout_seconds`` (``REHEARSAL_IDLE_SECONDS`` shortens it). ``WINDOW_MINUTES``
(default 5) sets the window. State in ``$WARPSPEED_HOME/rehearsal`` (kept; the next run starts over).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path

from warpspeed.config.settings import WarpSpeedSettings, default_home
from warpspeed.embedded.airflow_rest import ADMIN_USER
from warpspeed.embedded.live import ProducerConfig
from warpspeed.embedded.rehearsal.live import live_rehearsal
from warpspeed.embedded.rehearsal.stack import order as send

PRODUCER = ProducerConfig(tenants=6, requests_per_window=10, invalid_per_window=1, chunks_per_window=2)


def state_folder() -> Path:
    """Return the folder ``make rehearsal`` keeps its state in."""
    return Path(os.environ.get("WARPSPEED_HOME") or default_home()).resolve() / "rehearsal"


def order(what: str, args: list[str]) -> int:
    """Send an order (``spot``, ``idle``) to the running rehearsal of this state folder."""
    endpoint_file = state_folder() / "emr" / "control-plane.endpoint"
    if not endpoint_file.exists():
        print(f"no rehearsal runs in {state_folder()} (start it with `make rehearsal`)", file=sys.stderr)
        return 1
    control_plane = endpoint_file.read_text().strip()
    if what == "spot":
        pattern = args[0] if args else "warpspeed-.*"
        send(control_plane, "spot", {"pattern": pattern})
        print(f"the next Spark step matching {pattern!r} loses its Spot nodes")
    else:
        send(control_plane, "idle", {"seconds": float(args[0])})
        print(f"every cluster now idles out after {float(args[0]):.0f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the rehearsal's live stack until Ctrl-C, or send it an order."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("spot", "idle"):
        return order(args[0], args[1:])

    def terminate(signum: int, frame: object) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        print("\nStopping Airflow, the rehearsal and the embedded servers...", flush=True)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, terminate)
    signal.signal(signal.SIGTERM, terminate)
    home = state_folder()
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    jars = WarpSpeedSettings.from_mapping({"home": str(home)}).jars_dir
    idle = os.environ.get("REHEARSAL_IDLE_SECONDS")
    minutes = int(os.environ.get("WINDOW_MINUTES", "5"))
    print(f"Starting the embedded servers, the rehearsal (EMR/Glue control plane, Spark standalone) in "
          f"{home / 'emr'} and Airflow (compute_backend = emr)...", flush=True)
    try:
        with live_rehearsal(home, jars, idle_seconds=float(idle) if idle else None, window_minutes=minutes,
                            producer=PRODUCER) as (stack, rehearsal):
            print(f"\nAirflow UI    {stack.base_url}/   login {ADMIN_USER} / {stack.admin_password}\n"
                  f"EMR, Glue     {rehearsal.control_plane} (moto, emulated)\n"
                  f"S3            {rehearsal.s3_endpoint} (S3Proxy, the live stack's)\n"
                  f"steps         {home / 'emr' / 'runner' / 'clusters'}/<cluster>/steps/<step>/ "
                  f"(argv.json, stdout, stderr)\n"
                  f"Spot loss     {sys.executable} -m warpspeed.embedded.rehearsal spot 'warpspeed-scoring-.*'\n"
                  f"{minutes}-minute windows; idle timeout "
                  f"{idle + ' s' if idle else 'of each profile'}. Ctrl-C stops everything.\n", flush=True)
            while True:
                dead = [c.name for c in stack.components.values() if not c.alive]
                dead += [n for n, p in rehearsal.procs.items() if p.poll() is not None]
                if dead:
                    print(f"!! exited: {dead}; logs in {home}", flush=True)
                    return 1
                time.sleep(5)
    except KeyboardInterrupt:
        pass
    print("Stopped; state kept in", home)
    return 0


if __name__ == "__main__":
    sys.exit(main())
