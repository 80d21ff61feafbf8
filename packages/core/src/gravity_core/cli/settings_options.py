"""Command-line flags generated from a settings model's fields, the way TRL's ``make_parser`` builds its CLI
from config dataclasses.

A flag is named after its field (``min_reviews`` -> ``--min-reviews``), typed from the field's annotation
(int, float, str, ``Literal`` as a choice, ``bool`` as ``--x/--no-x``, ``list[str]`` as a comma-separated or
repeated value) and documented by the field's ``description`` and built-in default. A flag left out keeps the
configured value (TOML, environment, ``--set``); the flags given reach the command as one ``overrides`` dict
for :func:`gravity_core.options.apply_options`, which validates them like the configuration file, so a flag
can never accept what the file would reject, and its help can never drift from the setting it sets.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, TypeVar, get_args, get_origin

import click
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from gravity_core.options import split_list

F = TypeVar("F", bound=Callable[..., Any])


def settings_options(model: type[BaseModel], section: str | None, *fields: str) -> Callable[[F], F]:
    """Add one flag per named field of ``model`` (the ``[section]`` of the configuration, or None for a
    command's own options model) to a click command.

    Put it between ``@group.command()`` and ``@pass_cli``; the command takes ``overrides: dict[str, Any]``
    holding the flags that were given, already turned into the field's shape (lists split)."""
    specs = [_FlagSpec.of(model, section, name) for name in fields]

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def with_overrides(*args: Any, **kwargs: Any) -> Any:
            given = {spec.name: spec.value(kwargs.pop(spec.name)) for spec in specs}
            overrides = {name: value for name, value in given.items() if value is not None}
            return command(*args, overrides=overrides, **kwargs)

        # click collects decorators bottom-up: add in reverse so --help lists fields in the order given
        for spec in reversed(specs):
            with_overrides = spec.option()(with_overrides)
        return typing.cast(F, with_overrides)

    return decorate


class _FlagSpec:
    def __init__(self, name: str, section: str | None, field: FieldInfo, annotation: Any) -> None:
        self.name = name
        self.section = section
        self.field = field
        self.annotation = _strip_optional(annotation)

    @classmethod
    def of(cls, model: type[BaseModel], section: str | None, name: str) -> _FlagSpec:
        field = model.model_fields.get(name)
        if field is None:
            raise TypeError(f"{model.__name__} has no field {name!r} to make a flag of")
        if not field.description:
            raise TypeError(f"{model.__name__}.{name} needs a description: it is the flag's help")
        return cls(name, section, field, field.annotation)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def is_list(self) -> bool:
        return get_origin(self.annotation) in (list, tuple)

    def option(self) -> Callable[[F], F]:
        shape = ", comma-separated or repeated" if self.is_list else ""
        default = (
            f"default: [{self.section}] {self.name}, built in: {self._default()}"
            if self.section
            else f"default: {self._default()}"
        )
        help_text = f"{self.field.description}{shape} ({default})."
        if self.annotation is bool:
            flags = f"{self.flag}/--no-{self.flag[2:]}"
            return click.option(flags, self.name, default=None, help=help_text)
        if self.is_list:
            return click.option(self.flag, self.name, multiple=True, help=help_text)
        return click.option(self.flag, self.name, type=self._click_type(), default=None, help=help_text)

    def value(self, raw: Any) -> Any:
        if self.is_list:
            return split_list(raw) if raw else None
        return raw

    def _click_type(self) -> click.ParamType | type:
        annotation = self.annotation
        if get_origin(annotation) is Literal:
            return click.Choice([str(v) for v in get_args(annotation)])
        if annotation in (int, float, str):
            return typing.cast(type, annotation)
        raise TypeError(f"no flag type for {self.name}: {annotation!r}")

    def _default(self) -> str:
        if self.field.is_required():
            return "required"
        value = self.field.get_default(call_default_factory=True)
        if isinstance(value, list | tuple):
            return ",".join(map(str, value)) or "none"
        return str(value) if value != "" else "empty"


def _strip_optional(annotation: Any) -> Any:
    """``X | None`` -> ``X`` (an unset flag already means "keep the configured value")."""
    if get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation
