"""The config file: defaults for any option of `summarize` and `summarize eval`, set once in TOML.

Keys are the long option names (`num-beams = 2`); an `[eval]` table holds eval's own. The command line,
then environment variables, then the file, then the model's own defaults: Click's `default_map` gives
exactly that order, so the file only ever fills in what was not said.
"""

from __future__ import annotations

import sys
from pathlib import Path

from summarize_cli.dirs import config_file
from summarize_cli.errors import SettingsError, SummarizeError


def config_path() -> Path:
    """$SUMMARIZE_CONFIG, else config.toml in the user config folder (~/.config/summarize-cli on Linux)."""
    return config_file()


def read_config(path: Path) -> dict:
    """The file's tables as dicts; {} when there is no file. Unreadable or invalid TOML is an error."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise SummarizeError(f"cannot read the config file {path}: {exc.strerror or exc}") from None
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"the config file {path} is not valid TOML: {exc}") from None


NOT_SETTINGS = ("clear-cache", "version", "help")  # actions, not defaults


def option_defaults(path: Path, table: dict, options: dict[str, object]) -> dict[str, object]:
    """`table`'s keys checked against `options` (long name -> Click parameter) and turned into a
    default_map (parameter name -> value). Any unknown key, wrong type or bad value names the file."""
    options = {k: v for k, v in options.items() if k not in NOT_SETTINGS}
    defaults = {}
    for key, value in table.items():
        param = options.get(key)
        if param is None:
            known = ", ".join(sorted(options))
            raise SettingsError(f"the config file {path}: unknown key '{key}' (known keys: {known})")
        defaults[param.name] = check_value(path, key, param, value)
    return defaults


def check_value(path: Path, key: str, param, value):
    """The value as the option takes it, or SettingsError saying what is allowed."""
    values = value if param.multiple else [value]
    if param.multiple and not isinstance(value, list):
        raise SettingsError(f"the config file {path}: '{key}' takes a list, e.g. {key} = [\"...\"]")
    checked = []
    for one in values:
        expected = _python_type(param)
        if expected is not None and not (
            isinstance(one, expected) and not (expected is not bool and isinstance(one, bool))
        ):
            raise SettingsError(
                f"the config file {path}: '{key}' takes {_describe(expected)}, not {type(one).__name__} {one!r}"
            )
        try:
            checked.append(param.type.convert(one, param, None) if expected is not bool else one)
        except Exception as exc:  # noqa: BLE001 - Click's BadParameter, without importing click
            message = getattr(exc, "message", None) or str(exc)
            raise SettingsError(f"the config file {path}: '{key}': {message}") from None
    return checked if param.multiple else checked[0]


def _python_type(param):
    name = getattr(param.type, "name", "")
    if getattr(param, "is_flag", False) or name == "boolean":
        return bool
    if name in ("int", "int range", "integer", "integer range"):
        return int
    if name in ("float", "float range"):
        return (int, float)
    if name in ("str", "text", "choice", "path", "directory", "file", "filename"):
        return str
    return None


def _describe(expected) -> str:
    if expected is bool:
        return "true or false"
    if expected is int:
        return "a whole number"
    if expected == (int, float):
        return "a number"
    return "a string"


def check_generation(path: Path, defaults: dict) -> None:
    """Generation values that are well typed but cannot work (num-beams = 0) are the file's error too."""
    from dataclasses import fields
    from enum import Enum

    from summarize_cli.specs import GenerationSpec

    names = {f.name for f in fields(GenerationSpec)}
    given = {("long_mode" if k == "long" else k): v for k, v in defaults.items() if k in names | {"long"}}
    given = {k: (v.value if isinstance(v, Enum) else v) for k, v in given.items()}
    try:
        GenerationSpec(**given)
    except SettingsError as exc:
        raise SettingsError(f"the config file {path}: {exc}") from None


def listing(group, maps: dict) -> str:
    """The config file's path and every option's value in effect for each command of `group`, with where it
    comes from, as TOML that can be pasted back into the file."""
    from dataclasses import fields

    from summarize_cli.cli.common import long_options
    from summarize_cli.specs import GenerationSpec

    model_own = {f.name for f in fields(GenerationSpec)}  # None: the model's generation config decides
    path = config_path()
    lines = [f"# config file: {path} ({'found' if path.is_file() else 'none there'})"]
    for name in ("summarize", "eval"):
        command = group.commands[name]
        shown = command.make_context(name, [], default_map=maps.get(name), resilient_parsing=True)
        lines.append(f"\n[{name}]" if name == "eval" else "")
        for key, param in sorted(long_options(command).items()):
            if key in ("help", "version", "clear-cache") or param.expose_value is False:
                continue
            value = shown.params.get(param.name)
            source = shown.get_parameter_source(param.name)
            where = {"DEFAULT_MAP": "config file", "ENVIRONMENT": f"env {param.envvar}"}.get(
                source.name if source else "", "default"
            )
            unset = UNSET.get(param.name) or ("the model's own" if param.name in model_own else "not set")
            shown_value = unset if value is None else _toml(value)
            lines.append(f"{key} = {shown_value}  # {where}" if value is not None else f"# {key}: {shown_value}")
    return "\n".join(line for line in lines if line is not None).strip("\n")


# what an option left unset means, where it is neither "not set" nor the model's own
UNSET = {
    "length": "not set (medium: the model's own lengths)",
    "seed": "not set (a new random seed each run)",
    "threads": "not set (the physical cores)",
    "batch_size": "not set (4 per thread for ctranslate2 on CPU, 8 for torch on CPU, 32 on CUDA)",
}


def _toml(value) -> str:
    """A value as TOML writes it."""
    import json
    from enum import Enum

    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)
