"""What the route ids of a started core stand for: the dispatcher's view of an app's
registrations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._endpoint import Endpoint
from ._http import Request
from ._http_routes import HttpRoute


@dataclass
class RouteTable:
    """Route ids (one sequence for WebSocket and HTTP routes) to what serves them."""

    websocket: dict[int, Endpoint] = field(default_factory=dict)
    http: dict[int, HttpRoute] = field(default_factory=dict)
    #: The app's `before_upgrade` hook, which vets every upgrade when set.
    before_upgrade: Callable[[Request], Any] | None = None
    #: "https" when serving TLS, for `request.url.scheme`.
    scheme: str = "http"
