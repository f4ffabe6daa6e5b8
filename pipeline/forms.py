"""Launchpad forms and command-line flags generated from the domain's configuration dataclasses: each setting's
name, type, default and help text is defined once, in its dataclass (``field(metadata={"help": ...})``)."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any

import dagster as dg
import pydantic


def _settings(default: Any, exclude: tuple[str, ...]) -> list[tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(type(default))
    return [(f, hints[f.name]) for f in dataclasses.fields(default) if f.init and f.name not in exclude]


def config_form(name: str, default: Any, exclude: tuple[str, ...] = ()) -> type[dg.Config]:
    """A ``dg.Config`` class named ``name`` with one field per init field of the dataclass instance ``default``
    (less ``exclude``), defaulting to its values and described by its help texts."""
    fields: dict[str, Any] = {
        f.name: (hint, pydantic.Field(default=getattr(default, f.name), description=f.metadata.get("help")))
        for f, hint in _settings(default, exclude)
    }
    return pydantic.create_model(name, __base__=dg.Config, **fields)


def _scalar(hint: Any) -> tuple[type, bool]:
    """(the value type, whether None is allowed) of ``int``, ``float | None`` and the like."""
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        kinds = [a for a in args if a is not type(None)]
        return kinds[0], type(None) in args
    return hint, False


def _parser(kind: type, optional: bool, flag: str):
    def parse(text: str) -> Any:
        if optional and text.strip().lower() == "none":
            return None
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be {kind.__name__}, got {text!r}") from None

    parse.__name__ = kind.__name__  # argparse names the type in its usage errors
    return parse


def add_flags(parser: argparse.ArgumentParser, default: Any, exclude: tuple[str, ...] = ()) -> None:
    """One ``--name-with-dashes`` flag per init field of ``default`` (less ``exclude``), with its default and
    help; ``--x/--no-x`` for booleans, ``none`` accepted where the field allows None."""
    for f, hint in _settings(default, exclude):
        flag = "--" + f.name.replace("_", "-")
        value = getattr(default, f.name)
        kind, optional = _scalar(hint)
        help_text = f"{f.metadata.get('help', f.name)} (default: {value})"
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=value, help=help_text)
        else:
            parser.add_argument(flag, type=_parser(kind, optional, flag), default=value, help=help_text)


def from_flags(cls: type, args: argparse.Namespace, default: Any, exclude: tuple[str, ...] = ()) -> Any:
    """The ``cls`` instance the flags of ``add_flags`` describe."""
    return cls(**{f.name: getattr(args, f.name) for f, _ in _settings(default, exclude)})
