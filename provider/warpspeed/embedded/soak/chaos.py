"""The soak's chaos loop: SIGKILL Airflow's components, the embedded servers and running task processes.

Generic on purpose (whatever runs a batch: ``spark-submit``, a long-lived job server's client,
a single-node engine): a *task* is a process two levels under the scheduler (scheduler ->
LocalExecutor worker, which supervises -> task process); anything deeper (what the task started:
Spark, its JVM) is a *compute* process. Killing one kills it and everything under it. The warm
local Spark engine runs detached from the tasks (``warpspeed.compute.local.engine``): an *engine*
kill SIGKILLs its whole process group (JVM and Python workers), so every Spark batch running on
it fails, and the next task that needs it starts a new one. A killed scheduler or triggerer is
restarted after a short pause, as a supervisor (systemd, Kubernetes) would, with its whole
process group cleaned up first.

Outages of what the pipeline stands on: a *server* kill (``postgres``, ``catalog``, ``sqs``,
``s3``) SIGKILLs that embedded server, and the stack's supervisor restarts it on the same port
(:mod:`warpspeed.embedded.supervisor`); an ``api-server`` or ``dag-processor`` kill SIGKILLs that
Airflow component, and the live stack's revival starts it again. The loop waits until the victim
is back (and says how long it took) before anything else is killed. While the SQS server is
down, the soak's producer holds its sends (``pauses``): it stands for clients outside the system
under test, whose record of what they sent must stay exact.

Kills are spread so that the pipeline can recover within its retry budget: at least ``min_gap``
seconds apart, and every task loses at most one try to the chaos (``task_key`` turns the
supervising worker's title, which names the task try, into the task's identity across tries:
run, task, map index). A scheduler or engine kill can take every running task down with it, so
it counts as a shot at each of them, and it waits for a moment when none of them was shot already.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)

SERVERS = {"postgres": "postgres", "catalog": "rest-catalog", "sqs": "sqs", "s3": "s3"}
"""Server kill -> the name of the embedded server it SIGKILLs (its supervisor restarts it)."""
REVIVED = ("api-server", "dag-processor")
"""Airflow components the chaos SIGKILLs and leaves to the live stack's revival."""
ACTIONS = ("scheduler", "triggerer", "task", "compute", "engine", *SERVERS, *REVIVED)
OUTAGES = (*SERVERS, "api-server")
"""Kills that fail whatever task runs at the time: each is a shot at every running task."""
MUST_KILL = ("engine", "postgres", "catalog", "sqs", "s3", "api-server", "dag-processor")
"""What ``make soak`` kills at least once, in the order a plan of fewer kills keeps them."""
DEFAULT_WEIGHTS = {"scheduler": 1.0, "triggerer": 1.0, "task": 2.0, "compute": 1.0, "engine": 1.0,
                   **dict.fromkeys((*SERVERS, *REVIVED), 0.5)}


def owed_kills(kills: int, kinds: tuple[str, ...] = MUST_KILL) -> dict[str, int]:
    """Return the ``at_least`` of a plan of ``kills`` kills: one of each of ``kinds``, as many as fit."""
    return dict.fromkeys(kinds[:max(kills, 0)], 1)


class Killable(Protocol):
    """What the chaos loop needs of a component (:class:`warpspeed.embedded.process_group.Component`)."""

    name: str
    proc: Any

    @property
    def alive(self) -> bool: ...


class KillableServer(Protocol):
    """What the chaos loop needs of an embedded server (:class:`warpspeed.embedded.server.ServerProcess`)."""

    name: str
    generation: int

    @property
    def alive(self) -> bool: ...

    @property
    def pid(self) -> int | None: ...

    def kill(self) -> None: ...


