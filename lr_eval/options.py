"""Options declared once, on dataclass fields: each :func:`option` field is a command-line flag (help, metavar,
choices, its default shown), a key of a TOML table or of lm-eval metadata, and a typed value.

``add_options`` puts a settings class's flags on a parser, ``from_args`` reads them back, ``coerce_values``
types the values of a table (TOML is typed already; metadata and environment-style sources give text) and
``argv_of`` writes the flags that give those values (what ``lr-train run --plan`` shows). Fields without
``option`` metadata are internal: no flag, no key.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, Field, dataclass
from typing import Any

from .records import FieldError

_KEY = "option"


@dataclass(frozen=True)
class Opt:
    """How one field is given: `flag` the long option when not the field's name (``--lambda`` style extra
    spellings in `aliases`), `short` a one-letter flag, `zero_is_none` reads 0 as "none" (no limit),
    `switch` a yes/no flag without a ``--no-`` form; `result` False: the value changes no result (where a
    cache lives, how many requests are in flight), so it stays out of resume keys."""

    help: str = ""
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    flag: str | None = None
    aliases: tuple[str, ...] = ()
    short: str | None = None
    zero_is_none: bool = False
    switch: bool = False
    result: bool = True

    def long(self, f: Field[Any]) -> str:
        return "--" + (self.flag or f.name).replace("_", "-")


def option(default: Any = MISSING, help: str = "", *, default_factory: Any = MISSING, **kw: Any) -> Any:
    """A dataclass field that is also an option (see :class:`Opt` for the keywords)."""
    meta = {_KEY: Opt(help=help, **kw)}
    if default_factory is not MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def option_fields(cls: Any) -> list[Field[Any]]:
    return [f for f in dataclasses.fields(cls) if _KEY in f.metadata]


def opt_of(f: Field[Any]) -> Opt:
    opt: Opt = f.metadata[_KEY]
    return opt


def kind(f: Field[Any]) -> type:
    """The value type a field's option takes: bool, int, float or str (a list of names is given as text)."""
    head = str(f.type).replace(" ", "").split("|")[0]
    return {"bool": bool, "int": int, "float": float}.get(head, str)


