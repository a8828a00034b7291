"""The option engine: a command's options derived from a config dataclass (`config_options`), so that every field of
the dataclass is a flag and a YAML recipe file can give the rest."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from warmeval.cli._common import fail


def cli_type(kind: Any) -> Any:
    """The option type of a config field's type: scalars as they are, lists and KEY=VALUE maps as repeatable strings;
    None for what only a config file can give (tuples, nested maps)."""
    import types
    import typing

    from warmeval.util.config import unwrap_optional

    kind = unwrap_optional(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return None
    if kind in (str, int, float, bool):
        return kind
    if typing.get_origin(kind) is typing.Literal:
        return str
    if kind in (list[str], dict[str, str]):
        return list[str]
    return None


def key_values(option: str, specs: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` options as a mapping; a malformed one, or a key given twice (which would silently keep only the
    last value), is a ValueError naming the option, the key and both values."""
    values: dict[str, str] = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"{option} {spec!r}: expected KEY=VALUE")
        if key in values:
            what = "adapter name" if option == "--adapter" else "key"
            raise ValueError(f"{option}: {what} {key!r} is given twice: {values[key]} and {value}; give each once")
        values[key] = value
    return values


def config_options(
    cls: type, *, flags: dict[str, str] | None = None, required: tuple[str, ...] = ()
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command one option per field of the config dataclass ``cls``, and ``--config FILE`` for the rest.

    Each option takes its type from the field and its help and shown default from the dataclass (its docstring's
    ``Attributes:``), so the command cannot drift from the config. Options that are given override the file's values;
    the merged values are validated by `warmeval.util.config.validate_config` as a YAML file would be. The decorated
    command receives the config as its first argument, then its own parameters.

    Args:
        cls: The config dataclass.
        flags: Option names other than ``--field-name`` (e.g. ``{"adapters": "--adapter"}``).
        required: Fields that must be given (by an option or the file) even though the dataclass has a default.
    """
    import dataclasses
    import functools
    import inspect
    import typing

    from warmeval.util.config import field_docs

    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    names = flags or {}

    def flag_of(name: str) -> str:
        return names.get(name, "--" + name.replace("_", "-"))

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        own = list(inspect.signature(command).parameters.values())[1:]
        own_hints = typing.get_type_hints(command)
        maps = {}
        options = [inspect.Parameter(
            "config", inspect.Parameter.KEYWORD_ONLY, annotation=Path | None,
            default=typer.Option(None, "--config", help=f"YAML with {cls.__name__} fields (options override it)."),
        )]  # fmt: skip
        for item in dataclasses.fields(cls):
            kind = cli_type(hints[item.name])
            if kind is None:
                continue
            flag = flag_of(item.name)
            value = item.default
            if item.default_factory is not dataclasses.MISSING:
                value = item.default_factory()
            # The dataclass's default, shown (the option's own default is None: "not given, use the file's").
            shown: str | bool = False if value in (None, dataclasses.MISSING, [], {}) else str(value)
            help = docs.get(item.name, "").replace("``", "`")
            metavar = None
            if hints[item.name] == dict[str, str]:
                maps[item.name] = flag
                help, metavar = help + " Repeatable.", "KEY=VALUE"
            elif kind == list[str]:
                help, metavar = help + " Repeatable.", "TEXT"
            if item.name in required:
                help, shown = help + " Required (here or in --config).", False
            decls = (f"{flag}/--no-{flag.removeprefix('--')}",) if kind is bool else (flag,)
            options.append(inspect.Parameter(
                item.name, inspect.Parameter.KEYWORD_ONLY, annotation=kind | None,
                default=typer.Option(None, *decls, help=help, show_default=shown, metavar=metavar),
            ))  # fmt: skip
        # Given by an option or the file: the fields without a default, and those the command insists on.
        needed = {f.name: flag_of(f.name) for f in dataclasses.fields(cls)
                  if f.name in required or (f.default is dataclasses.MISSING
                                            and f.default_factory is dataclasses.MISSING)}  # fmt: skip
        taken = {p.name for p in options}
        clash = taken & {p.name for p in own}
        if clash:
            raise TypeError(f"{command.__name__}: parameters {sorted(clash)} are also fields of {cls.__name__}")

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> None:
            from warmeval.util.config import ConfigError, read_mapping, validate_config

            mine = {p.name: kwargs.pop(p.name) for p in own}
            path = kwargs.pop("config", None)
            try:
                given = {k: v for k, v in kwargs.items() if v not in (None, [])}
                given.update({k: key_values(flag, given[k]) for k, flag in maps.items() if k in given})
                values = {**(read_mapping(path) if path is not None else {}), **given}
                missing = [flag for name, flag in needed.items() if name not in values]
                if missing:
                    where = f" or in {path}" if path is not None else " (or in --config FILE)"
                    raise ValueError(f"missing option {' and '.join(missing)}{where}")
                config: Any = validate_config(cls, values, str(path) if path is not None else "options")
            except (ConfigError, ValueError) as error:
                fail(error)
            command(config, **mine)

        own = [p.replace(annotation=own_hints[p.name], kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
        wrapper.__signature__ = inspect.Signature([*own, *options])  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in [*options, *own]}
        return wrapper

    return decorate
