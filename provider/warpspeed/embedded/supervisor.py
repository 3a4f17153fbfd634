"""Own the embedded servers of one stack: start them from one long-lived thread, restart any that dies.

The :class:`Supervisor` is a thread of the process that owns the stack (pytest, ``make demo``,
``make airflow``). It starts every server itself, so the parent-death signal of each (see
:mod:`warpspeed.embedded.server`) fires when that process dies and never earlier. It polls its
servers twice a second; a server that exited without being asked to is restarted on the same
port after a backoff (0.5 s, 1 s, 2 s... at most 30 s), and counted ready only once its
readiness check passes (PostgreSQL: a login works, not merely an open port: the port opens
during crash recovery). After five restarts within five minutes it gives up on that server and
says so in :attr:`Supervisor.failed`. Clients reconnect by themselves: the port is the same.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, TypeVar

from warpspeed.embedded.server import PortTakenError, ServerError, ServerProcess

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_BACKOFF_S = 30.0
PORT_ATTEMPTS = 3


class Supervisor(threading.Thread):
    """Start, watch and restart the servers of one stack; stop them all on :meth:`close`.

    :param poll: seconds between two looks at the servers.
    :param max_restarts: restarts of one server within ``window`` seconds before giving up on it.
    :param on_restart: called (in this thread) with a server once a restart made it ready.
    """

    def __init__(self, name: str = "warpspeed-servers", *, poll: float = 0.5, max_restarts: int = 5,
                 window: float = 300.0, on_restart: Callable[[ServerProcess], Any] | None = None) -> None:
        super().__init__(name=name, daemon=True)
        self.poll, self.max_restarts, self.window, self.on_restart = poll, max_restarts, window, on_restart
        self.servers: dict[str, ServerProcess] = {}
        self.failed: dict[str, str] = {}
        self.events: list[str] = []
        self.closing = threading.Event()
        self._watched: set[str] = set()
        self._checks: list[Callable[[], Any]] = []
        self._restarts: dict[str, list[float]] = {}
        self._calls: queue.Queue[tuple[Callable[[], Any], Future[Any]]] = queue.Queue()
        self._lock = threading.RLock()

    # -- the thread's work ---------------------------------------------------------------------
    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in this thread (where every server is spawned) and return its result."""
        if threading.current_thread() is self:
            return fn()
        self._ensure_running()
        done: Future[T] = Future()
        self._calls.put((fn, done))
        while True:
            try:
                return done.result(timeout=1.0)
            except TimeoutError:
                if not self.is_alive() and not done.running():  # closed after we queued the call
                    raise ServerError(f"{self.name} is closed") from None

    def _ensure_running(self) -> None:
        with self._lock:
            if self.ident is None and not self.closing.is_set():
                self.start()
        if not self.is_alive():
            raise ServerError(f"{self.name} is closed")

    def run(self) -> None:
        """Serve :meth:`call` requests and restart dead servers until :meth:`close`."""
        next_look = time.monotonic()
        while not self.closing.is_set():
            try:
                fn, done = self._calls.get(timeout=max(0.0, next_look - time.monotonic()))
            except queue.Empty:
                self._look()
                next_look = time.monotonic() + self.poll
                continue
            if done.set_running_or_notify_cancel():
                try:
                    done.set_result(fn())
                except BaseException as err:  # handed to the caller
                    done.set_exception(err)
        while not self._calls.empty():  # callers waiting while we closed
            self._calls.get_nowait()[1].set_exception(ServerError(f"{self.name} is closed"))

    def _look(self) -> None:
        for name in list(self._watched):
            server = self.servers[name]
            if self.closing.is_set() or name not in self._watched or server.alive:
                continue
            self._restart(server)
        for check in list(self._checks):
            if self.closing.is_set():
                return
            try:
                check()
            except Exception:
                log.exception("supervisor check %r failed", check)

    def _restart(self, server: ServerProcess) -> None:
        code = server.proc.returncode if server.proc is not None else None
        recent = [t for t in self._restarts.get(server.name, []) if time.monotonic() - t < self.window]
        if len(recent) >= self.max_restarts:
            self._note(f"{server.name} exited ({code}) after {len(recent)} restarts in {self.window:.0f} s; giving up")
            self.failed[server.name] = f"exited ({code}); gave up after {len(recent)} restarts; log {server.log_path}"
            self._watched.discard(server.name)
            return
        self._restarts[server.name] = [*recent, time.monotonic()]
        delay = min(MAX_BACKOFF_S, 0.5 * 2 ** len(recent))
        self._note(f"{server.name} exited ({code}); restarting it on port {server.port} in {delay:.1f} s")
        if self.closing.wait(delay):
            return
        started = time.monotonic()
        try:
            with self._lock:
                if server.name not in self._watched:
                    return
                server.spawn()
            server.wait_ready(self.closing)
        except (ServerError, OSError) as err:
            self._note(f"{server.name}: restart failed: {err}".splitlines()[0])
            return  # the next look sees it dead and tries again, later
        self._note(f"{server.name} is back on port {server.port} after {time.monotonic() - started:.1f} s")
        if self.on_restart is not None:
            try:
                self.on_restart(server)
            except Exception:
                log.exception("after restarting %s", server.name)

    def _note(self, event: str) -> None:
        self.events.append(event)
        log.warning("%s", event)

    # -- what owners call ----------------------------------------------------------------------
    def start_server(self, server: ServerProcess, *, wait: bool = True) -> ServerProcess:
        """Spawn ``server`` from this thread; wait until it is ready (unless ``wait`` is False)."""
        with self._lock:
            if server.name in self.servers and self.servers[server.name] is not server:
                raise ServerError(f"{self.name} already has a server named {server.name}")
            self.servers[server.name] = server
        self.call(server.spawn)
        if wait:
            self.wait_ready(server)
        return server

    def wait_ready(self, server: ServerProcess) -> None:
        """Wait until ``server`` (spawned by :meth:`start_server`) is ready, then watch it."""
        try:
            server.wait_ready(self.closing)
        except BaseException:
            self.stop_server(server.name)
            raise
        with self._lock:
            self._watched.add(server.name)

    def add_check(self, check: Callable[[], Any]) -> None:
        """Call ``check`` in this thread at every look (e.g. to restart processes that are not servers).

        Whatever ``check`` starts gets this thread as its parent-death thread: it lives until :meth:`close`.
        """
        self._checks.append(check)
        self._ensure_running()

    def stop_server(self, name: str, timeout: float = 60.0) -> None:
        """Stop one server and stop watching it."""
        with self._lock:
            self._watched.discard(name)
            server = self.servers.pop(name, None)
        if server is not None:
            server.stop(timeout)

    def close(self) -> None:
        """Stop every server, the last started first, then end the thread."""
        with self._lock:
            self._watched.clear()
            self._checks.clear()
        self.closing.set()
        for name in reversed(list(self.servers)):
            self.stop_server(name)
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=60)


