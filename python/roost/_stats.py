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
        backplane_published: Broadcasts and publishes this process sent to the
            backplane's Redis (`App(backplane=...)`; every backplane count is 0
            without one).
        backplane_received: Broadcasts and publishes of other processes received
            from Redis.
        backplane_dropped: Broadcasts and publishes that reached only this process's
            clients: the queue towards Redis was full (`backplane_queue`), or Redis
            was out.
        backplane_malformed: Messages on the backplane's channels that were not
            Roost's, ignored.
        backplane_reconnects: Times the backplane reconnected after losing Redis.
        backplane_connected: Whether the backplane is connected to Redis now.
        tls_handshakes_failed: TLS handshakes that failed or timed out (serving with
            `ssl_certfile`): clients speaking plain ws:// or garbage to the wss://
            port, handshakes cut short or too slow, clients refusing the certificate.
    """

    connections: int = 0
    topics: int = 0
    deliveries_skipped: int = 0
    slow_consumers_closed: int = 0
    backplane_published: int = 0
    backplane_received: int = 0
    backplane_dropped: int = 0
    backplane_malformed: int = 0
    backplane_reconnects: int = 0
    backplane_connected: bool = False
    tls_handshakes_failed: int = 0

    @classmethod
    def from_core(cls, stats: Any) -> Stats:
        """From a `roost_stats` the core filled."""
        counts = {name: int(getattr(stats, name)) for name in cls.__dataclass_fields__}
        connected = bool(counts.pop("backplane_connected"))
        return cls(**counts, backplane_connected=connected)
