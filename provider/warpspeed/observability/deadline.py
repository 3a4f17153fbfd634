"""The callback of the scoring window's Deadline Alert (:mod:`warpspeed.window.deadline`): log, count, notify.

It runs in the triggerer (an ``AsyncCallback``) when a window is past its deadline. The notifier
is configured, not coded into the DAG:

- ``[warpspeed] deadline_notifier``: the import path of an Airflow notifier class (a
  ``BaseNotifier``: ``airflow.providers.slack.notifications.slack_webhook.SlackWebhookNotifier``,
  ``airflow.providers.amazon.aws.notifications.sns.SnsNotifier``,
  ``airflow.providers.smtp.notifications.smtp.SmtpNotifier``...), or of a function called as
  ``f(context, **kwargs)`` (sync or async). Empty: log and count only.
- ``[warpspeed] deadline_notifier_kwargs``: a JSON object, the notifier's arguments. A notifier's
  templated fields see the alert context: ``{{ window.id }}``, ``{{ window.start }}``,
  ``{{ window.end }}``, ``{{ deadline.deadline_time }}``, ``{{ dag_run.dag_id }}``.

A notifier class is awaited when it implements ``async_notify``, else its ``notify`` runs in a
thread, like a sync function: the triggerer's event loop never blocks.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from warpspeed.config.settings import SECTION
from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.observability import metrics
from warpspeed.window.rule import window_for

log = logging.getLogger(__name__)

NOTIFIER_KEY = "deadline_notifier"
NOTIFIER_KWARGS_KEY = "deadline_notifier_kwargs"


def configured_notifier() -> tuple[str | None, dict[str, Any]]:
    """Return ``[warpspeed] deadline_notifier`` and its JSON ``deadline_notifier_kwargs``."""
    from airflow.configuration import conf

    path = conf.get(SECTION, NOTIFIER_KEY, fallback=None) or None
    raw = conf.get(SECTION, NOTIFIER_KWARGS_KEY, fallback=None) or "{}"
    try:
        kwargs = json.loads(raw)
    except ValueError as err:
        raise WarpSpeedConfigError(f"[{SECTION}] {NOTIFIER_KWARGS_KEY} is not JSON: {err}") from None
    if not isinstance(kwargs, dict):
        raise WarpSpeedConfigError(f"[{SECTION}] {NOTIFIER_KWARGS_KEY} must be a JSON object, got {raw!r}")
    return path, kwargs


async def notify(path: str, kwargs: Mapping[str, Any], context: dict[str, Any]) -> None:
    """Call the notifier ``path`` names with ``kwargs`` and the alert ``context`` (see the module doc)."""
    from airflow.sdk import BaseNotifier
    from airflow.sdk.module_loading import import_string

    target = import_string(path)
    if inspect.isclass(target) and issubclass(target, BaseNotifier):
        notifier = target(**kwargs)
        notifier.context = context  # type: ignore[assignment]
        try:
            await notifier
        except NotImplementedError:  # no async_notify: its notify, off the event loop
            await asyncio.to_thread(notifier, context)
        return
    if inspect.iscoroutinefunction(target):
        await target(context, **kwargs)
    else:
        await asyncio.to_thread(target, context, **kwargs)


async def window_deadline_missed(
    context: dict[str, Any] | None = None,
    *,
    window_minutes: int,
    deadline_minutes: float,
    notifier: str | None = None,
    notifier_kwargs: Mapping[str, Any] | None = None,
) -> str:
    """Log that a window is late, count it, and call the configured notifier; return what was said.

    :param notifier: a notifier's import path instead of ``[warpspeed] deadline_notifier``.
    :param notifier_kwargs: its arguments instead of ``[warpspeed] deadline_notifier_kwargs``.
    """
    context = dict(context or {})
    dag_run = dict(context.get("dag_run") or {})
    dag_id = str(dag_run.get("dag_id", "warpspeed_scoring"))
    logical = dag_run.get("logical_date")
    window = window_for(datetime.fromisoformat(str(logical).replace("Z", "+00:00")), window_minutes) \
        if logical else None
    deadline = (context.get("deadline") or {}).get("deadline_time")
    context["window"] = {"id": window.id, "start": window.start.isoformat(), "end": window.end.isoformat()} \
        if window else {}
    message = (f"Warp Speed window {window.id if window else '?'} of {dag_id} (run {dag_run.get('dag_run_id')}) "
               f"missed its deadline {deadline}: not published {deadline_minutes:g} min after the window's end "
               f"{window.end.isoformat() if window else '?'}")
    log.warning("%s", message)
    metrics.deadline_missed(dag_id)
    path, kwargs = (notifier, dict(notifier_kwargs or {})) if notifier else configured_notifier()
    if path:
        try:
            await notify(path, kwargs, context)
        except Exception:
            log.exception("Deadline notifier %s failed for window %s", path, window.id if window else "?")
            raise
        log.info("Deadline notifier %s told about window %s", path, window.id if window else "?")
    return message