@contextmanager
def supervised(
    describe: Callable[[], tuple[ServerProcess, T]], supervisor: Supervisor | None, name: str
) -> Iterator[T]:
    """Start the server ``describe`` returns (with what its users need); stop it on exit.

    :param describe: prepares the server's folder and returns ``(process, what to yield)``.
    :param supervisor: the stack's supervisor; None: one of its own, named ``name``, closed on exit.
    """
    sup = supervisor or Supervisor(name)
    process: ServerProcess | None = None
    try:
        process, value = start_described(sup, describe)
        yield value
    finally:
        if supervisor is None:
            sup.close()
        elif process is not None and sup.servers.get(process.name) is process:
            sup.stop_server(process.name)


def start_described(
    sup: Supervisor, describe: Callable[[], tuple[ServerProcess, T]], *,
    spawned: tuple[ServerProcess, T] | None = None,
) -> tuple[ServerProcess, T]:
    """Start the server ``describe`` returns and wait until it is ready; return what ``describe`` did.

    A port is recorded free before the server binds it, so another stack on this host may take
    it first: then the server is described again (:func:`~warpspeed.embedded.state.stable_port`
    records a new port) and started once more, :data:`PORT_ATTEMPTS` times at most.

    :param spawned: what ``describe`` returned for a server already spawned without waiting
        (``start_server(..., wait=False)``, to start it beside others): it is waited for first.
    """
    for attempt in range(1, PORT_ATTEMPTS + 1):
        if spawned is None or attempt > 1:
            spawned = describe()
            sup.start_server(spawned[0], wait=False)
        try:
            sup.wait_ready(spawned[0])
        except PortTakenError as err:
            if attempt == PORT_ATTEMPTS:
                raise
            log.warning("%s; starting it on another port", err)
            continue
        return spawned
    raise AssertionError("unreachable")
