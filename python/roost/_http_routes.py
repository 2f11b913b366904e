"""A registered HTTP route: its method, its exact path and its handler."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

_POSITIONAL = (
    inspect.Parameter.POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    inspect.Parameter.VAR_POSITIONAL,
)


def takes_argument(function: Callable[..., Any]) -> bool:
    """Whether `function` can be called with one positional argument (the request);
    a handler that takes none is called without it."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # no signature to read (some builtins): pass it
        return True
    return any(parameter.kind in _POSITIONAL for parameter in parameters)


def check_path(path: object, what: str) -> str:
    """`path` if it is an exact path to register.

    Raises:
        TypeError: `path` is not a str.
        ValueError: it does not start with "/" or holds a query.
    """
    if not isinstance(path, str):
        raise TypeError(f"{what} must be a str, not {type(path).__name__}")
    if not path.startswith("/") or "?" in path:
        raise ValueError(f"{what} must start with '/' and hold no '?': {path!r}")
    return path


class HttpRoute:
    """The handler of one method on one path.

    Raises:
        TypeError: the handler is not callable.
    """

    def __init__(self, method: str, path: str, handler: Callable[..., Any]) -> None:
        if not callable(handler):
            raise TypeError(f"the handler of {method} {path} must be a function, got {handler!r}")
        self.method = method
        self.path = path
        self.handler = handler
        self.takes_request = takes_argument(handler)
