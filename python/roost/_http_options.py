"""The app's HTTP options that are not limits: the health and metrics paths and the
origins allowed to open WebSockets. Their form is checked here; the core checks the
rest (and says what is wrong) when a server is made."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class HttpOptions:
    """The HTTP options of an app.

    Attributes:
        health_path: GET/HEAD there answers 200 `ok` (503 `stopping` while the app
            stops); None: no such route.
        metrics_path: GET/HEAD there answers the core's counters as Prometheus text;
            None: no such route.
        allowed_origins: The only `Origin`s (scheme://host[:port]) whose WebSocket
            upgrades are accepted (others get 403); None: any. A request without an
            Origin header (not from a browser) is always accepted.

    Raises:
        TypeError: a value of the wrong type (a single str for allowed_origins).
        ValueError: a path not starting with "/", an origin holding a comma, or an
            empty list of origins.
    """

    health_path: str | None = None
    metrics_path: str | None = None
    allowed_origins: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("health_path", "metrics_path"):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise TypeError(f"{name} must be a str or None, not {type(value).__name__}")
            if not value.startswith("/"):
                raise ValueError(f"{name} must start with '/': {value!r}")

    @classmethod
    def of(
        cls,
        health_path: str | None,
        metrics_path: str | None,
        allowed_origins: Sequence[str] | None,
    ) -> HttpOptions:
        """The options as `App` takes them (allowed_origins any sequence of str)."""
        if allowed_origins is None:
            return cls(health_path, metrics_path, None)
        if isinstance(allowed_origins, (str, bytes)):
            raise TypeError(
                "allowed_origins must be a list of origins, not a single "
                f"{type(allowed_origins).__name__}: allowed_origins=[{allowed_origins!r}]"
            )
        origins = tuple(allowed_origins)
        if not origins:
            raise ValueError(
                "allowed_origins is empty: list the origins to accept, or pass None to accept any"
            )
        for origin in origins:
            if not isinstance(origin, str):
                raise TypeError(f"an allowed origin must be a str, not {type(origin).__name__}")
            if "," in origin or not origin.strip():
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port])")
        return cls(health_path, metrics_path, origins)

    def origins_list(self) -> str | None:
        """allowed_origins as roost_options takes them: comma separated."""
        return None if self.allowed_origins is None else ",".join(self.allowed_origins)


NO_HTTP_OPTIONS = HttpOptions()
