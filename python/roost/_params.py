"""Typed query parameters declared in handler and callback signatures.

The signature is read once, at decoration time, into a list of resolvers; a connect
then only looks values up and converts them.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from types import UnionType
from typing import Any, Union

from ._query import QueryParams

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})

_UNION_TYPES: tuple[Any, ...] = (Union, UnionType)


class QueryParamError(Exception):
    """A required parameter is missing or a value cannot be converted. Its message is
    what the client receives."""


def _to_bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(value)


@dataclass(frozen=True)
class _Converter:
    convert: Callable[[str], Any]
    type_name: str


def _converter(annotation: Any) -> _Converter:
    if annotation in (inspect.Parameter.empty, str, Any):
        return _Converter(str, "str")
    if annotation is bool:
        return _Converter(_to_bool, "bool")
    if callable(annotation):
        return _Converter(annotation, getattr(annotation, "__name__", repr(annotation)))
    raise TypeError(f"cannot convert query parameters to {annotation!r}")


@dataclass(frozen=True)
class _Param:
    name: str
    whole_object: bool = False
    optional: bool = False
    is_list: bool = False
    has_default: bool = False
    converter: _Converter = _Converter(str, "str")

    def resolve(self, query: QueryParams, into: dict[str, Any]) -> None:
        if self.whole_object:
            into[self.name] = query
            return
        raw = query.get_all(self.name)
        if not raw:
            if self.has_default:
                return  # the function's own default applies
            if self.optional:
                into[self.name] = None
                return
            raise QueryParamError(f"Missing required parameter: '{self.name}'")
        if self.is_list:
            into[self.name] = [self._convert(value) for value in raw]
        else:
            into[self.name] = self._convert(raw[-1])

    def _convert(self, value: str) -> Any:
        try:
            return self.converter.convert(value)
        except (ValueError, TypeError, KeyError, ArithmeticError):
            raise QueryParamError(
                f"Invalid value '{value}' for parameter '{self.name}': "
                f"expected {self.converter.type_name}"
            ) from None


def _describe(name: str, annotation: Any, has_default: bool) -> _Param:
    optional = False
    origin = typing.get_origin(annotation)
    if origin in _UNION_TYPES:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(members) < len(typing.get_args(annotation))
        if len(members) != 1:
            raise TypeError(f"parameter '{name}': unions other than Optional[T] are not supported")
        annotation = members[0]
        origin = typing.get_origin(annotation)
    if origin is list or annotation is list:
        args = typing.get_args(annotation)
        return _Param(
            name,
            optional=optional,
            is_list=True,
            has_default=has_default,
            converter=_converter(args[0] if args else str),
        )
    return _Param(
        name, optional=optional, has_default=has_default, converter=_converter(annotation)
    )


class QuerySignature:
    """The query parameters a function declares after its first (websocket) parameter."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        try:
            hints = typing.get_type_hints(fn)
        except Exception:
            hints = dict(getattr(fn, "__annotations__", {}))
        parameters = list(inspect.signature(fn).parameters.values())
        if not parameters or parameters[0].kind not in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            raise TypeError(
                f"{getattr(fn, '__qualname__', fn)!r} must take the websocket as its first parameter"
            )
        self.params: list[_Param] = []
        for p in parameters[1:]:
            if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                continue
            if p.kind is inspect.Parameter.POSITIONAL_ONLY:
                raise TypeError(f"query parameter '{p.name}' must not be positional-only")
            if p.name == "query_params":
                self.params.append(_Param(p.name, whole_object=True))
                continue
            has_default = p.default is not inspect.Parameter.empty
            self.params.append(_describe(p.name, hints.get(p.name, p.annotation), has_default))

    def resolve(self, query: QueryParams) -> dict[str, Any]:
        """Keyword arguments for the function. Raises QueryParamError."""
        kwargs: dict[str, Any] = {}
        for param in self.params:
            param.resolve(query, kwargs)
        return kwargs
