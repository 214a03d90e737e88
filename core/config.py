"""A strict loader from nested dicts (parsed YAML) into frozen dataclasses.

Unknown keys, missing keys and wrong types are errors that name the full key path
(e.g. ``render.faces.identities.train``) and the expected form. Semantic checks (ranges, counts)
live in each dataclass's ``check()`` and raise ``ParamsError`` the same way.
"""

from __future__ import annotations

import dataclasses
import math
import types
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

T = TypeVar("T")


class ParamsError(ValueError):
    """A params value is wrong; the message names its key path and what was expected."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(f"params key '{key}': {message}" if key else message)


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is tuple:
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_type_name(args[0])}"
        return f"a list of {len(args)} ({', '.join(_type_name(a) for a in args)})"
    if origin is dict:
        k, v = get_args(tp)
        return f"a mapping of {_type_name(k)} to {_type_name(v)}"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def _shape(x: Any) -> str:
    """'mapping', 'list' or 'scalar': of a value, or of the values a type accepts."""
    if isinstance(x, dict) or get_origin(x) is dict or dataclasses.is_dataclass(x):
        return "mapping"
    if isinstance(x, list | tuple) or get_origin(x) is tuple:
        return "list"
    return "scalar"


def _convert(tp: Any, value: Any, key: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        if value not in get_args(tp):
            raise ParamsError(key, f"expected one of {_type_name(tp)}, got {value!r}")
        return value
    if origin in (Union, types.UnionType):
        # The one member of the value's shape (mapping, list, scalar) gives its own, precise
        # error: `steps: {faces: .nan}` names train.steps.faces, not train.steps.
        shaped = [a for a in get_args(tp) if a is not type(None) and _shape(a) == _shape(value)]
        if len(shaped) == 1 and value is not None:
            return _convert(shaped[0], value, key)
        for arg in get_args(tp):
            try:
                return _convert(arg, value, key)
            except ParamsError:
                pass
        raise ParamsError(key, f"expected {_type_name(tp)}, got {value!r}")
    if tp is type(None):
        if value is not None:
            raise ParamsError(key, f"expected null, got {value!r}")
        return None
    if dataclasses.is_dataclass(tp):
        return build(tp, value, key)
    if origin is tuple:
        args = get_args(tp)
        if not isinstance(value, list | tuple):
            raise ParamsError(key, f"expected {_type_name(tp)}, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ParamsError(key, f"expected {_type_name(tp)}, got {len(value)} items: {value!r}")
        return tuple(_convert(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin is dict:
        kt, vt = get_args(tp)
        if not isinstance(value, dict):
            raise ParamsError(key, f"expected {_type_name(tp)}, got {value!r}")
        return {_convert(kt, k, key): _convert(vt, v, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ParamsError(key, f"expected true or false, got {value!r}")
        return value
    # One rule for every number of every stage: finite, and an integer fits in 64 bits (what
    # numpy, HDF5 attributes and torch hold); each key's own domain is its check()'s.
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(key, f"expected an integer, got {value!r}")
        if not -(2**63) <= value < 2**63:
            raise ParamsError(key, f"integer {value} does not fit in 64 bits")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ParamsError(key, f"expected a number, got {value!r}")
        if isinstance(value, int) and not -(2**63) <= value < 2**63:
            raise ParamsError(key, f"number {value} is out of range")
        if not math.isfinite(value):
            raise ParamsError(key, f"expected a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ParamsError(key, f"expected a string, got {value!r}")
        return value
    raise TypeError(f"config loader does not support type {tp!r} (at {key})")


def build(cls: type[T], data: Any, key: str = "") -> T:
    """Build dataclass `cls` from mapping `data`, strictly; then run its ``check()`` if any."""
    if not isinstance(data, dict):
        raise ParamsError(key, f"expected a mapping, got {data!r}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{key}.{unknown[0]}" if key else str(unknown[0])
        raise ParamsError(where, f"unknown key (allowed here: {', '.join(sorted(fields))})")
    kwargs = {}
    for name, f in fields.items():
        sub = f"{key}.{name}" if key else name
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], sub)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ParamsError(sub, f"missing (expected {_type_name(hints[name])})")
    obj = cls(**kwargs)
    check = getattr(obj, "check", None)
    if check is not None:
        check(key)
    return obj


def to_dict(obj: Any) -> Any:
    """The plain-data (YAML/JSON-able) form of a built config."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple | list):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def set_dotted(data: dict, dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in nested dict `data`; a missing parent is an error naming the key."""
    parts = dotted.split(".")
    cur = data
    for i, part in enumerate(parts[:-1]):
        nxt = cur.get(part) if isinstance(cur, dict) else None
        if not isinstance(nxt, dict):
            raise ParamsError(".".join(parts[: i + 1]), f"no such section for override '{dotted}'")
        cur = nxt
    cur[parts[-1]] = value


__all__ = ["ParamsError", "build", "set_dotted", "to_dict"]
