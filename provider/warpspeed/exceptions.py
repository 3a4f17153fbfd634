"""Exceptions raised by Warp Speed; each message says what to change."""

from __future__ import annotations


class WarpSpeedError(Exception):
    """Base class of every error Warp Speed raises on purpose."""


class NotRetryableError(WarpSpeedError):
    """An error another try of the task cannot fix: the task fails at once, without its retries.

    Every Warp Speed task turns it into Airflow's ``AirflowFailException`` with the same message
    (:func:`warpspeed.operators._base.fail_fast`).
    """


class WarpSpeedConfigError(NotRetryableError):
    """A setting, profile or config file is missing or invalid."""


class ManifestError(WarpSpeedError):
    """A manifest could not be read, or its content is not what this version writes."""


class ComputeError(WarpSpeedError):
    """A Spark run failed on the compute backend."""
