"""One configuration style: dataclasses, checked by pydantic, that also load from YAML (``--config recipe.yaml``).

Values are validated against the dataclass's field types by pydantic (lax mode: ``1e-5``, which YAML 1.1 reads as a
string, becomes a float; ``"8"`` an int), before anything else runs. An unknown key, a missing one or a bad value is a
`ConfigError` naming the file, the key path and the value. Nested sections are dataclasses too; task arguments, whose
keys come from a function's signature, are checked with `validate_arguments` against its annotations.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file with an unknown key or a bad value (named in the message)."""


def read_mapping(path: str | Path, error: type[Exception] = ConfigError) -> dict[str, Any]:
    """A YAML file's top-level mapping (an empty file is ``{}``)."""
    source = Path(path)
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise error(f"{source}: cannot read config ({exc})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise error(f"{source}: expected a mapping of option: value, got {type(data).__name__}")
    return data


def load_config(cls: type[T], path: str | Path | None = None, **overrides: Any) -> T:
    """Build ``cls`` from a YAML file, then apply non-None keyword overrides; unknown keys are errors."""
    values: dict[str, Any] = read_mapping(path) if path is not None else {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return validate_config(cls, values, str(path) if path is not None else cls.__name__)


def field_docs(cls: type) -> dict[str, str]:
    """Each field's text in the ``Attributes:`` section of a dataclass's Google-style docstring (joined lines)."""
    docs: dict[str, str] = {}
    lines = (cls.__doc__ or "").expandtabs().splitlines()
    inside, name, indent = False, "", 0
    for line in lines:
        stripped = line.strip()
        if stripped == "Attributes:":
            inside, indent = True, len(line) - len(line.lstrip()) + 4
            continue
        if not inside:
            continue
        depth = len(line) - len(line.lstrip())
        if stripped and depth < indent:
            break  # the next section
        if depth == indent and ":" in stripped:
            name, _, text = stripped.partition(":")
            docs[name.strip()] = text.strip()
        elif stripped and name:
            docs[name] += " " + stripped
    return docs


def unwrap_optional(kind: Any) -> Any:
    """``X`` for ``X | None`` (nested optionals too); any other type as it is."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        inner = [k for k in typing.get_args(kind) if k is not type(None)]
        return unwrap_optional(inner[0]) if len(inner) == 1 else kind
    return kind


def _allowed(cls: Any, loc: tuple[Any, ...]) -> list[str]:
    """The field names allowed at the mapping that holds ``loc``'s last key (for "unknown key" messages)."""
    kind = cls
    for part in loc[:-1]:
        kind = unwrap_optional(kind)
        if dataclasses.is_dataclass(kind):
            kind = typing.get_type_hints(kind).get(str(part), Any)
        elif typing.get_origin(kind) in (dict, list):
            kind = typing.get_args(kind)[-1]
        else:
            return []
    kind = unwrap_optional(kind)
    return [f.name for f in dataclasses.fields(kind)] if dataclasses.is_dataclass(kind) else []


def _problems(error: Any, cls: Any = None, prefix: tuple[Any, ...] = ()) -> list[str]:
    problems = []
    for item in error.errors():
        loc = (*prefix, *item["loc"])
        key = ".".join(str(part) for part in loc)
        if item["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            allowed = _allowed(cls, tuple(item["loc"])) if cls is not None else []
            message = "unknown key" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
        elif item["type"] == "missing":
            message = "missing"
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
            if item["type"] != "value_error" and "input" in item:
                message += f" (got {item['input']!r})"
        problems.append(f"{key}: {message}" if key else message)
    return problems


def _forbid_extra(kind: Any) -> None:
    """Have pydantic reject unknown keys in ``kind`` and every dataclass nested in its fields."""
    kind = unwrap_optional(kind)
    if typing.get_origin(kind) in (dict, list):
        _forbid_extra(typing.get_args(kind)[-1])
    elif dataclasses.is_dataclass(kind) and isinstance(kind, type) and "__pydantic_config__" not in vars(kind):
        kind.__pydantic_config__ = {"extra": "forbid"}  # type: ignore[attr-defined]  # pydantic's ConfigDict
        for kind_of_field in typing.get_type_hints(kind).values():
            _forbid_extra(kind_of_field)


def validate_config(cls: type[T], values: dict[str, Any], where: str, error: type[Exception] = ConfigError) -> T:
    """``cls(**values)`` with every value checked (and coerced where unambiguous) against its field's type.

    Unknown keys are errors at every level: the dataclasses are validated with pydantic's ``extra="forbid"``.
    """
    import pydantic

    _forbid_extra(cls)
    try:
        return pydantic.TypeAdapter(cls).validate_python(values)
    except pydantic.ValidationError as exc:
        raise error(f"{where}: " + "; ".join(_problems(exc, cls))) from None
    except (TypeError, ValueError) as exc:
        raise error(f"{where}: {exc}") from exc


def validate_model(model: Any, values: dict[str, Any], where: str, prefix: tuple[str, ...] = (),
                   error: type[Exception] = ConfigError) -> None:  # fmt: skip
    """Check ``values`` against the pydantic model ``model`` (its types and validators), unknown keys included.

    Pydantic models ignore unknown keys by default, at every depth; a typo there would silently take the default.
    """
    import pydantic

    try:
        model.model_validate(values)
    except pydantic.ValidationError as exc:
        raise error(f"{where}: " + "; ".join(_problems(exc, prefix=prefix))) from None
    unknown = _unknown_model_keys(model, values, prefix)
    if unknown:
        raise error(f"{where}: " + "; ".join(unknown))


def _unknown_model_keys(kind: Any, value: Any, loc: tuple[Any, ...]) -> list[str]:
    """The keys in ``value`` that the pydantic model it is validated as (inside ``kind``) does not know."""
    import pydantic

    options = typing.get_args(kind) if typing.get_origin(kind) in (typing.Union, types.UnionType) else (kind,)
    if isinstance(value, dict):
        models = [k for k in options if isinstance(k, type) and issubclass(k, pydantic.BaseModel)]
        if len(models) == 1:
            known = models[0].model_fields
            names = {*known, *(f.alias for f in known.values() if f.alias)}
            problems = []
            for key, item in value.items():
                path = ".".join(str(part) for part in (*loc, key))
                if key not in names:
                    problems.append(f"{path}: unknown key (allowed: {', '.join(known)})")
                elif key in known:
                    problems += _unknown_model_keys(known[key].annotation, item, (*loc, key))
            return problems
        mappings = [k for k in options if typing.get_origin(k) is dict]
        if len(mappings) == 1:
            inner = typing.get_args(mappings[0])[-1]
            return [p for key, item in value.items() for p in _unknown_model_keys(inner, item, (*loc, key))]
    if isinstance(value, list):
        sequences = [k for k in options if typing.get_origin(k) is list]
        if len(sequences) == 1:
            inner = typing.get_args(sequences[0])[0]
            return [p for i, item in enumerate(value) for p in _unknown_model_keys(inner, item, (*loc, i))]
    return []


def validate_arguments(
    function: Callable[..., Any], values: dict[str, Any], where: str, error: type[Exception] = ConfigError
) -> dict[str, Any]:
    """``values`` checked (and coerced) against ``function``'s annotations; keys it does not annotate pass as is."""
    import pydantic

    hints = typing.get_type_hints(function)
    checked, problems = dict(values), []
    for name, value in values.items():
        if name in hints and name != "return":
            try:
                checked[name] = pydantic.TypeAdapter(hints[name]).validate_python(value)
            except pydantic.ValidationError as exc:
                problems += [p.replace(f"{name}: ", f"{name}={value!r}: ", 1) for p in _problems(exc, prefix=(name,))]
    if problems:
        raise error(f"{where}: " + "; ".join(problems))
    return checked