def default_of(f: Field[Any]) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return None


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple)):
        return ",".join(_shown(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def help_text(f: Field[Any]) -> str | None:
    """The field's help, with its default unless the help already says it (or there is none to say)."""
    o, default = opt_of(f), default_of(f)
    text = o.help
    if "default" not in text and default not in (None, "", MISSING) and not (o.switch and default is False):
        text = f"{text} (default {_shown(default)})" if text else f"default {_shown(default)}"
    return text.replace("%", "%%") or None


def add_options(parser: Any, cls: Any, dest_prefix: str = "", suppress: bool = False,
                skip: Iterable[str] = (), required: Iterable[str] = ()) -> None:
    """One flag per option field of `cls` on `parser` (a parser or an argument group). `suppress`: a flag not
    given is absent from the namespace (the value then comes from elsewhere: the dataclass, a file, the
    environment); otherwise it defaults to the field's default. `dest_prefix` names the namespace attributes;
    the fields in `required` must be given."""
    skipped, needed = set(skip), set(required)
    for f in option_fields(cls):
        if f.name in skipped:
            continue
        o = opt_of(f)
        t = kind(f)
        default = argparse.SUPPRESS if suppress else default_of(f)
        kw: dict[str, Any] = {"dest": dest_prefix + f.name, "default": default, "help": help_text(f)}
        if f.name in needed:
            kw["required"] = True
        names = [o.long(f), *("--" + a.replace("_", "-") for a in o.aliases)]
        if o.short:
            names.insert(0, "-" + o.short)
        if t is bool:
            kw["action"] = "store_true" if o.switch else argparse.BooleanOptionalAction
        else:
            kw["type"] = int if t is int else float if t is float else str
            if o.choices:
                kw["choices"] = o.choices
            else:
                kw["metavar"] = o.metavar
        parser.add_argument(*names, **kw)


def from_args(cls: Any, args: argparse.Namespace, dest_prefix: str = "") -> dict[str, Any]:
    """The option values present in `args` (``add_options``), by field name, 0 read as None where it means none."""
    out: dict[str, Any] = {}
    for f in option_fields(cls):
        if hasattr(args, dest_prefix + f.name):
            value = getattr(args, dest_prefix + f.name)
            out[f.name] = None if opt_of(f).zero_is_none and value == 0 and not isinstance(value, bool) else value
    return out


def key_index(classes: Iterable[Any]) -> dict[str, tuple[Any, Field[Any]]]:
    """Key (the long option, underscored; also the field's name and the aliases) → (class, field)."""
    index: dict[str, tuple[Any, Field[Any]]] = {}
    for cls in classes:
        for f in option_fields(cls):
            o = opt_of(f)
            for name in ((o.flag or f.name), f.name, *o.aliases):
                index.setdefault(name.replace("-", "_"), (cls, f))
    return index


def coerce(f: Field[Any], value: Any, key: str | None = None) -> Any:
    """One value for a field, typed: numbers from numbers or their text, yes/no only from true/false, text from
    text or numbers, a list as comma-separated text. FieldError names `key` (default: the field)."""
    name, t, o = key or f.name, kind(f), opt_of(f)
    if value is None:
        if default_of(f) is not None and not o.zero_is_none:
            raise FieldError(name, f"expected a value, got {value!r}")
        return None
    if t is bool:
        if not isinstance(value, bool):
            raise FieldError(name, f"must be true or false, got {value!r}")
        return value
    if isinstance(value, bool):
        raise FieldError(name, f"takes a value, not {str(value).lower()}")
    if t is int:
        if isinstance(value, float) and not value.is_integer():
            raise FieldError(name, f"expected an integer, got {value!r}")
        try:
            out: Any = int(value)
        except (TypeError, ValueError):
            raise FieldError(name, f"expected an integer, got {value!r}") from None
    elif t is float:
        try:
            out = float(value)
        except (TypeError, ValueError):
            raise FieldError(name, f"expected a number, got {value!r}") from None
        if out != out or out in (float("inf"), float("-inf")):
            raise FieldError(name, f"expected a finite number, got {value!r}")
    elif isinstance(value, (list, tuple)):
        out = ",".join(str(v) for v in value)
    elif isinstance(value, (dict, set)):
        raise FieldError(name, f"expected text, got {value!r}")
    else:
        out = str(value)
    if o.choices and out not in o.choices:
        raise FieldError(name, f"expected one of {', '.join(o.choices)}, got {out!r}")
    return None if o.zero_is_none and out == 0 else out


def coerce_values(classes: Iterable[Any], values: Mapping[str, Any], where: str = "",
                  ignore_others: bool = False) -> dict[Any, dict[str, Any]]:
    """The values of a table (keys: long options or field names, ``-`` or ``_``) typed per class: {class:
    {field: value}}. An unknown key is a FieldError naming the known ones, unless `ignore_others`."""
    classes = list(classes)
    index = key_index(classes)
    out: dict[Any, dict[str, Any]] = {cls: {} for cls in classes}
    for key, value in values.items():
        hit = index.get(key.replace("-", "_"))
        if hit is None:
            if ignore_others:
                continue
            raise FieldError(key, "unknown key", where)
        cls, f = hit
        try:
            out[cls][f.name] = coerce(f, value, key)
        except FieldError as e:
            raise FieldError(e.field, e.problem, where) from None
    return out


def argv_of(classes: Iterable[Any], values: Mapping[str, Any]) -> list[str]:
    """The flags that give `values` (keys as in :func:`coerce_values`, in their order): ``--flag VALUE``,
    ``--flag`` / ``--no-flag`` for yes/no, a list as comma-separated text."""
    index = key_index(classes)
    argv: list[str] = []
    for key, value in values.items():
        _, f = index[key.replace("-", "_")]
        o = opt_of(f)
        if kind(f) is bool:
            if value:
                argv.append(o.long(f))
            elif not o.switch:
                argv.append("--no-" + o.long(f)[2:])
        elif value is None:
            argv += [o.long(f), "0"] if o.zero_is_none else []
        else:
            argv += [o.long(f), ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)]
    return argv
