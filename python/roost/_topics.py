"""Topics on the Python side: names are `str` (UTF-8 bytes in the core), messages are
`str` (text) or bytes (binary). The core checks names, keeps the subscriptions and
does the fan-out; nothing here runs per recipient."""

from __future__ import annotations

from typing import Any

from ._native import check
from ._roost_ffi import ffi, lib

Payload = str | bytes | bytearray | memoryview


def topic_name(topic: object) -> bytes:
    """The core's name for `topic`. The core checks its length when it gets it.

    Raises:
        TypeError: `topic` is not a `str` (bytes included: topics are text in Python).
        ValueError: `topic` cannot be encoded (lone surrogates).
    """
    if not isinstance(topic, str):
        raise TypeError(f"topic must be a str, not {type(topic).__name__}")
    try:
        return topic.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"topic {topic!r} is not valid text: {error.reason}") from None


def check_topic_name(name: bytes) -> None:
    """Checks a name as the core's topic calls do, for paths that reach none of them.

    Raises:
        ValueError: `name` is empty or longer than `lib.ROOST_MAX_TOPIC_LENGTH` bytes.
    """
    check(lib.roost_topic_check(name, len(name)))


def message(data: object, what: str) -> tuple[bytes, bool]:
    """`data` as the core sends it, and whether it is text.

    Raises:
        TypeError: `data` is neither str nor bytes-like.
    """
    if isinstance(data, str):
        return data.encode("utf-8"), True
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data), False
    raise TypeError(f"{what} takes str or bytes, not {type(data).__name__}")


@ffi.def_extern()  # type: ignore[untyped-decorator]
def roost_py_collect_topic(context: Any, topic: Any, topic_len: int) -> None:
    """The visitor `roost_connection_topics` calls once per topic."""
    ffi.from_handle(context).append(ffi.unpack(ffi.cast("char *", topic), topic_len))


def topics_of(server: Any, connection: int) -> tuple[int, frozenset[str]]:
    """The core's status and the topics of `connection`."""
    names: list[bytes] = []
    status = lib.roost_connection_topics(
        server, connection, lib.roost_py_collect_topic, ffi.new_handle(names), ffi.NULL
    )
    # Names come from str subscriptions; surrogateescape keeps any other bytes (a C
    # caller's) round-trippable instead of failing.
    return status, frozenset(n.decode("utf-8", "surrogateescape") for n in names)
