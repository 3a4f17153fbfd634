"""A small server served by a daemon thread of this process (the proxies of the embedded stack)."""

from __future__ import annotations

import socketserver
import threading
from typing import Self


class ServingThread:
    """Serve :attr:`server` on :attr:`thread` from ``with`` entry until exit (then :meth:`closed`)."""

    server: socketserver.TCPServer
    thread: threading.Thread

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
        self.closed()

    def closed(self) -> None:
        """Release what the server held once it stopped (nothing by default)."""
