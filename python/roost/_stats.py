"""`App.stats()`: a snapshot of the core's counters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Stats:
    """A server's counters at one moment (all 0 when the app is not serving). Counts
    are totals since the app started serving.

    Attributes:
        connections: Connections open now.
        topics: Topics with at least one subscriber now.
        deliveries_skipped: Messages of broadcasts and publishes that a recipient over
            its send limit missed (`slow_consumer="skip"`).
        slow_consumers_closed: Recipients of broadcasts and publishes closed with 1008
            for being over their send limit (`slow_consumer="close"`).
    """

    connections: int = 0
    topics: int = 0
    deliveries_skipped: int = 0
    slow_consumers_closed: int = 0

    @classmethod
    def from_core(cls, stats: Any) -> Stats:
        """From a `roost_stats` the core filled."""
        return cls(**{name: int(getattr(stats, name)) for name in cls.__dataclass_fields__})
