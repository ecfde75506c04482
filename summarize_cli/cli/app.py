"""The `summarize` command: parse options, wire sources -> pipeline -> sinks, report on stderr."""

from __future__ import annotations

import contextlib
import os
import re
import sys
from dataclasses import fields
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from summarize_cli import __version__, signals
from summarize_cli.cli import options as opt
from summarize_cli.cli.common import DefaultCommand, DefaultGroup, handle_errors, print_result, say, show_progress
from summarize_cli.cli.eval import evaluate
from summarize_cli.cli.options import IO, RAY
from summarize_cli.errors import EXIT_SIGPIPE, SummarizeError, stdout_failed

CONTEXT = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(
    cls=DefaultGroup,
    add_completion=False,
    no_args_is_help=False,
    context_settings=CONTEXT,
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


def _version(value: bool) -> None:
    if value:
        typer.echo(f"summarize-cli {__version__}")
        raise typer.Exit()


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin is None or sys.stdin.isatty()
    except (AttributeError, ValueError):
        return True


@app.command(name=DefaultGroup.default_command, cls=DefaultCommand, hidden=True, context_settings=CONTEXT)
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
    model_for: opt.ModelFor = None,
    language: opt.Language = None,
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
    length: opt.Length = None,
    force: opt.Force = False,
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
        int,
        typer.Option(
            min=1,
            help="Refuse inputs (files, stdin, URL bodies, each JSONL line or Parquet row, extracted text) "
            "larger than this.",
            rich_help_panel=IO,
        ),
    ] = 20_000_000,
    files_from: Annotated[
        str | None,
        typer.Option(
            "--files-from",
            help="Read input paths and URLs from this file, one per line (- for stdin), after any INPUTS.",
            metavar="FILE",
            rich_help_panel=IO,
        ),
    ] = None,
    null: Annotated[
        bool,
        typer.Option("-0", "--null", help="With --files-from: names end in NUL (find -print0).", rich_help_panel=IO),
    ] = False,
    timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds to connect to, and wait on, a URL.", rich_help_panel=IO)
    ] = 30.0,
    extract: Annotated[
        bool,
        typer.Option(
            "--extract",
            help="Print the text each input becomes (after decoding and extraction) instead of summarising; "
            "loads no model.",
            rich_help_panel=IO,
        ),
    ] = False,
    fmt: Annotated[Format, typer.Option("-f", "--format", help="Output format.", rich_help_panel=IO)] = Format.text,
    bullets: Annotated[
        bool,
        typer.Option(
            "--bullets",
            help="Each summary as a list of its sentences (a long document: one point per section).",
            rich_help_panel=IO,
        ),
    ] = False,
    combine: Annotated[
        bool,
        typer.Option("--combine", help="One summary of every input together.", rich_help_panel=IO),
    ] = False,
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
        typer.Option("--clear-cache", help="Empty the result cache and exit (give no inputs)."),
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
    from summarize_cli.cli.loop import summarize_all
    from summarize_cli.inputs.sources import DEFAULT_INCLUDE, STDIN, discover
    from summarize_cli.specs import InputSpec, OutputSpec, RaySpec, RunSpec

    run = RunSpec(
        model=opt.model_spec(
            model=model,
            backend=backend,
            device=device,
            dtype=dtype,
            compute_type=compute_type,
            offline=offline,
            threads=threads,
            batch_size=batch_size,
        ),
        generation=opt.generation_spec(
            num_beams=num_beams,
            do_sample=do_sample,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            min_length=min_length,
            max_length=max_length,
            length_penalty=length_penalty,
            no_repeat_ngram_size=no_repeat_ngram_size,
            seed=seed,
            prefix=prefix,
            long=long,
            length=length,
            force=force,
        ),
        use_cache=not no_cache,
        routes=opt.routes(model_for),
    )
    if clear_cache:
        if inputs:
            raise typer.BadParameter("empties the cache and exits: give it no inputs", param_hint="--clear-cache")
        from summarize_cli.run.cache import clear

        say([f"Cleared the result cache ({clear()})."])
        raise typer.Exit()
    _check_options_apply(inputs or [], fmt, output, stdin_format)
    if null and files_from is None:
        raise typer.BadParameter("needs --files-from", param_hint="-0/--null")
    if files_from is not None:
        if files_from == STDIN and STDIN in (inputs or []):
            raise typer.BadParameter("stdin holds the list: it cannot be an input too", param_hint="--files-from -")
        inputs = [*(inputs or []), *_listed_inputs(files_from, null)]
        if not inputs:
            raise SummarizeError(f"--files-from {files_from} lists no inputs")
    if extract:
        _check_extract_alone(run, batch_size)
    if not inputs:
        if _stdin_is_terminal():
            say(
                [
                    "Usage: summarize [OPTIONS] [INPUTS]...",
                    "Give files or folders to summarise, or pipe text in: cat article.txt | summarize",
                    "Try 'summarize --help' for help.",
                ]
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
    reading = InputSpec(
        inputs=tuple(inputs),
        include=tuple(include or DEFAULT_INCLUDE),
        exclude=tuple(exclude or ()),
        stdin_format=stdin_format.value,
        input_format=input_format.value,
        max_input_bytes=max_input_bytes,
        text_column=text_column,
        id_column=id_column,
        timeout=timeout,
        language=opt.language(language),
    )
    if combine and output_dir is not None:
        raise typer.BadParameter(
            "makes one summary: redirect stdout (> combined.txt) or use --output FILE.jsonl", param_hint="--combine"
        )
    if combine and extract:
        raise typer.BadParameter(
            "--extract prints each input's text; there is nothing to combine", param_hint="--combine"
        )
    writing = OutputSpec(
        fmt=fmt.value,
        bullets=bullets,
        combine=combine,
        output_dir=output_dir,
        output_file=output,
        skip_existing=skip_existing,
        extract=extract,
    )
    skip = [p for p in (output_dir, output) if p is not None]  # a run never reads what it writes
    items = list(discover(reading.inputs, reading.include, reading.exclude, skip=skip))
    if not items:
        globs = ", ".join(reading.include)
        raise SummarizeError(f"no files to summarise in {', '.join(inputs)} (looked for {globs}; see --include)")
    if output is not None:
        _check_output_file(items, output)
    existing = 0
    if output_dir is not None:
        _check_outputs(items, writing)
        if skip_existing:
            items, existing = _without_existing(items, writing)
    summarize_all(
        items,
        inputs=reading,
        output=writing,
        run=run,
        ray=RaySpec(address=ray_address, workers=workers) if ray else None,
        already_done=existing,
        show=show_progress(quiet),
        verbose=verbose,
    )


app.command(name="eval", context_settings=CONTEXT)(evaluate)


@app.command(name="config", context_settings=CONTEXT)
@handle_errors
def show_config(ctx: typer.Context) -> None:
    """Show the config file's path and every option's value in effect, with where it comes from."""
    from summarize_cli.cli.common import long_options
    from summarize_cli.cli.config import config_path
    from summarize_cli.specs import GenerationSpec

    model_own = {f.name for f in fields(GenerationSpec)} | {"batch_size", "threads"}  # None: the model decides
    path = config_path()
    group = ctx.parent.command if ctx.parent is not None else None
    maps = (ctx.parent.default_map if ctx.parent is not None else None) or {}
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
            unset = "the model's own" if param.name in model_own else "not set"
            shown_value = unset if value is None else _toml(value)
            lines.append(f"{key} = {shown_value}  # {where}" if value is not None else f"# {key}: {shown_value}")
    print_result("\n".join(line for line in lines if line is not None).strip("\n"))


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


def _listed_inputs(source: str, null: bool) -> list[str]:
    """--files-from: one path or URL a line (NUL-separated with -0), taken as written; blank entries skipped.
    A listed `-` is a file of that name, not stdin."""
    try:
        if source == "-":
            raw = sys.stdin.buffer.read() if sys.stdin is not None else b""
        else:
            raw = Path(source).read_bytes()
    except OSError as exc:
        raise SummarizeError(f"cannot read --files-from {source}: {exc.strerror or exc}") from None
    names = raw.split(b"\0") if null else raw.splitlines()
    listed = [os.fsdecode(name) for name in names if name.strip()]
    return [os.path.join(".", name) if name == "-" else name for name in listed]


def _check_extract_alone(run, batch_size: int | None) -> None:
    """--extract loads no model: generation and model options would be silently ignored."""
    from dataclasses import fields

    given = [
        f.name
        for f in fields(run.generation)
        if f.name != "long_mode" and getattr(run.generation, f.name) not in (None, False)
    ]
    if given or batch_size is not None:
        names = ", ".join("--" + name.replace("_", "-") for name in [*given, *(["batch_size"] if batch_size else [])])
        raise typer.BadParameter(f"prints text without summarising: {names} would do nothing", param_hint="--extract")


def _check_options_apply(inputs: list[str], fmt: Format, output: Path | None, stdin_format: StdinFormat) -> None:
    """An option that cannot apply to this run is a usage error, never silently ignored."""
    from summarize_cli.inputs.sources import STDIN

    if stdin_format != StdinFormat.text and inputs and STDIN not in inputs:
        raise typer.BadParameter(
            "applies to stdin: give - among the inputs, or pipe the stream with no inputs", param_hint="--stdin-format"
        )
    if output is not None:
        if output.suffix.lower() not in (".jsonl", ".parquet"):
            raise typer.BadParameter(f"must end in .jsonl or .parquet: {output}", param_hint="--output")
        if fmt != Format.text:
            raise typer.BadParameter(
                f"--output writes {output.suffix[1:]} (its extension says the format); leave out -f {fmt.value}",
                param_hint="-f/--format",
            )


def _check_outputs(items, writing) -> None:
    """Refuse, before any model work, outputs that would overwrite an input or each other (a dataset's rows
    are named only once read: the output folder checks those as they are written)."""
    from summarize_cli.inputs.sources import InputFile, is_dataset
    from summarize_cli.outputs.sinks import output_path

    files = [item for item in items if isinstance(item, InputFile)]
    inputs = {item.path.resolve() for item in files if item.path is not None}
    claimed: dict[Path, str] = {}
    for item in files:
        if is_dataset(item):
            continue
        target = output_path(writing.output_dir, item.relpath, writing.fmt, writing.extract).resolve()
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


def _check_output_file(items, output: Path) -> None:
    """--output must not be one of the inputs, through whatever path or link."""
    from summarize_cli.inputs.sources import InputFile

    if not output.exists():
        return
    for item in items:
        if isinstance(item, InputFile) and item.path is not None and os.path.samefile(item.path, output):
            raise typer.BadParameter(
                f"{output} is also an input ({item.display}): it would be overwritten", param_hint="--output"
            )


def _without_existing(items, writing) -> tuple[list, int]:
    """Drop inputs whose summary file is already there; return the rest and how many were dropped."""
    from summarize_cli.inputs.sources import InputFile, is_dataset
    from summarize_cli.outputs.sinks import output_path

    kept = [
        item
        for item in items
        if not (
            isinstance(item, InputFile)
            and item.path is not None
            and not is_dataset(item)
            and output_path(writing.output_dir, item.relpath, writing.fmt, writing.extract).exists()
        )
    ]
    return kept, len(items) - len(kept)


def main() -> None:
    """Console-script entry point."""
    _exit_now(run())


def run() -> int:
    """The command line run to its exit code, without exiting: SIGTERM stops a run the way Ctrl-C does."""
    signals.install()
    try:
        app(prog_name="summarize", args=ray_address_argument(sys.argv[1:]))
    except SystemExit as exc:
        if exc.code == 1 and type(sys.stdout).__name__ == "PacifyFlushWrapper":
            return EXIT_SIGPIPE  # Click's own answer to a closed pipe (--help | head): exit 1, stdout pacified
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BrokenPipeError:  # --help into `head`: the commands handle their own output, this is Click's
        return EXIT_SIGPIPE
    except OSError as exc:  # --help into a full device
        sys.stderr.write(f"Error: {stdout_failed(exc)}\n")
        return 1
    return 0


def _exit_now(code: int) -> None:
    """Exit once the output is flushed and the exit handlers (Ray's shutdown, temporary folders) have run,
    without the interpreter's teardown: freeing a loaded model and every module costs a one-off 0.1 to
    0.2 s, and with a worker still in a native generate() (a signal stopped the run) it would wait for it."""
    import atexit

    from summarize_cli import worker

    code = flush_output(code)
    worker.cleanup()
    atexit._run_exitfuncs()
    os._exit(code)


def flush_output(code: int) -> int:
    """Flush stdout and stderr; the exit code a failed flush calls for (a closed pipe 141, else 1)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            code = code or EXIT_SIGPIPE
        except (OSError, ValueError) as exc:
            if stream is sys.stdout and not code:
                with contextlib.suppress(OSError, ValueError):
                    sys.stderr.write(f"Error: {stdout_failed(exc)}\n")
            code = code or 1
    return code


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