@dataclass(frozen=True)
class ChaosPlan:
    """How often and what the chaos loop kills.

    :param kills: kills to make (the loop stops after that many).
    :param min_gap: seconds between two kills at least.
    :param max_gap: seconds between two kills at most.
    :param weights: relative weight of each action in :data:`ACTIONS`.
    :param restart_after: seconds a killed scheduler/triggerer stays down.
    :param recover_timeout: seconds to wait for a killed server or revived component to be back.
    :param at_least: kills each action must get (e.g. ``{"engine": 1}``): while one is owed, each
        kill slot first waits up to ``owed_wait`` seconds for that action to find a target (the
        engine running a job), then falls back to the weighted draw, unless every kill left is
        owed (the slot then passes, and the next one tries the owed actions again).
    :param poll: seconds between two looks at a recovering server or an owed action's target, and
        between two tries of a slot whose action found nothing to kill.
    """

    kills: int = 12
    min_gap: float = 30.0
    max_gap: float = 60.0
    weights: Mapping[str, float] | None = None
    restart_after: float = 3.0
    seed: int = 3
    at_least: Mapping[str, int] | None = None
    owed_wait: float = 45.0
    recover_timeout: float = 300.0
    poll: float = 1.0

    def __post_init__(self) -> None:
        if self.kills < 0 or not 0 < self.min_gap <= self.max_gap:
            raise ValueError(f"chaos plan needs kills >= 0 and 0 < min_gap <= max_gap: {self}")
        unknown = set(self.at_least or {}) - set(ACTIONS)
        if unknown or sum((self.at_least or {}).values()) > self.kills:
            raise ValueError(f"chaos plan at_least names actions of {ACTIONS} and owes at most `kills` kills: {self}")


def process_tree(root_pid: int) -> list[tuple[int, int, int, str]]:
    """Return ``(pid, depth, parent pid, title)`` of every descendant of ``root_pid``."""
    import psutil

    out: list[tuple[int, int, int, str]] = []
    try:
        frontier = [(psutil.Process(root_pid), 0)]
    except psutil.NoSuchProcess:
        return out
    while frontier:
        proc, depth = frontier.pop()
        try:
            children = proc.children()
        except psutil.NoSuchProcess:
            continue
        for child in children:
            with suppress(psutil.NoSuchProcess):
                out.append((child.pid, depth + 1, proc.pid, " ".join(child.cmdline())[:200]))
                frontier.append((child, depth + 1))
    return out


def kill_tree(pid: int) -> int:
    """SIGKILL ``pid`` and all its descendants; return how many processes were signalled."""
    import psutil

    try:
        root = psutil.Process(pid)
        victims = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    count = 0
    for proc in victims:
        with suppress(psutil.NoSuchProcess):
            proc.kill()
            count += 1
    return count


