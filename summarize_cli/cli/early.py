"""Read the command line before Typer does, for what it will load, and start that load at once.

Parsing waits for Typer, Click and this package to import (about 100 ms); the model's load does not need
them. This reads only what decides the load: the model, backend, device, compute type, threads, and
whether the run has one input (a one-off gets its own layout). Anything it does not understand (an
option it does not know, a subcommand, --help, a config file that sets what it reads) starts nothing,
and the run loads as it always did. A guess the run does not match is dropped (see model.early)."""

from __future__ import annotations

import os
import sys

# every option of `summarize` that takes a value, and every flag; a test holds them to the command's own
# fmt: off
VALUED = frozenset((
    "-m", "--model", "--method", "--model-for", "--language", "--backend", "--device", "--dtype", "--compute-type",
    "--threads", "--batch-size", "--long", "--num-beams", "--temperature", "--top-p", "--top-k", "--min-length",
    "--max-length", "--length-penalty", "--no-repeat-ngram-size", "--seed", "--prefix", "--length", "--include",
    "--exclude", "--stdin-format", "--input-format", "--max-input-bytes", "--files-from", "--timeout", "-f",
    "--format", "-o", "--output-dir", "--output", "--text-column", "--id-column", "--ray-address", "--workers",
))
FLAGS = frozenset((
    "--offline", "--do-sample", "--no-sample", "--force", "-0", "--null", "--bullets", "--combine",
    "--skip-existing", "--no-cache", "-q", "--quiet", "-v", "--verbose",
))
# fmt: on
# options after which no load, or another one, is made: starting the engine would be wasted
NO_LOAD = frozenset(["--extract", "--ray", "--ray-address", "--workers", "--clear-cache", "--version", "-h", "--help"])
_READ = {"-m": "model", "--model": "model", "--backend": "backend", "--device": "device"}
_READ.update({"--compute-type": "compute_type", "--threads": "threads", "--method": "method"})
# config file keys that change what is loaded, or whether the run has one input
_FILE_KEYS = {"model", "backend", "device", "compute-type", "threads", "method", "ray", "extract"}
_FILE_KEYS |= {"stdin-format", "files-from"}
_DATASETS = (".jsonl", ".parquet")


def start(argv: list[str]) -> None:
    """Start the load this command line will ask for, if it plainly names one."""
    options = guess(argv, os.environ, stdin_is_terminal())
    if options is None:
        return
    from summarize_cli.model import early

    def load():
        from summarize_cli.model.engine import load_early

        return load_early(**options)

    early.start(load)  # returns once the load is under way, in a thread of its own


def guess(argv: list[str], environ, stdin_is_terminal: bool) -> dict | None:
    """load_early's options for this summarize command line, or None where it cannot be sure."""
    said: dict[str, str] = {}
    inputs: list[str] = []
    rest = iter(argv)
    for token in rest:
        if token == "--":
            inputs.extend(rest)
            break
        if not token.startswith("-") or token == "-":
            inputs.append(token)
            continue
        name, equals, value = token.partition("=")
        if name in NO_LOAD:
            return None
        if name in VALUED:
            if equals and not name.startswith("--"):
                return None  # Click reads -m=x as the value "=x"
            if not equals:
                value = next(rest, None)
                if value is None:
                    return None
            if name in _READ:
                said[_READ[name]] = value
            elif name == "--stdin-format" or name == "--files-from":
                said[name] = value
            continue
        if name in FLAGS and not equals:
            continue
        return None  # combined short flags (-qv), -mPATH, or an option this does not know
    if inputs and inputs[0] in ("eval", "config"):
        return None
    if "model" not in said and environ.get("SUMMARIZE_MODEL"):
        said["model"] = environ["SUMMARIZE_MODEL"]
    if _config_sets_what_this_reads():
        return None
    if said.get("method", "auto") not in ("auto", "abstractive") or said.get("backend", "auto") == "torch":
        return None
    try:
        threads = int(said["threads"]) if "threads" in said else None
    except ValueError:
        return None
    if threads is not None and not 1 <= threads <= _usable_cpus():
        return None  # the run refuses it: a load of 1,000 threads would be started for nothing
    one = _one_input(inputs, said, stdin_is_terminal)
    if one is None:
        return None
    return {
        "model": said.get("model", "t5-small"),
        "backend": said.get("backend", "auto"),
        "device": said.get("device", "auto"),
        "compute_type": said.get("compute_type", "auto"),
        "threads": threads,
        "one_document": one,
    }


def _one_input(inputs: list[str], said: dict, stdin_is_terminal: bool) -> bool | None:
    """Whether the run has exactly one input (None: no input it could read, so no load)."""
    if "--files-from" in said:
        return False
    if not inputs or inputs == ["-"]:
        if stdin_is_terminal:
            return None  # nothing piped in: the run says so without a model
        return said.get("--stdin-format", "text") != "jsonl"
    if len(inputs) > 1:
        return False
    (only,) = inputs
    if only.startswith(("http://", "https://")):
        return True
    if not os.path.exists(only):
        return None  # a problem, not a document: the run loads nothing
    if os.path.isdir(only):
        return False if _two_entries(only) else None
    return os.path.isfile(only) and not only.lower().endswith(_DATASETS)


def _two_entries(folder: str) -> bool:
    """Whether the folder holds at least two entries the run's walk would look at (it skips hidden ones):
    a folder of one file is a one-off, whose layout differs, and guessing "many" for it loaded the model
    twice. With one entry or none, the run decides and loads once; the scan reads at most two names."""
    seen = 0
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if not entry.name.startswith("."):
                    seen += 1
                    if seen == 2:
                        return True
    except OSError:
        pass
    return False


def _config_sets_what_this_reads() -> bool:
    from summarize_cli.cli.config import config_path

    path = config_path()
    if not path.is_file():
        return False
    from summarize_cli.cli.config import read_config

    try:
        table = read_config(path)
    except Exception:  # noqa: BLE001 - the run reports a broken file
        return True
    return bool(_FILE_KEYS & set(table))


def _usable_cpus() -> int:
    from summarize_cli.specs import usable_cpus  # the run's own bound; imported only for --threads

    return usable_cpus()


def stdin_is_terminal() -> bool:
    """Whether nothing is piped in (a closed or unusable stdin counts as a terminal): the scan's and the
    run's own test, here where the console script can ask it before the CLI is imported."""
    try:
        return sys.stdin is None or sys.stdin.isatty()
    except (AttributeError, ValueError):
        return True
