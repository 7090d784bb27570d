"""The command line of a settings dataclass, in the spellings RL command lines accept.

One dashed flag per field, typed from the field's annotation, help from its docstring:
booleans are switches (`--double`, `--no-double`; `--double false` also works), tuples take
space-separated values (`--hidden-sizes 128 128`; `[128,128]` also works), `X | None` takes
`null`, Literal fields take one of their values, mappings take inline YAML (`'{width: 256}'`).
Built on the standard library's argparse; errors become one-line `ConfigError`s.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import types
from collections.abc import Callable
from typing import Any, Literal, NoReturn, Union, get_args, get_origin, get_type_hints

import docstring_parser
import yaml

from dqn_lightning.errors import ConfigError

_KIND_NAMES = {int: "a whole number", float: "a number"}
TRUE, FALSE, NULL = ("true", "yes", "on", "1"), ("false", "no", "off", "0"), ("null", "none")


def flag(name: str) -> str:
    """`batch_size` -> `batch-size`."""
    return name.replace("_", "-")


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(re.sub(r"\s+", " ", message).strip())


class _Switch(argparse.Action):
    """`--name` sets True, `--no-name` False, `--name false` / `--name true` what they say."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: str | None = None) -> None:
        negated = bool(option_string and option_string.startswith("--no-"))
        if values is None:
            setattr(namespace, self.dest, not negated)
        elif values.lower() in NULL and not negated:
            setattr(namespace, self.dest, None)
        elif negated:
            raise ConfigError(f"argument {option_string}: takes no value (got {values!r})")
        else:
            setattr(namespace, self.dest, _boolean(values, option_string))


class _IntList(argparse.Action):
    """`--hidden-sizes 128 128`, also `[128,128]` or `128,128`: a tuple of ints."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: str | None = None) -> None:
        try:
            setattr(namespace, self.dest, tuple(int(t) for t in _tokens(values)))
        except ValueError:
            raise ConfigError(f"argument {option_string}: expected whole numbers, got {' '.join(values)}") from None


class _WordList(argparse.Action):
    """`--logger tensorboard mlflow`, also `[tensorboard,mlflow]`: a tuple of words."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: str | None = None) -> None:
        setattr(namespace, self.dest, tuple(_tokens(values)))


def _tokens(values: list[str]) -> list[str]:
    return [t for value in values for t in re.split(r"[\s,\[\]()]+", str(value)) if t]


def _boolean(text: str, option: str | None) -> bool:
    if text.lower() in TRUE:
        return True
    if text.lower() in FALSE:
        return False
    raise ConfigError(f"argument {option}: expected true or false, got {text!r}")


def _scalar(kind: type, optional: bool) -> Callable[[str], Any]:
    """A converter for one value: ints, finite floats or strings, and `null` when optional."""

    def convert(text: str) -> Any:
        if optional and text.lower() in NULL:
            return None
        if kind is str:
            return text
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {_KIND_NAMES.get(kind, kind.__name__)}, got {text!r}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        return value

    return convert


def _mapping(optional: bool) -> Callable[[str], Any]:
    """A converter for a mapping typed inline as YAML or JSON: `'{width: 256}'`."""

    def convert(text: str) -> Any:
        if optional and text.lower() in NULL:
            return None
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = None
        if not isinstance(value, dict):
            raise argparse.ArgumentTypeError(f"expected a mapping such as '{{width: 256}}', got {text!r}")
        return value

    return convert


def _split_optional(annotation: Any) -> tuple[Any, bool]:
    """(the annotation without None, whether None was allowed)."""
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0], True
    return annotation, False


