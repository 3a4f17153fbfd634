"""What every Warp Speed operator shares: lazily loaded settings, the run's window, trigger event checks."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

from airflow.sdk import BaseOperator, Context

from warpspeed.config.settings import WarpSpeedSettings, load_settings
from warpspeed.exceptions import WarpSpeedError
from warpspeed.storage.documents import Storage
from warpspeed.window.rule import Window, window_from_context


class WarpSpeedSettingsMixin:
    """Give a task (operator or sensor) the ``[warpspeed]`` settings, loaded once per run.

    List it *after* the Airflow base class: ``partial()`` reads parameter defaults along the
    MRO, and a mixin in front of ``BaseOperator`` hides them (mapped tasks lost ``inlets``).
    """

    s3_component = "stack"
    """Who this task is to S3 (``intake``, ``plan``, ``score``, ``publish``, ``maintenance``,
    ``preprocess``): on the embedded S3 server it signs with that component's key, so the
    requests it makes are counted as that component's (:mod:`warpspeed.config.s3`)."""

    @cached_property
    def settings(self) -> WarpSpeedSettings:
        """Load the ``[warpspeed]`` settings once per task run (as :attr:`s3_component` uses them)."""
        return load_settings().for_component(self.s3_component)


class WarpSpeedOperator(BaseOperator, WarpSpeedSettingsMixin):
    """Base for Warp Speed operators; subclasses stay thin and call hooks."""

    @cached_property
    def storage(self) -> Storage:
        """Return the storage under the configured prefix."""
        conn_id = self.settings.aws_conn_id

        def s3_client() -> object:
            from airflow.providers.amazon.aws.hooks.s3 import S3Hook

            return S3Hook(aws_conn_id=conn_id).get_conn()

        return self.settings.storage(s3_client)

    def window(self, context: Context) -> Window:
        """Return the run's scoring window."""
        return window_from_context(context, self.settings.window_minutes)


def checked_event(
    event: Mapping[str, Any] | None,
    *,
    status: str,
    failed: str,
    error: type[WarpSpeedError] = WarpSpeedError,
    **expected: Any,
) -> Mapping[str, Any]:
    """Return a trigger's event when it says ``status`` (and carries the ``expected`` values); else raise.

    The one check at the top of every ``execute_complete``: a missing event, a trigger's error
    event or one about something else (another cluster) fails the task with ``failed`` and why.

    :param failed: what failed, e.g. ``waiting for steps on j-1 failed``.
    :raises WarpSpeedError: ``error``, naming the trigger's message or the mismatch.
    """
    if not event:
        raise error(f"{failed}: the trigger sent no event")
    if event.get("status") != status:
        raise error(f"{failed}: {event.get('message') or dict(event)}")
    for key, value in expected.items():
        if event.get(key) != value:
            raise error(f"{failed}: the event is for {key} {event.get(key)!r}, not {value!r}")
    return event
