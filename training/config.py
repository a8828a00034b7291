"""Dataclass configs that also load from YAML (``--config recipe.yaml``), trl-style."""

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
    try:
        return cls(**values)
    except TypeError as error:
        raise ConfigError(f"{cls.__name__}: {error}") from error
