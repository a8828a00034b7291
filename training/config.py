"""Dataclass configs that also load from YAML (``--config recipe.yaml``), trl-style.

Values are validated against the dataclass's field types by pydantic (lax mode: ``1e-5``, which YAML 1.1 reads as a
string, becomes a float; ``"8"`` an int), before anything else runs; an error names the file, the key and the value.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file with an unknown key or a bad value (named in the message)."""


def load_config(cls: type[T], path: str | Path | None = None, **overrides: Any) -> T:
    """Build ``cls`` from a YAML file, then apply non-None keyword overrides; unknown keys are errors."""
    values: dict[str, Any] = {}
    if path is not None:
        source = Path(path)
        try:
            data = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as error:
            raise ConfigError(f"{source}: cannot read config ({error})") from error
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a mapping of option: value")
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {unknown}; known: {sorted(names)}")
        values.update(data)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return validate_config(cls, values, str(path) if path is not None else cls.__name__)


def validate_config(cls: type[T], values: dict[str, Any], where: str) -> T:
    """``cls(**values)`` with every value checked (and coerced where unambiguous) against its field's type."""
    import pydantic

    try:
        return pydantic.TypeAdapter(cls).validate_python(values)
    except pydantic.ValidationError as error:
        problems = []
        for item in error.errors():
            key = ".".join(str(part) for part in item["loc"])
            message = str(item["msg"]).removeprefix("Value error, ")
            shown = f" (got {item['input']!r})" if item["type"] != "value_error" and "input" in item else ""
            problems.append(f"{key}: {message}{shown}" if key else message)
        raise ConfigError(f"{where}: " + "; ".join(problems)) from None
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}: {error}") from error
