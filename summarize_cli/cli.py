"""The `summarize` command: parse options, wire sources -> pipeline -> sinks, report on stderr."""

from __future__ import annotations

import functools
import os
import re
import signal
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from summarize_cli import __version__
from summarize_cli import cli_options as opt
from summarize_cli.cli_options import IO, RAY
from summarize_cli.cli_run import Terminated
from summarize_cli.errors import SummarizeError

stderr = Console(stderr=True, highlight=False, soft_wrap=True)

app = typer.Typer(
    add_completion=False,
    no_args_is_help=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode="rich",
)


class Format(str, Enum):
    text = "text"
    json = "json"
    jsonl = "jsonl"
    markdown = "markdown"


class InputFormat(str, Enum):
    auto = "auto"
    text = "text"
    html = "html"
    markdown = "markdown"
    pdf = "pdf"
    docx = "docx"


class StdinFormat(str, Enum):
    text = "text"
    jsonl = "jsonl"


def handle_errors(command):
    """The one place that turns known failures into `Error: ...` on stderr and an exit code."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        debug = os.environ.get("SUMMARIZE_DEBUG", "") not in ("", "0")
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.BadParameter):
            raise
        except SummarizeError as exc:
            if debug:
                raise
            stderr.print(f"Error: {exc}", markup=False)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            stderr.print("Interrupted.", markup=False)
            raise typer.Exit(130) from None
        except Terminated:
            stderr.print("Terminated.", markup=False)
            raise typer.Exit(143) from None
        except Exception as exc:  # noqa: BLE001 - the last line of defence keeps tracebacks off the terminal
            if debug:
                raise
            stderr.print(
                f"Error: unexpected {type(exc).__name__}: {exc} (run with SUMMARIZE_DEBUG=1 for the traceback)",
                markup=False,
            )
            raise typer.Exit(1) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        typer.echo(f"summarize-cli {__version__}")
        raise typer.Exit()


def _clear_cache(value: bool) -> None:
    if value:
        from summarize_cli.cache import clear

        path = clear()
        stderr.print(f"Cleared the result cache ({path}).", markup=False)
        raise typer.Exit()


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin is None or sys.stdin.isatty()
    except (AttributeError, ValueError):
        return True


@app.command()
@handle_errors
def summarize(
    inputs: Annotated[
        list[str] | None,
        typer.Argument(
            help="Files, folders (walked recursively) or - for stdin. Default: stdin.",
            show_default=False,
            metavar="[INPUTS]...",
        ),
    ] = None,
    model: opt.Model = "t5-small",
    backend: opt.Backend = opt.BackendName.auto,
    device: opt.Device = "auto",
    dtype: opt.DtypeOpt = opt.Dtype.auto,
    compute_type: opt.ComputeTypeOpt = opt.ComputeType.auto,
    threads: opt.Threads = None,
    offline: opt.Offline = False,
    batch_size: opt.BatchSize = None,
    long: opt.Long = opt.LongMode.chunk,
    num_beams: opt.NumBeams = None,
    do_sample: opt.DoSample = None,
    temperature: opt.Temperature = None,
    top_p: opt.TopP = None,
    top_k: opt.TopK = None,
    min_length: opt.MinLength = None,
    max_length: opt.MaxLength = None,
    length_penalty: opt.LengthPenalty = None,
    no_repeat_ngram_size: opt.NoRepeat = None,
    seed: opt.Seed = None,
    prefix: opt.Prefix = None,
    include: Annotated[
        list[str] | None,
        typer.Option(
            help="Glob of files to take from folders (repeatable; default: every supported extension).",
            rich_help_panel=IO,
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option(help="Glob of files or folders to leave out (repeatable).", rich_help_panel=IO),
    ] = None,
    stdin_format: Annotated[
        StdinFormat,
        typer.Option(help='text: stdin is one document; jsonl: one {"text", "id"} per line.', rich_help_panel=IO),
    ] = StdinFormat.text,
    input_format: Annotated[
        InputFormat,
        typer.Option(help="How to read inputs (auto: by extension; stdin: text).", rich_help_panel=IO),
    ] = InputFormat.auto,
    max_input_bytes: Annotated[
        int, typer.Option(min=1, help="Refuse inputs larger than this.", rich_help_panel=IO)
    ] = 20_000_000,
    fmt: Annotated[Format, typer.Option("-f", "--format", help="Output format.", rich_help_panel=IO)] = Format.text,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output-dir",
            help="Write one file per input here, mirroring the inputs.",
            file_okay=False,
            rich_help_panel=IO,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", help="Write every record into one .jsonl or .parquet file.", dir_okay=False, rich_help_panel=IO
        ),
    ] = None,
    text_column: Annotated[
        str,
        typer.Option(help="Column (or JSONL field) holding the text in .jsonl/.parquet inputs.", rich_help_panel=IO),
    ] = "text",
    id_column: Annotated[
        str, typer.Option(help="Column (or JSONL field) naming each row in .jsonl/.parquet inputs.", rich_help_panel=IO)
    ] = "id",
    ray: Annotated[
        bool,
        typer.Option(
            "--ray", help="Run on Ray: a local instance, or the cluster at --ray-address.", rich_help_panel=RAY
        ),
    ] = False,
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="Cluster to join: auto, or ray://HEAD:10001 (default: start a local Ray; RAY_ADDRESS is honoured).",
            rich_help_panel=RAY,
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Ray actors, each with the model loaded (default: one per CPU, or per GPU with --device cuda).",
            rich_help_panel=RAY,
        ),
    ] = None,
    skip_existing: Annotated[
        bool,
        typer.Option(
            "--skip-existing", help="With -o: skip inputs whose summary file exists (resume a run).", rich_help_panel=IO
        ),
    ] = False,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Neither read nor write the result cache.", rich_help_panel=IO)
    ] = False,
    clear_cache: Annotated[
        bool | None,
        typer.Option("--clear-cache", callback=_clear_cache, is_eager=True, help="Empty the result cache and exit."),
    ] = None,
    quiet: opt.Quiet = False,
    verbose: opt.Verbose = False,
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit."),
    ] = None,
) -> None:
    """Summarise articles from files, folders or stdin with a T5 (or any seq2seq) model.

    Summaries go to stdout (or to files with -o); progress, warnings and errors go to stderr.
    To score summaries against references (ROUGE), see: summarize eval --help
    """
    from summarize_cli.sources import DEFAULT_INCLUDE, STDIN, discover

    overrides = opt.generation_overrides(locals())
    if not inputs:
        if _stdin_is_terminal():
            stderr.print(
                "Usage: summarize [OPTIONS] [INPUTS]...\n"
                "Give files or folders to summarise, or pipe text in: cat article.txt | summarize\n"
                "Try 'summarize --help' for help.",
                markup=False,
            )
            raise typer.Exit(2)
        inputs = [STDIN]
    if inputs.count(STDIN) > 1:
        raise typer.BadParameter("stdin (-) can be given only once", param_hint="INPUTS")

    if output is not None and output_dir is not None:
        raise typer.BadParameter("give either --output FILE or -o/--output-dir DIR", param_hint="--output")
    if (ray_address or workers) and not ray:
        raise typer.BadParameter("needs --ray", param_hint="--ray-address" if ray_address else "--workers")
    if skip_existing and output_dir is None:
        raise typer.BadParameter("needs -o/--output-dir", param_hint="--skip-existing")
    items = list(discover(inputs, include or DEFAULT_INCLUDE, exclude or ()))
    if not items:
        globs = ", ".join(include or DEFAULT_INCLUDE)
        raise SummarizeError(f"no files to summarise in {', '.join(inputs)} (looked for {globs}; see --include)")
    existing = 0
    if output_dir is not None:
        _check_outputs(items, output_dir, fmt.value)
        if skip_existing:
            items, existing = _without_existing(items, output_dir, fmt.value)

    from summarize_cli.cli_run import Run

    Run(
        items=items,
        stdin_format=stdin_format.value,
        max_input_bytes=max_input_bytes,
        fmt=fmt.value,
        output_dir=output_dir,
        show_progress=not quiet and stderr.is_terminal,
        verbose=verbose,
        console=stderr,
        use_cache=not no_cache,
        input_format=input_format.value,
        already_done=existing,
        output_file=output,
        columns=(text_column, id_column),
    ).execute(
        engine_args={
            "model": model,
            "backend": backend.value,
            "device": device,
            "dtype": dtype.value,
            "compute_type": compute_type.value,
            "offline": offline,
            "threads": threads,
        },
        batch_size=batch_size,
        long_mode=long.value,
        overrides=overrides,
        ray={"address": ray_address, "workers": workers} if ray else None,
    )


def _check_outputs(items, output_dir: Path, fmt: str) -> None:
    """Refuse, before any model work, outputs that would overwrite an input or each other."""
    from summarize_cli.documents import Problem
    from summarize_cli.sinks import output_path

    inputs = {item.path.resolve() for item in items if not isinstance(item, Problem) and item.path is not None}
    claimed: dict[Path, str] = {}
    for item in items:
        if isinstance(item, Problem):
            continue
        target = output_path(output_dir, item.relpath, fmt).resolve()
        if target in inputs:
            raise typer.BadParameter(
                f"the summary of {item.display} would overwrite input {target}", param_hint="--output-dir"
            )
        if target in claimed:
            raise typer.BadParameter(
                f"{claimed[target]} and {item.display} would both be written to {target}",
                param_hint="--output-dir",
            )
        claimed[target] = item.display


def _without_existing(items, output_dir: Path, fmt: str) -> tuple[list, int]:
    """Drop inputs whose summary file is already there; return the rest and how many were dropped."""
    from summarize_cli.sinks import output_path
    from summarize_cli.sources import InputFile

    kept = [
        item
        for item in items
        if not (
            isinstance(item, InputFile)
            and item.path is not None
            and output_path(output_dir, item.relpath, fmt).exists()
        )
    ]
    return kept, len(items) - len(kept)


def _on_sigterm(signum, frame):
    raise Terminated()


def main() -> None:
    """Console-script entry point: SIGTERM stops a run the way Ctrl-C does; `summarize eval` scores."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    if sys.argv[1:2] == ["eval"]:
        from summarize_cli.cli_eval import eval_app

        eval_app(prog_name="summarize eval", args=sys.argv[2:])
    else:
        app(prog_name="summarize", args=ray_address_argument(sys.argv[1:]))


def ray_address_argument(args: list[str]) -> list[str]:
    """Accept `--ray ADDRESS` (auto, local, ray://head:10001, host:port) as `--ray --ray-address ADDRESS`.

    Click options cannot take an optional value, so a word after --ray that names a cluster, and no file,
    is rewritten; anything else after --ray stays an input.
    """
    out = list(args)
    for i, arg in enumerate(out[:-1]):
        if arg == "--":
            break
        if arg == "--ray":
            word = out[i + 1]
            looks_like_address = word in ("auto", "local") or "://" in word or re.fullmatch(r"[\w.-]+:\d+", word)
            if looks_like_address and not os.path.exists(word):
                out[i + 1 : i + 2] = ["--ray-address", word]
            break
    return out
