"""The live stack's request producer: synthetic scoring requests (and a few invalid ones) per window."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from warpspeed.embedded import seed
from warpspeed.embedded.sqs_server import LocalSqs


@dataclass(frozen=True)
class ProducerConfig:
    """What the producer sends per window: ``make demo``'s load by default."""

    tenants: int = 20
    """Tenants seeded with feature rows; the requests name them in turn, then repeat some at random."""
    requests_per_window: int = 50
    """Valid requests per window, split evenly over its chunks (at least one per chunk)."""
    invalid_per_window: int = 2
    """Messages intake must refuse per window (bad JSON, bad tenant, unknown model...), spread over the chunks."""
    chunks_per_window: int = 4
    """Sends per window, evenly spaced: the window's requests arrive in this many bursts."""


class Producer(threading.Thread):
    """Send synthetic scoring requests (and a few invalid messages) until stopped."""

    def __init__(self, sqs: LocalSqs, tenants: list[str], config: ProducerConfig, window_minutes: int) -> None:
        super().__init__(name="warpspeed-producer", daemon=True)
        self.sqs, self.tenants, self.config = sqs, tenants, config
        self.interval = window_minutes * 60 / config.chunks_per_window
        self.stopped = threading.Event()
        self.sent: list[dict[str, Any]] = []
        self.sent_at: list[datetime] = []  # when each of ``sent`` went out
        self.invalid_sent = 0

    def send_chunk(self, index: int) -> None:
        """Send one chunk: a share of a window's requests and of its invalid messages."""
        per = max(1, self.config.requests_per_window // self.config.chunks_per_window)
        rotated = self.tenants[index * per % len(self.tenants):] + self.tenants
        docs = list(seed.scoring_requests(rotated, per, seed=index))
        invalid = self.config.invalid_per_window // self.config.chunks_per_window + (
            1 if index % self.config.chunks_per_window < self.config.invalid_per_window % self.config.chunks_per_window
            else 0
        )
        seed.send_bodies(self.sqs.client(), self.sqs.queue_url,
                         [json.dumps(d) for d in docs] + seed.invalid_bodies(invalid))
        now = datetime.now(UTC)
        self.sent.extend(docs)
        self.sent_at.extend([now] * len(docs))
        self.invalid_sent += invalid

    def run(self) -> None:
        """Send a chunk every ``interval`` seconds."""
        index = 0
        while not self.stopped.is_set():
            self.send_chunk(index)
            index += 1
            self.stopped.wait(self.interval)
