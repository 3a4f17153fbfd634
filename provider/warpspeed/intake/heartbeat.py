"""Keep the messages a collect holds hidden: a thread extends their visibility at half-time.

A failing extension is logged and stops the heartbeat; the collect then fails at its next
:meth:`Heartbeat.check`, before it deletes anything, rather than delete with stale receipts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from warpspeed.exceptions import WarpSpeedError
from warpspeed.intake.rules import HeldMessage

if TYPE_CHECKING:
    from warpspeed.hooks.sqs import SqsIntakeHook


class Heartbeat:
    """The visibility heartbeat's stop flag and the error that stopped it, if any."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def check(self) -> None:
        """Raise if the heartbeat could not keep the held messages hidden."""
        if self.error is not None:
            raise WarpSpeedError(
                f"could not extend the visibility of held messages ({self.error!r}); nothing was "
                "deleted after that, a retry collects them again"
            ) from self.error


@contextmanager
def kept_hidden(
    hook: SqsIntakeHook, queue_url: str, held: Callable[[], Sequence[HeldMessage]], visibility_timeout: int
) -> Iterator[Heartbeat]:
    """Extend the visibility of the messages ``held()`` returns at half-time until the block ends.

    :param held: returns the messages held right now (called from the heartbeat thread).
    :param visibility_timeout: seconds each extension hides them for; the heartbeat beats at half that.
    """
    beat = Heartbeat()

    def heartbeat() -> None:
        while not beat.stop.wait(visibility_timeout / 2):
            messages = held()
            try:
                hook.extend_visibility(queue_url, messages, visibility_timeout)
            except Exception as err:
                hook.log.exception("could not keep %d held messages hidden; this collect will fail", len(messages))
                beat.error = err
                return
            hook.log.info("kept %d held messages hidden for another %d s", len(messages), visibility_timeout)

    thread = threading.Thread(target=heartbeat, name="sqs-visibility", daemon=True)
    thread.start()
    try:
        yield beat
    finally:
        beat.stop.set()
        thread.join()