class Chaos(threading.Thread):
    """Kill at random moments until :attr:`ChaosPlan.kills` kills were made or stopped.

    :param components: the live stack's components by name (``scheduler``, ``triggerer``,
        ``api-server``, ``dag-processor``).
    :param restart: restarts a component by name (``LiveStack.restart``).
    :param servers: the stack's supervised servers by name (``LiveStack.servers``).
    :param pauses: action -> a lock held from a kill until the victim is back (the producer's sends).
    :param ready: action -> whether the revived victim serves again (the api-server's health).
    """

    def __init__(self, components: Mapping[str, Killable], restart: Callable[[str], Any], plan: ChaosPlan,
                 task_key: Callable[[str], str] | None = None,
                 engine_pid: Callable[[], int | None] | None = None, *,
                 servers: Mapping[str, KillableServer] | None = None,
                 pauses: Mapping[str, threading.Lock] | None = None,
                 ready: Mapping[str, Callable[[], bool]] | None = None) -> None:
        super().__init__(name="soak-chaos", daemon=True)
        self.components, self.restart, self.plan = components, restart, plan
        self.servers, self.pauses, self.ready = servers or {}, pauses or {}, ready or {}
        self.recovered: dict[str, list[float]] = {}
        """Action -> seconds each of its victims took to be back."""
        self.engine_pid = engine_pid or (lambda: None)
        self.task_key = task_key or (lambda title: title)
        self.rng = random.Random(plan.seed)
        self.stopped = threading.Event()
        self.kills: Counter[str] = Counter()
        self.log: list[str] = []
        self.shot_tasks: set[str] = set()
        self.error: BaseException | None = None

    @property
    def total(self) -> int:
        """Return the kills made so far."""
        return sum(self.kills.values())

    def _running(self) -> list[tuple[int, int, str]]:
        """Return ``(pid, depth, task key)`` of every process under the scheduler's workers."""
        scheduler = self.components.get("scheduler")
        if scheduler is None or not scheduler.alive:
            return []
        tree = {pid: (depth, parent, title) for pid, depth, parent, title in process_tree(scheduler.proc.pid)}
        out = []
        for pid, (depth, _, _) in tree.items():
            if depth < 2:
                continue
            task = pid
            while tree[task][0] > 2:
                task = tree[task][1]
            out.append((pid, depth, self.task_key(tree.get(tree[task][1], (0, 0, ""))[2])))  # the worker names it
        return out

    def _targets(self, action: str) -> list[tuple[int, str]]:
        """Return ``(pid, task key)`` candidates for a task or compute kill."""
        return [(pid, key) for pid, depth, key in self._running()
                if ((action == "task" and depth == 2) or (action == "compute" and depth >= 3))
                and key not in self.shot_tasks]

    def strike(self, action: str) -> bool:
        """Make one kill of ``action``; return whether something was killed."""
        if action in ("scheduler", "triggerer"):
            return self._strike_component(action)
        if action == "engine":
            return self._strike_engine()
        if action in SERVERS or action in REVIVED:
            return self._strike_server(action) if action in SERVERS else self._strike_revived(action)
        candidates = self._targets(action)
        if not candidates:
            return False
        pid, owner = self.rng.choice(candidates)
        if kill_tree(pid):
            self.shot_tasks.add(owner)
            self._note(action, f"SIGKILL {action} pid {pid} of {owner!r}")
            return True
        return False

    def _strike_component(self, action: str) -> bool:
        """SIGKILL the scheduler or the triggerer, then restart it like a supervisor."""
        component = self.components[action]
        if not component.alive:
            return False
        if action == "scheduler":  # its tasks die with it: each loses a try
            victims = {key for _, _, key in self._running()}
            if victims & self.shot_tasks:
                return False
            self.shot_tasks |= victims
        os.kill(component.proc.pid, signal.SIGKILL)
        self._note(action, f"SIGKILL {action} pid {component.proc.pid}")
        time.sleep(self.plan.restart_after)
        self.restart(action)  # cleans the group up (orphaned workers and tasks die with it)
        return True

    def _strike_engine(self) -> bool:
        """SIGKILL the warm Spark engine's process group while it runs work; a shot at every running task.

        ``engine_pid`` returns the engine's pid only while it runs a job, so the kill fails a Spark run.
        """
        pid = self.engine_pid()
        victims = {key for _, _, key in self._running()}
        if pid is None or not victims or victims & self.shot_tasks:
            return False
        try:
            os.killpg(pid, signal.SIGKILL)  # the engine leads its own session: JVM and workers with it
        except ProcessLookupError:
            return False
        self.shot_tasks |= victims
        self._note("engine", f"SIGKILL warm Spark engine process group {pid}")
        return True

    def _spare(self, action: str) -> bool:
        """Tell whether an outage must wait (a running task already lost a try); else shoot every running task."""
        if action not in OUTAGES:
            return False
        victims = {key for _, _, key in self._running()}
        if victims & self.shot_tasks:
            return True
        self.shot_tasks |= victims
        return False

    def _strike_server(self, action: str) -> bool:
        """SIGKILL an embedded server; wait until its supervisor has it serving on its port again."""
        server = self.servers.get(SERVERS[action])
        if server is None or not server.alive or self._spare(action):
            return False
        before, pid = server.generation, server.pid
        with self.pauses.get(action) or contextlib.nullcontext():
            server.kill()
            self._note(action, f"SIGKILL {action} server pid {pid}")
            self._await(action, lambda: server.alive and server.generation > before)
        return True

    def _strike_revived(self, action: str) -> bool:
        """SIGKILL an Airflow component; wait until the live stack's revival has it running (and ready) again."""
        component = self.components.get(action)
        if component is None or not component.alive or self._spare(action):
            return False
        old = component.proc
        os.kill(old.pid, signal.SIGKILL)
        self._note(action, f"SIGKILL {action} pid {old.pid}")
        ready = self.ready.get(action, lambda: True)
        self._await(action, lambda: component.proc is not old and component.alive and ready())
        return True

    def _await(self, action: str, back: Callable[[], bool]) -> None:
        """Wait up to :attr:`ChaosPlan.recover_timeout` for ``back``; note how long the outage lasted."""
        started = time.monotonic()
        while time.monotonic() - started < self.plan.recover_timeout:
            with suppress(Exception):  # a probe of a restarting service may fail: look again
                if back():
                    took = time.monotonic() - started
                    self.recovered.setdefault(action, []).append(round(took, 1))
                    self.log.append(f"{time.strftime('%H:%M:%S')} {action} back after {took:.1f} s")
                    if action in OUTAGES:  # tasks started during the outage may have failed too
                        with suppress(Exception):
                            self.shot_tasks |= {key for _, _, key in self._running()}
                    return
            time.sleep(self.plan.poll)
        self.log.append(f"{time.strftime('%H:%M:%S')} {action} NOT back after {self.plan.recover_timeout:.0f} s")
        log.warning("chaos: %s not back after %.0f s", action, self.plan.recover_timeout)

    def _note(self, action: str, what: str) -> None:
        self.kills[action] += 1
        self.log.append(f"{time.strftime('%H:%M:%S')} {what}")
        log.warning("chaos: %s", what)

    def owed(self) -> list[str]:
        """Return the actions that still owe kills to :attr:`ChaosPlan.at_least`."""
        return [a for a, n in sorted((self.plan.at_least or {}).items()) if self.kills[a] < n]

    def _owed_count(self) -> int:
        """Return how many kills :attr:`ChaosPlan.at_least` still owes."""
        return sum(max(0, n - self.kills[a]) for a, n in (self.plan.at_least or {}).items())

    def _strike_owed(self) -> bool:
        """Try the owed actions for up to :attr:`ChaosPlan.owed_wait` seconds; return whether one struck."""
        deadline = time.monotonic() + self.plan.owed_wait
        while self.owed() and not self.stopped.is_set():
            if any(self._try(action) for action in self.owed()):
                return True
            if time.monotonic() > deadline:
                return False
            self.stopped.wait(self.plan.poll)
        return False

    def _try(self, action: str) -> bool:
        """Strike ``action``; a failure to look (the REST API down, a process gone) is a miss, not the end."""
        try:
            return self.strike(action)
        except Exception as err:
            log.warning("chaos: %s missed: %s", action, err)
            return False

    def run(self) -> None:
        """Kill until the plan's count is reached; retry an action with nothing to kill a bit later."""
        weights = self.plan.weights or DEFAULT_WEIGHTS
        actions = [a for a in ACTIONS if weights.get(a, 0) > 0]
        try:
            while self.total < self.plan.kills and not self.stopped.wait(
                    self.rng.uniform(self.plan.min_gap, self.plan.max_gap)):
                if self._strike_owed() or self._owed_count() >= self.plan.kills - self.total:
                    continue  # the slots left are the owed kills': none goes to another action
                # several tries: a task or compute process may not be running at this moment
                for _ in range(40):
                    action = self.rng.choices(actions, [weights[a] for a in actions])[0]
                    if self.stopped.is_set() or self._try(action):
                        break
                    self.stopped.wait(self.plan.poll)
        except BaseException as err:
            self.error = err
            log.exception("chaos loop failed")
