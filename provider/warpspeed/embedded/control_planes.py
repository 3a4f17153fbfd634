"""moto on loopback for the AWS control planes that nothing more faithful runs locally (EMR, Glue, S3)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from warpspeed.embedded.state import free_port


@contextmanager
def moto_server() -> Iterator[str]:
    """Start moto's server on a free loopback port; yield its endpoint URL; stop it on exit."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
