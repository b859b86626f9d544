"""lr_eval.options: one declaration per option gives the flag, its help with the default, the table key and
the typed value."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from lr_eval.options import add_options, argv_of, coerce_values, from_args, help_text, option, option_fields
from lr_eval.records import FieldError


@dataclass
class Demo:
    size: int | None = option(128, "chunk size", metavar="N", zero_is_none=True)
    rate: float = option(0.5, "a rate", aliases=("r",))
    mode: str = option("a", "mode", choices=("a", "b"))
    on: bool = option(True, "a yes/no setting")
    quiet: bool = option(False, "a switch", switch=True)
    internal: int = 3


def test_flags_defaults_and_values() -> None:
    assert [f.name for f in option_fields(Demo)] == ["size", "rate", "mode", "on", "quiet"]
    assert help_text(option_fields(Demo)[0]) == "chunk size (default 128)"
    p = argparse.ArgumentParser()
    add_options(p, Demo)
    assert Demo(**from_args(Demo, p.parse_args([]))) == Demo()
    given = from_args(Demo, p.parse_args(["--size", "0", "--r", "2", "--mode", "b", "--no-on", "--quiet"]))
    assert given == {"size": None, "rate": 2.0, "mode": "b", "on": False, "quiet": True}
    s = argparse.ArgumentParser()
    add_options(s, Demo, suppress=True)
    assert from_args(Demo, s.parse_args(["--rate", "1"])) == {"rate": 1.0}


def test_table_values_are_typed_and_named() -> None:
    typed = coerce_values([Demo], {"size": "64", "r": 3, "on": False})[Demo]
    assert typed == {"size": 64, "rate": 3.0, "on": False}
    assert argv_of([Demo], {"size": 0, "r": 3, "on": False, "quiet": False}) == ["--size", "0", "--rate", "3",
                                                                                  "--no-on"]
    for values, match in (({"rate": float("nan")}, "finite"), ({"size": 2.5}, "integer"), ({"on": "yes"}, "true or"),
                          ({"mode": "c"}, "one of a, b"), ({"internal": 1}, "unknown key"), ({"size": True}, "value")):
        with pytest.raises(FieldError, match=match):
            coerce_values([Demo], values, where="t.toml [x]")
