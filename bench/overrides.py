"""Type checks for config overrides: `--set key=value` on the command line and override tables in TOML files.

Why this exists: configs are frozen dataclasses and `dataclasses.replace` checks nothing, so a `batch_size`
of "abc" or 2.5 used to travel into training and end in a traceback minutes later. Every override (agent
configs, dataset recipes, profile and suite tables) goes through `check_value` against the field's declared
type before anything runs, and a mismatch is one line naming the field, the value and the accepted type.

Command-line values arrive as text and are wrapped in `CliText`, so the check parses them according to the
field's type (`--set lm_source=123` stays the string "123", `--set hidden_units=64,64` becomes a tuple);
values from TOML or Python keep their own type and must already match it (a TOML `batch_size = "8"` is
refused, not guessed).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, Union

from bench.errors import BenchError


class CliText(str):
    """A value typed on the command line: text still to be parsed according to its field's type."""


def parse_pairs(pairs: list[str], flag: str = "--set") -> dict[str, CliText]:
    """`key=value` strings into {key: CliText(value)}; a pair without `=` or key is a one-line error."""
    out: dict[str, CliText] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise BenchError(f"{flag} {pair!r} is not key=value; example: {flag} learning_rate=3e-4")
        out[key] = CliText(raw.strip())
    return out


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """Resolved annotations of a dataclass's init fields (modules use `from __future__ import annotations`)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls) if f.init}


def describe(annotation: Any) -> str:
    """The accepted type in words, for error messages."""
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return "an integer"
    if annotation is float:
        return "a finite number"
    if annotation is str:
        return "a string"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        parts = [describe(a) for a in args if a is not type(None)]
        return " or ".join(parts) + (" or none" if type(None) in args else "")
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_plural(args[0])}, e.g. [64, 64]"
        return f"a list of {len(args)} values ({', '.join(describe(a) for a in args)})"
    if origin is list:
        return f"a list of {_plural(args[0]) if args else 'values'}"
    if origin is dict or annotation is dict:
        return "a table"
    return getattr(annotation, "__name__", str(annotation))


def _plural(annotation: Any) -> str:
    return {int: "integers", float: "numbers", str: "strings", bool: "booleans"}.get(annotation, describe(annotation))


class _Mismatch(Exception):
    """Internal: the value does not fit the annotation (turned into one BenchError by `check_value`)."""


def check_value(value: Any, annotation: Any, label: str) -> Any:
    """`value` converted to the field's type (list -> tuple, int -> float, 1e6 -> 1000000), or a one-line error.

    `label` names the field for the message, e.g. "DTConfig.batch_size" or "profiles.toml [quick.agents.dt]
    batch_size".
    """
    try:
        if isinstance(value, CliText):
            return _convert(_from_text(str(value), annotation), annotation)
        return _convert(value, annotation)
    except _Mismatch:
        shown = str(value) if isinstance(value, CliText) else repr(value)
        raise BenchError(f"{label} = {shown} has the wrong type; expected {describe(annotation)}") from None


def _from_text(text: str, annotation: Any) -> Any:
    """Command-line text to a Python value, guided by the annotation (strings stay strings)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (Union, types.UnionType):
        if text.lower() in ("none", "null") and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(_from_text(text, arg), arg)
            except _Mismatch:
                continue
        raise _Mismatch
    if annotation is str or (origin is Literal and all(isinstance(a, str) for a in args)):
        return _unquote(text)
    if annotation is bool:
        lowered = text.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        raise _Mismatch
    if annotation is float:
        try:
            return float(text)
        except ValueError:
            raise _Mismatch from None
    if origin in (tuple, list) and not text.lstrip().startswith("["):
        # `--set hidden_units=64,64`: a comma list without brackets.
        item = args[0] if args else Any
        return [_from_text(part.strip(), item) for part in text.split(",") if part.strip()]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        if annotation is Any:
            return text
        raise _Mismatch from None


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            decoded = json.loads(text)
        except json.JSONDecodeError:
            return text
        return decoded if isinstance(decoded, str) else text
    return text


def _convert(value: Any, annotation: Any) -> Any:
    """Check a typed value against an annotation; returns it normalised, raises _Mismatch otherwise."""
    if annotation is Any:
        return value
    if isinstance(annotation, type) and annotation in _SCALARS:
        return _SCALARS[annotation](value)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise _Mismatch
    if origin in (Union, types.UnionType):
        return _convert_union(value, args)
    if origin in (tuple, list):
        return _convert_sequence(value, origin, args)
    if origin is dict or annotation is dict:
        if isinstance(value, Mapping):
            return dict(value)
        raise _Mismatch
    if isinstance(annotation, type):
        if isinstance(value, annotation):
            return value
        raise _Mismatch
    return value  # an annotation this checker does not model (e.g. a Protocol): leave it to the config


def _convert_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise _Mismatch


def _convert_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    # JSON and TOML write 1e6 as a float; an integral float is the integer it spells.
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    raise _Mismatch


def _convert_float(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise _Mismatch


def _convert_str(value: Any) -> str:
    if isinstance(value, str):
        return str(value)
    raise _Mismatch


# Exact-type checks for the scalar annotations; bool is its own entry so an int never passes as one (nor a bool
# as an int).
_SCALARS: dict[Any, Callable[[Any], Any]] = {
    bool: _convert_bool,
    int: _convert_int,
    float: _convert_float,
    str: _convert_str,
}


def _convert_union(value: Any, args: tuple[Any, ...]) -> Any:
    """The first member of an `X | Y | None` the value passes, tried in declaration order."""
    if value is None and type(None) in args:
        return None
    for arg in args:
        if arg is type(None):
            continue
        try:
            return _convert(value, arg)
        except _Mismatch:
            continue
    raise _Mismatch


def _convert_sequence(value: Any, origin: Any, args: tuple[Any, ...]) -> Any:
    """A list or tuple, item by item: `tuple[A, B]` by position, `tuple[A, ...]` and `list[A]` throughout."""
    if not isinstance(value, list | tuple):
        raise _Mismatch
    if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        if len(value) != len(args):
            raise _Mismatch
        return tuple(_convert(v, a) for v, a in zip(value, args, strict=True))
    item = args[0] if args else Any
    items = [_convert(v, item) for v in value]
    return tuple(items) if origin is tuple else items


def check_overrides(cls: type, overrides: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """Every override checked against `cls`'s fields: unknown names and wrong types are one-line errors.

    `where` says where the overrides came from (e.g. "profiles.toml [quick.agents.dt]") and starts each
    message; without it the message names the config class.
    """
    types_ = field_types(cls)
    name = cls.__name__
    unknown = sorted(set(overrides) - set(types_))
    if unknown:
        prefix = f"{where}: " if where else ""
        raise BenchError(f"{prefix}unknown {name} field(s) {', '.join(unknown)}; accepted: {', '.join(sorted(types_))}")
    return {k: check_value(v, types_[k], f"{where} {k}" if where else f"{name}.{k}") for k, v in overrides.items()}
