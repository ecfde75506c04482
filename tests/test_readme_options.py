"""The README's options tables against the code: every option of `summarize` and `summarize eval` in a
table with the default the code (and its --help) gives, and no option in a table that the code lacks.

A test rather than cog: the tables keep their prose (what "model's" means, examples), and the check is
what must not drift: names and defaults.
"""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path

import click
import pytest
import typer.main

from summarize_cli.cli.app import app
from summarize_cli.model.settings import FALLBACK, GenerationSettings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
SUMMARIZE_TABLE = "## Options"
EVAL_TABLE = "## Measuring quality: `summarize eval`"
GEN_FIELDS = {f for f in GenerationSettings.__dataclass_fields__}
UNSET = {"none", "off"}  # what a table says of an option that takes nothing unless given


def table(heading: str) -> dict[str, str]:
    """The first `| option | default | meaning |` table under `heading`: each name in its first cell
    (options, and arguments in capitals) -> its default cell, backticks removed."""
    lines = README.split(heading + "\n", 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| option | default |"))
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        names, default = (cell.strip() for cell in line.strip("|").split(" | ")[:2])
        argument = re.fullmatch(r"`\[?([A-Z]+)\]?(?:\.\.\.)?`", names)
        found = [argument.group(1)] if argument else re.findall(r"(?<![\w-])(--?[a-z0-9][\w-]*)", names)
        assert found, f"a row naming nothing: {line}"
        for name in found:
            assert name not in rows, f"{name} is in two rows"
            rows[name] = default.replace("`", "")
    return rows


def commands() -> dict[str, tuple[click.Command, list[click.Parameter]]]:
    """`summarize` (the default command with the group's own options and --help) and `summarize eval`."""
    group = typer.main.get_command(app)
    summarize = group.commands["summarize"]
    evaluate = group.commands["eval"]

    def help_option(command: click.Command) -> click.Option:  # -h too, from the command's own settings
        return command.get_help_option(click.Context(command, **command.context_settings))

    return {
        "summarize": (summarize, [*summarize.params, *group.params, help_option(summarize)]),
        "eval": (evaluate, [*evaluate.params, help_option(evaluate)]),
    }


def names(param: click.Parameter) -> list[str]:
    if param.param_type_name == "argument":
        return [param.name.upper()]
    return [*param.opts, *param.secondary_opts]


def help_default(param: click.Parameter) -> str | None:
    """What the help text says the default is, in its own words ("default: physical cores")."""
    found = re.search(r"default: ([^;)]+?)\.?(?:[;)]|$)", getattr(param, "help", None) or "", re.IGNORECASE)
    return found.group(1).replace("--", "").strip() if found else None


def first_word(cell: str) -> str:
    """The cell's default value: its first word, digit groups joined (20,000,000)."""
    return re.sub(r"(?<=\d),(?=\d{3})", "", cell).split(" ")[0].rstrip(",")


def same(value: object, word: str) -> bool:
    if isinstance(value, float):
        try:
            return float(word) == value
        except ValueError:
            return False
    return str(value.value if isinstance(value, Enum) else value) == word


def check_default(param: click.Parameter, cell: str) -> str | None:
    """Why the table's default for `param` is not the code's (None: it is)."""
    name = names(param)[-1]
    field = getattr(param, "name", "")
    said = help_default(param)
    if said is not None:  # the help text states it: the table says the same (the cell may go on)
        return None if cell.replace("--", "").startswith(said) else f"{name}: help says {said!r}, table {cell!r}"
    if param.required:
        return None if cell == "required" else f"{name}: required, table {cell!r}"
    if param.default is True:
        return None if cell == "on" else f"{name}: on by default, table {cell!r}"
    if isinstance(param, click.Option) and param.is_flag and not param.secondary_opts or param.default is False:
        return None if cell == "off" else f"{name}: a flag off by default, table {cell!r}"
    if param.default is not None:  # a value shown by --help as [default: ...]
        return None if same(param.default, first_word(cell)) else f"{name}: code {param.default!r}, table {cell!r}"
    if field in FALLBACK:  # the model's own: t5-small's figure may follow
        return None if cell.startswith("model's") else f"{name}: the model's own default, table {cell!r}"
    if field in GEN_FIELDS:  # a fixed default of the generation settings
        fixed = GenerationSettings.__dataclass_fields__[field].default
        if fixed is None or fixed is False:
            return None if cell in UNSET else f"{name}: off unless given, table {cell!r}"
        return None if same(fixed, first_word(cell)) else f"{name}: settings default {fixed!r}, table {cell!r}"
    return None if cell in UNSET else f"{name}: nothing unless given, table {cell!r}"


@pytest.mark.parametrize("command", ["summarize", "eval"])
def test_every_option_is_in_the_readme_with_its_default(command):
    """Each option (its every spelling) in the command's table, eval's shared options in summarize's
    table, with the code's default; `--help`'s own "default: ..." words and the table's agree."""
    own = table(EVAL_TABLE) if command == "eval" else {}
    shared = table(SUMMARIZE_TABLE)
    _, params = commands()[command]
    missing, wrong = [], []
    for param in params:
        for name in names(param):
            cell = own.get(name, shared.get(name))
            if cell is None:
                missing.append(name)
            elif problem := check_default(param, cell):
                wrong.append(problem)
    assert missing == []
    assert wrong == []


def test_no_option_in_the_readme_that_the_code_lacks():
    """A renamed or removed option cannot linger in a table."""
    known: dict[str, list[str]] = {}
    for command, (_, params) in commands().items():
        for param in params:
            for name in names(param):
                known.setdefault(name, []).append(command)
    summarize_names = {n for n, cs in known.items() if "summarize" in cs}
    eval_names = {n for n, cs in known.items() if "eval" in cs}
    assert sorted(set(table(SUMMARIZE_TABLE)) - summarize_names) == []
    assert sorted(set(table(EVAL_TABLE)) - eval_names) == []


def test_the_checks_see_a_drifted_table():
    """The checker itself: a wrong default, a flag said on, a model's default given as a number."""
    params = {p.name: p for p in commands()["summarize"][1]}
    assert check_default(params["timeout"], "30") is None
    assert check_default(params["timeout"], "60") == "--timeout: code 30.0, table '60'"
    assert check_default(params["max_input_bytes"], "20,000,000 bytes") is None
    assert check_default(params["offline"], "on") is not None
    assert check_default(params["num_beams"], "4") is not None
    assert check_default(params["temperature"], "1.0") is None
    assert check_default(params["temperature"], "0.7") is not None
    assert check_default(params["do_sample"], "model's (no)") is not None
    assert check_default(params["threads"], "16") is not None