def build_parser(settings: type, prog: str, description: str, epilog: str | None = None) -> argparse.ArgumentParser:
    """A parser with one flag per field of the dataclass `settings`; only the flags given are in its result."""
    parser = _OneLineParser(
        prog=prog,
        description=description,
        epilog=epilog,
        allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,  # unset flags stay out of the namespace
    )
    helps = {p.arg_name: p.description for p in docstring_parser.parse_from_object(settings).params}
    hints = get_type_hints(settings)
    for field in dataclasses.fields(settings):
        option = f"--{flag(field.name)}"
        kind, optional = _split_optional(hints[field.name])
        text = f"{helps.get(field.name) or ''} (default: {_shown(field.default)})"
        if kind is bool:
            parser.add_argument(option, f"--no-{flag(field.name)}", dest=field.name, nargs="?", action=_Switch,
                                metavar="true|false", help=text)  # fmt: skip
        elif get_origin(kind) is tuple:
            words = get_args(kind)[0] is str
            parser.add_argument(option, dest=field.name, nargs="+", action=_WordList if words else _IntList,
                                metavar="NAME" if words else "N", help=text)  # fmt: skip
        elif kind is dict or get_origin(kind) is dict:
            parser.add_argument(option, dest=field.name, type=_mapping(optional), metavar="YAML", help=text)
        elif get_origin(kind) is Literal:
            choices = [*get_args(kind), *([None] if optional else [])]
            parser.add_argument(option, dest=field.name, type=_scalar(str, optional), choices=choices, help=text)
        else:
            parser.add_argument(option, dest=field.name, type=_scalar(kind, optional), help=text)
    return parser


def _shown(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, tuple):
        return " ".join(str(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def as_flags(settings: dict[str, Any]) -> list[str]:
    """Settings (from YAML) as the flags that set them, so both pass through the same checks."""
    tokens: list[str] = []
    for key, value in settings.items():
        option = f"--{flag(key)}"
        if isinstance(value, bool):
            tokens.append(option if value else f"--no-{flag(key)}")
        elif isinstance(value, dict):
            tokens += [option, json.dumps(value)]
        elif isinstance(value, list | tuple):
            tokens += [option, *(str(v) for v in value)] if value else [option, "[]"]
        else:
            tokens += [option, "null" if value is None else str(value)]
    return tokens


def typed_settings(settings: type, values: dict[str, Any]) -> dict[str, Any]:
    """Settings read from a file (a preset, `--config`, a run's config.yaml), checked and typed
    as data against the dataclass `settings`, with the rules and messages of the flags.

    Values YAML already typed (numbers, booleans, lists, mappings, null) are checked as they are;
    text goes through the flag's own converter (so `1e-3`, which YAML reads as text, is a number).
    """
    hints = get_type_hints(settings)
    return {name: _typed(name, hints[name], value) for name, value in values.items()}


def _typed(name: str, annotation: Any, value: Any) -> Any:
    option = f"--{flag(name)}"
    kind, optional = _split_optional(annotation)

    def wrong(expected: str) -> NoReturn:
        raise ConfigError(f"argument {option}: expected {expected}, got {value!r}")

    if value is None:
        return None if optional else wrong("a value (null is not allowed here)")
    if kind is bool:
        return value if isinstance(value, bool) else _boolean(str(value), option)
    if get_origin(kind) is tuple:
        items = value if isinstance(value, list | tuple) else _tokens([str(value)])
        if get_args(kind)[0] is str:
            return tuple(str(item) for item in items)
        if not all(
            (isinstance(item, int) and not isinstance(item, bool)) or str(item).lstrip("-").isdigit() for item in items
        ):
            wrong("whole numbers")
        return tuple(int(item) for item in items)
    if kind is dict or get_origin(kind) is dict:
        return value if isinstance(value, dict) else wrong("a mapping such as '{width: 256}'")
    if get_origin(kind) is Literal:
        return value if value in get_args(kind) else wrong(f"one of {', '.join(map(str, get_args(kind)))}")
    if isinstance(value, str) or kind is str:
        try:
            return _scalar(kind, optional)(str(value))
        except argparse.ArgumentTypeError as err:
            raise ConfigError(f"argument {option}: {err}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and not isinstance(value, int)):
        wrong(_KIND_NAMES.get(kind, kind.__name__))
    if not math.isfinite(value):
        wrong("a finite number")
    return kind(value)
