"""Query parameters of a WebSocket URL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import overload
from urllib.parse import parse_qsl


class QueryParams:
    """The parsed query string: percent-decoded, `+` as a space, `key` and `key=` both
    giving `""`, keys case-sensitive, repeated keys kept in order."""

    __slots__ = ("_values",)

    def __init__(self, query: str = "") -> None:
        self._values: dict[str, list[str]] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            self._values.setdefault(key, []).append(value)

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...
    @overload
    def get(self, name: str, default: str | None) -> str | None: ...

    def get(self, name: str, default: str | None = None) -> str | None:
        """The last value of `name`, or `default` when it is absent."""
        values = self._values.get(name)
        return values[-1] if values else default

    def get_all(self, name: str) -> list[str]:
        """Every value of `name` in order (empty when absent)."""
        return list(self._values.get(name, ()))

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def keys(self) -> list[str]:
        """The distinct keys in order of first appearance."""
        return list(self._values)

    def items(self) -> list[tuple[str, str]]:
        """(key, last value) for each distinct key."""
        return [(key, values[-1]) for key, values in self._values.items()]

    def to_dict(self) -> dict[str, list[str]]:
        """Every key with all of its values."""
        return {key: list(values) for key, values in self._values.items()}

    def __repr__(self) -> str:
        return f"QueryParams({self.to_dict()!r})"
