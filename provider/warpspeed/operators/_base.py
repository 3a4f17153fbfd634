"""What every Warp Speed task shares: settings and AWS connection, fail-fast config errors, the window."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cached_property, wraps
from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowFailException

from warpspeed.config.settings import WarpSpeedSettings, load_settings
from warpspeed.exceptions import NotRetryableError, WarpSpeedError
from warpspeed.lineage.datasets import Lineage
from warpspeed.storage.documents import Storage
from warpspeed.window.rule import Window, window_from_context

AWS_FIELDS = ("aws_conn_id", "region_name")
"""The AWS connection arguments every Warp Speed task takes, templated (None: ``[warpspeed]`` settings)."""
FAIL_FAST_METHODS = ("execute", "execute_complete", "poke")
"""Task entry points in which a :class:`NotRetryableError` (a config error, say) fails the task without retries."""


def aws_template_fields(*fields: str) -> tuple[str, ...]:
    """Return ``fields`` plus :data:`AWS_FIELDS`, sorted: a Warp Speed task's ``template_fields``."""
    return tuple(sorted({*fields, *AWS_FIELDS}))


_FAILING: dict[type[NotRetryableError], type[NotRetryableError]] = {}


def failing(error: type[NotRetryableError]) -> type[NotRetryableError]:
    """Return the subclass of both ``error`` and ``AirflowFailException`` that a task raises for it (one per class).

    Airflow fails a task without retries on ``AirflowFailException``; code that catches the Warp
    Speed error (``except WarpSpeedConfigError``) still catches it.
    """
    if error not in _FAILING:
        _FAILING[error] = type(error.__name__, (error, AirflowFailException),
                               {"__module__": error.__module__, "__qualname__": error.__qualname__})
    return _FAILING[error]


def fail_fast(method: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a task entry point: a :class:`NotRetryableError` becomes an ``AirflowFailException``.

    A setting that is missing or wrong (:class:`~warpspeed.exceptions.WarpSpeedConfigError`) fails
    the same way on every try, so retrying it only delays the message (the scoring DAG's three
    tries with backoff took 514 s to fail). The exception raised is of :func:`failing` type: the
    error's class and message, chained to the original.
    """

    @wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except NotRetryableError as err:
            if isinstance(err, AirflowFailException):
                raise
            raise failing(type(err))(*err.args) from err

    wrapper.__warpspeed_fail_fast__ = True  # type: ignore[attr-defined]
    return wrapper


class WarpSpeedSettingsMixin:
    """Give a task (operator or sensor) the ``[warpspeed]`` settings, loaded once per run, and fail fast on them.

    List it *after* the Airflow base class: ``partial()`` reads parameter defaults along the
    MRO, and a mixin in front of ``BaseOperator`` hides them (mapped tasks lost ``inlets``).

    The settings carry the task's own ``aws_conn_id`` and ``region_name`` when it has them (None
    keeps ``[warpspeed] aws_conn_id`` / ``region``), so every hook, storage and backend built from
    them uses the task's connection. In every subclass, :data:`FAIL_FAST_METHODS` are wrapped by
    :func:`fail_fast`.
    """

    s3_component = "stack"
    """Who this task is to S3 (``intake``, ``plan``, ``score``, ``publish``, ``maintenance``,
    ``preprocess``): on the embedded S3 server it signs with that component's key, so the
    requests it makes are counted as that component's (:mod:`warpspeed.config.s3`)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in FAIL_FAST_METHODS:
            method = cls.__dict__.get(name)
            if callable(method) and not getattr(method, "__warpspeed_fail_fast__", False):
                setattr(cls, name, fail_fast(method))

    @cached_property
    def settings(self) -> WarpSpeedSettings:
        """Load the ``[warpspeed]`` settings once per task run: this task's AWS connection, region and S3 key."""
        settings = load_settings().for_aws(getattr(self, "aws_conn_id", None), getattr(self, "region_name", None))
        return settings.for_component(self.s3_component)


class WarpSpeedOperator(BaseOperator, WarpSpeedSettingsMixin):
    """Base for Warp Speed operators; subclasses stay thin and call hooks.

    :param aws_conn_id: AWS connection of this task's SQS, S3, EMR and Glue calls (templated);
        None means ``[warpspeed] aws_conn_id``.
    :param region_name: AWS region of those calls (templated); None means ``[warpspeed] region``,
        else the connection's.
    """

    template_fields: Any = AWS_FIELDS

    def __init__(self, *, aws_conn_id: str | None = None, region_name: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name

    @cached_property
    def storage(self) -> Storage:
        """Return the storage under the configured prefix."""
        settings = self.settings

        def s3_client() -> object:
            from airflow.providers.amazon.aws.hooks.s3 import S3Hook

            return S3Hook(aws_conn_id=settings.aws_conn_id, region_name=settings.region_name).get_conn()

        return settings.storage(s3_client)

    def window(self, context: Context) -> Window:
        """Return the run's scoring window."""
        return window_from_context(context, self.settings.window_minutes)

    def lineage(self) -> Lineage | None:
        """Return what this try read and wrote, or None before it knew.

        Subclasses set ``_lineage`` during the try: a :class:`Lineage`, or a function returning one
        when naming a table needs the catalog (called here, only when OpenLineage asks after the
        try, so a lineage problem never fails the task).
        """
        found = getattr(self, "_lineage", None)
        return found() if callable(found) else found

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Return the OpenLineage facets of this try (:meth:`lineage`); also used when the try failed."""
        from warpspeed.lineage.openlineage import operator_lineage

        return operator_lineage(self.lineage())


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
