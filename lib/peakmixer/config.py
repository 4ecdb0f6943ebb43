"""Typed configs from YAML: nested dataclasses, `--set key.sub=value` overrides, no string eval.

An unknown key or a value of the wrong type is a `ConfigError` that names the key.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class BadInput(Exception):
    """Expected bad input — a missing, corrupt or foreign file, an unknown key or split, a wrong shape: the
    command line reports it in one line naming the file and the reason (exit 2). Anything else that goes
    wrong is a bug and keeps its traceback."""


class MissingFile(BadInput, FileNotFoundError):
    """A file the user named (or a command needs) that is not there: one line naming it, exit 2; a missing
    file anywhere else is a bug and keeps its traceback."""


class ConfigError(BadInput, ValueError):
    """A config key that does not exist or a value of the wrong type."""


def from_dict(cls: type[T], data: dict[str, Any] | None, *, where: str = "") -> T:
    """Build dataclass `cls` from a (nested) dict, checking every key and type."""
    data = data or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"unknown config key {_join(where, unknown[0])!r}; known keys: {sorted(fields)}")
    kwargs = {name: _coerce(hints[name], value, _join(where, name)) for name, value in data.items()}
    return cls(**kwargs)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where=where)
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(typing.get_args(hint), value, where)
    if origin is typing.Literal:
        if value not in typing.get_args(hint) or isinstance(value, bool):
            raise ConfigError(
                f"{where}: {value!r} is not one of {list(typing.get_args(hint))}{_yaml_hint(value)}"
            )
        return value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(hint)[:1] or (Any,)
        return [_coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if hint is Any:
        return value
    return _coerce_scalar(hint, value, where)


def _coerce_union(args: tuple[Any, ...], value: Any, where: str) -> Any:
    """The first member of a union (``X | None``) that takes `value`; else the first member's error."""
    if value is None and type(None) in args:
        return None
    errors = []
    for arg in args:
        if arg is type(None):
            continue
        try:
            return _coerce(arg, value, where)
        except ConfigError as e:
            errors.append(str(e))
    raise ConfigError(errors[0])


def _coerce_scalar(hint: type, value: Any, where: str) -> Any:
    """A float, int, bool or str setting, strictly: a bool is no number and a number no bool."""
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        # PyYAML (YAML 1.1) reads `1e-4` (no dot) as a string; accept any float literal.
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{where}: expected float, got {value!r} (str)") from None
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if hint is int and isinstance(value, bool):
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if not isinstance(value, hint):
        raise ConfigError(
            f"{where}: expected {hint.__name__}, got {value!r} ({type(value).__name__}){_yaml_hint(value)}"
        )
    return value


def _yaml_hint(value: Any) -> str:
    # YAML 1.1 (PyYAML) reads off / on / yes / no unquoted as booleans
    return "; YAML reads off, on, yes and no as booleans: quote the word" if isinstance(value, bool) else ""


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` strings to a nested dict; values are parsed as YAML scalars (safe)."""
    data = _deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value")
        key, raw = item.split("=", 1)
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {key!r}: {part!r} is not a section")
        try:
            node[parts[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError as e:
            raise ConfigError(
                f"override {item!r}: the value is not valid YAML ({e})".splitlines()[0]
            ) from None
    return data


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise MissingFile(f"{path}: config file not found")
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, not a YAML config file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        raise ConfigError(f"{path}: not valid YAML{line} ({getattr(e, 'problem', None) or e})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (a YAML config is text)") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping at the top level")
    return data


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def _deepcopy(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _deepcopy(v) if isinstance(v, dict) else v for k, v in d.items()}


def add_threads_argument(parser: argparse.ArgumentParser, what: str = "CPU threads") -> None:
    """``--threads N`` for a command that computes with torch; `cli.main` applies it (or the default rule,
    `train.default_threads`) before the command runs."""
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        metavar="N",
        help=f"{what} (default: OMP_NUM_THREADS if set, else the cores not busy per the 1-min load, >= 1)",
    )
