"""HTTP headers: a request's as the core parsed them, and a response's as a handler
builds them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import TypeAlias

#: What `Headers(...)` and `Response(headers=...)` take.
HeadersArg: TypeAlias = "Headers | Mapping[str, str] | Iterable[tuple[str, str]] | None"

#: A field name is an RFC 9110 token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
#: A field value holds no line break or NUL (they would end the header or the head).
_BAD_VALUE = re.compile(r"[\r\n\0]")


def check_field(name: object, value: object) -> None:
    """Raises unless `name: value` can be written as one header line.

    Raises:
        TypeError: the name or the value is not a str.
        ValueError: the name is not a token, or the value holds CR, LF or NUL.
    """
    if not isinstance(name, str):
        raise TypeError(f"a header name must be a str, not {type(name).__name__}")
    if not isinstance(value, str):
        raise TypeError(f"the value of header {name!r} must be a str, not {type(value).__name__}")
    if not _TOKEN.match(name):
        raise ValueError(f"{name!r} is not a header name (an RFC 9110 token)")
    if _BAD_VALUE.search(value):
        raise ValueError(f"the value of header {name!r} holds a line break or NUL: {value!r}")
    if not value.isascii() and not _latin1(value):
        raise ValueError(f"the value of header {name!r} is not Latin-1: {value!r}")


def _latin1(value: str) -> bool:
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


class Headers(MutableMapping[str, str]):
    """HTTP headers: names case-insensitive, every field kept in order, repeats too.

    As a mapping, names are lower-cased and a repeated header reads as its values joined
    by ", " (RFC 9110's way of combining fields); `get_all` gives them one by one and
    `fields()` every field as sent. Setting a name replaces all of its fields; `append`
    adds one more. Robyn's `set`, `contains` and `append` are there too.
    """

    __slots__ = ("_fields",)

    def __init__(self, headers: HeadersArg = None) -> None:
        self._fields: list[tuple[str, str]] = []
        if headers is None:
            return
        pairs = (
            headers.fields()
            if isinstance(headers, Headers)
            else headers.items()
            if isinstance(headers, Mapping)
            else headers
        )
        if isinstance(pairs, (str, bytes)):
            raise TypeError("headers must be a dict or a list of (name, value) pairs, not a str")
        for pair in pairs:
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise TypeError(f"headers must be (name, value) pairs, got {pair!r}")
            self.append(*pair)

    @classmethod
    def _from_parsed(cls, fields: list[tuple[str, str]]) -> Headers:
        """Headers the core parsed (already valid): no check."""
        headers = cls()
        headers._fields = fields
        return headers

    def __getitem__(self, name: str) -> str:
        values = self.get_all(name)
        if not values:
            raise KeyError(name)
        return ", ".join(values)

    def __setitem__(self, name: str, value: str) -> None:
        check_field(name, value)
        lowered = name.lower()
        self._fields = [field for field in self._fields if field[0].lower() != lowered]
        self._fields.append((name, value))

    def __delitem__(self, name: str) -> None:
        lowered = name.lower()
        kept = [field for field in self._fields if field[0].lower() != lowered]
        if len(kept) == len(self._fields):
            raise KeyError(name)
        self._fields = kept

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(name.lower() for name, _ in self._fields))

    def __len__(self) -> int:
        return len({name.lower() for name, _ in self._fields})

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        lowered = name.lower()
        return any(field[0].lower() == lowered for field in self._fields)

    def get_all(self, name: str) -> list[str]:
        """The values of every field named `name`, in order (empty when none)."""
        lowered = name.lower()
        return [value for field, value in self._fields if field.lower() == lowered]

    def fields(self) -> list[tuple[str, str]]:
        """Every field as (name, value), names as given, in order."""
        return list(self._fields)

    def append(self, name: str, value: str) -> None:
        """Adds a field, keeping those of the same name (e.g. several Set-Cookie).

        Raises:
            TypeError: the name or the value is not a str.
            ValueError: the name is not a token or the value holds a line break.
        """
        check_field(name, value)
        self._fields.append((name, value))

    def set(self, name: str, value: str) -> None:
        """Robyn's name for `headers[name] = value`."""
        self[name] = value

    def contains(self, name: str) -> bool:
        """Robyn's name for `name in headers`."""
        return name in self

    def __repr__(self) -> str:
        return f"Headers({self._fields!r})"
