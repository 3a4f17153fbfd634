"""The AWS Glue job hook of feature preprocessing: the Amazon provider's hook, patient with concurrency.

Planning lives in :mod:`warpspeed.preprocessing.refresh`, the job's settings in
:mod:`warpspeed.config.glue_job` and the refresh orchestration in :mod:`warpspeed.preprocessing.service`.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.hooks.glue import GlueJobHook
from botocore.exceptions import ClientError


def is_concurrent_runs_exceeded(error: BaseException) -> bool:
    """Tell whether Glue refused a start because the job already runs its maximum."""
    return isinstance(error, ClientError) and (
        error.response.get("Error", {}).get("Code") == "ConcurrentRunsExceededException"
    )


class ConcurrencyAwareGlueJobHook(GlueJobHook):
    """The Amazon provider's Glue hook, retrying a start refused with ConcurrentRunsExceeded.

    Waits grow exponentially (with jitter) from ``concurrency_retry_initial_seconds`` up to
    ``concurrency_retry_max_seconds``; after ``concurrency_retry_max_attempts`` starts the error
    is raised and the task's own retries take over.
    """

    def __init__(
        self,
        *args: Any,
        concurrency_retry_initial_seconds: float = 30.0,
        concurrency_retry_max_seconds: float = 600.0,
        concurrency_retry_max_attempts: int = 8,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.concurrency_retry_initial_seconds = concurrency_retry_initial_seconds
        self.concurrency_retry_max_seconds = concurrency_retry_max_seconds
        self.concurrency_retry_max_attempts = concurrency_retry_max_attempts
        self.concurrency_waits: list[float] = []

    def initialize_job(self, script_arguments: dict | None = None, run_kwargs: dict | None = None) -> dict[str, str]:
        """Create or update the job and start a run, waiting while its concurrency is exhausted."""
        from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

        retrying = Retrying(
            retry=retry_if_exception(is_concurrent_runs_exceeded),
            wait=wait_exponential_jitter(initial=self.concurrency_retry_initial_seconds,
                                         max=self.concurrency_retry_max_seconds,
                                         jitter=self.concurrency_retry_initial_seconds / 2),
            stop=stop_after_attempt(self.concurrency_retry_max_attempts),
            before_sleep=self._log_concurrency_wait,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                return super().initialize_job(script_arguments, run_kwargs)
        raise RuntimeError("unreachable: tenacity re-raises the last error")

    def _log_concurrency_wait(self, retry_state: Any) -> None:
        wait = float(retry_state.next_action.sleep) if retry_state.next_action else 0.0
        self.concurrency_waits.append(wait)
        self.log.warning("Glue job %s already runs %s times (ConcurrentRunsExceeded); start %d again in %.0f s",
                         self.job_name, self.concurrent_run_limit, retry_state.attempt_number + 1, wait)
