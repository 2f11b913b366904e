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
        messages_received: Whole messages received from clients.
        bytes_received: Payload bytes of those messages.
        messages_sent: Messages sent to clients, counted per recipient (a broadcast
            to 1,000 clients counts 1,000).
        bytes_sent: Payload bytes of those messages, per recipient too.
        http_requests: HTTP requests answered: by routes, static files, the health
            and metrics paths, and 404, 405, 413 and the like.
        upgrades_refused_400: WebSocket upgrade requests answered 400 (malformed, or
            no supported subprotocol when one is required).
        upgrades_refused_403: ... answered 403 (an Origin not in `allowed_origins`).
        upgrades_refused_404: ... answered 404 (no WebSocket route on that path).
        upgrades_refused_426: ... answered 426 (a WebSocket version other than 13).
        upgrades_refused_431: ... answered 431 (request head too large).
        upgrades_refused_503: ... answered 503 (over `max_connections` or
            `max_pending_handshakes`, the server stopping, a `before_upgrade` hook
            that did not answer in time).
        upgrades_refused_other: ... answered with any other status (the
            `before_upgrade` hook's own refusals among them).
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
    messages_received: int = 0
    bytes_received: int = 0
    messages_sent: int = 0
    bytes_sent: int = 0
    http_requests: int = 0
    upgrades_refused_400: int = 0
    upgrades_refused_403: int = 0
    upgrades_refused_404: int = 0
    upgrades_refused_426: int = 0
    upgrades_refused_431: int = 0
    upgrades_refused_503: int = 0
    upgrades_refused_other: int = 0

    @classmethod
    def from_core(cls, stats: Any) -> Stats:
        """From a `roost_stats` the core filled."""
        counts = {name: int(getattr(stats, name)) for name in cls.__dataclass_fields__}
        connected = bool(counts.pop("backplane_connected"))
        return cls(**counts, backplane_connected=connected)
