"""Request traces for the simulator: generated like the case study, or read from CSV/JSONL."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from warpspeed.exceptions import WarpSpeedConfigError

TRACE_EPOCH = datetime(2026, 1, 5, tzinfo=UTC)


@dataclass(frozen=True)
class TraceRequest:
    """One scoring request of a trace."""

    window: int
    tenant_id: str
    model: str
    workload: str
    accounts: int


@dataclass(frozen=True)
class Trace:
    """A request trace cut into windows."""

    requests: tuple[TraceRequest, ...]
    windows: int
    window_minutes: int = 30
    source: str = "generated"

    def __post_init__(self) -> None:
        if self.windows < 1:
            raise WarpSpeedConfigError("trace must span at least one window")
        if not 1 <= self.window_minutes <= 1440:
            raise WarpSpeedConfigError(f"window_minutes={self.window_minutes} must be between 1 and 1440")

    @property
    def days(self) -> float:
        """Return the time the trace spans, in days."""
        return self.windows * self.window_minutes / 1440

    def by_window(self) -> Iterator[tuple[int, list[TraceRequest]]]:
        """Yield (window index, its requests) for every window, empty ones included."""
        groups: dict[int, list[TraceRequest]] = {}
        for req in self.requests:
            groups.setdefault(req.window, []).append(req)
        for w in range(self.windows):
            yield w, groups.get(w, [])

    @classmethod
    def generate(
        cls,
        *,
        days: float = 2,
        requests_per_window: tuple[int, int] = (1500, 2000),
        tenants: int = 400,
        models: Mapping[str, str] | None = None,
        accounts_median: int = 1500,
        accounts_sigma: float = 1.3,
        max_accounts: int = 3_000_000,
        window_minutes: int = 30,
        seed: int = 7,
    ) -> Trace:
        """Generate a case-study-like trace.

        Each window draws a request count uniformly in ``requests_per_window`` and that many
        distinct (tenant, model) pairs (so no request supersedes another and every strategy
        scores the same work). Tenant sizes are log-normal (median ``accounts_median``
        accounts), fixed per tenant. Models map to workloads as in ``dags/config/workloads.yaml``
        plus synthetic ones so that a few hundred tenants can make ~2,000 distinct pairs.
        """
        models = dict(models or DEFAULT_TRACE_MODELS)
        if tenants < 1 or not models:
            raise WarpSpeedConfigError("trace needs at least one tenant and one model")
        low, high = requests_per_window
        pairs = tenants * len(models)
        if not 0 <= low <= high or high > pairs:
            raise WarpSpeedConfigError(
                f"requests_per_window={requests_per_window} must be ordered and at most "
                f"tenants x models = {pairs}"
            )
        rng = np.random.default_rng(seed)
        sizes = np.clip(rng.lognormal(math.log(accounts_median), accounts_sigma, tenants), 50, max_accounts)
        model_names = sorted(models)
        windows = max(1, round(days * 1440 / window_minutes))
        out = []
        for w in range(windows):
            count = int(rng.integers(low, high + 1))
            for pair in rng.choice(pairs, size=count, replace=False):
                t, m = divmod(int(pair), len(model_names))
                out.append(TraceRequest(w, f"tenant-{t:04d}", model_names[m], models[model_names[m]],
                                        int(sizes[t])))
        return cls(tuple(out), windows, window_minutes, f"generated (seed {seed})")

    @classmethod
    def from_file(cls, path: str | Path, window_minutes: int = 30) -> Trace:
        """Read a trace: CSV with a header, or JSON lines.

        Fields: ``requested_at`` (ISO 8601), ``tenant_id``, ``model``, ``workload``,
        ``estimated_accounts``. Windows count from the first request's window.
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise WarpSpeedConfigError(f"trace file {path} does not exist") from None
        if path.suffix in (".jsonl", ".ndjson", ".json"):
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            rows = list(csv.DictReader(text.splitlines()))
        if not rows:
            raise WarpSpeedConfigError(f"trace file {path} has no requests")
        parsed = []
        for i, row in enumerate(rows, start=1):
            try:
                at = datetime.fromisoformat(str(row["requested_at"]).replace("Z", "+00:00"))
                if at.tzinfo is None:
                    at = at.replace(tzinfo=UTC)
                parsed.append((at, str(row["tenant_id"]), str(row["model"]), str(row["workload"]),
                               int(row["estimated_accounts"])))
            except (KeyError, ValueError, TypeError) as err:
                raise WarpSpeedConfigError(f"trace file {path}, request {i}: {err!r}") from err
        start = min(p[0] for p in parsed)
        start = start.replace(minute=start.minute - start.minute % window_minutes if window_minutes <= 60
                              else 0, second=0, microsecond=0)
        step = timedelta(minutes=window_minutes)
        reqs = tuple(TraceRequest(int((at - start) / step), t, m, wl, max(1, a))
                     for at, t, m, wl, a in parsed)
        return cls(reqs, max(r.window for r in reqs) + 1, window_minutes, str(path))

    def write_csv(self, path: str | Path) -> None:
        """Write the trace in the format :meth:`from_file` reads."""
        with Path(path).open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["requested_at", "tenant_id", "model", "workload", "estimated_accounts"])
            for r in self.requests:
                at = TRACE_EPOCH + timedelta(minutes=r.window * self.window_minutes + 1)
                writer.writerow([at.isoformat(), r.tenant_id, r.model, r.workload, r.accounts])


DEFAULT_TRACE_MODELS: dict[str, str] = {
    "churn_risk": "scoring", "upsell_propensity": "scoring", "fit_score": "scoring",
    "pipeline_predict": "scoring", "engagement_score": "scoring", "intent_surge": "intent",
}
"""The configured models plus synthetic ones (400 tenants x 6 models = 2,400 distinct pairs)."""


