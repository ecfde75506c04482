"""The `summarize` command: parse options, wire sources -> pipeline -> sinks, report on stderr."""

from __future__ import annotations

import contextlib
import os
import re
import sys

import typer

from summarize_cli import signals
from summarize_cli.cli import options as opt
from summarize_cli.cli.common import (
    DefaultCommand,
    DefaultGroup,
    handle_errors,
    print_result,
    say,
    show_progress,
    stop_line,
)
from summarize_cli.cli.eval import evaluate
from summarize_cli.errors import EXIT_SIGPIPE, Terminated, signal_exit, stdout_failed

CONTEXT = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(
    cls=DefaultGroup,
    add_completion=True,
    no_args_is_help=False,
    context_settings=CONTEXT,
    rich_markup_mode="rich",
)


@app.command(name=DefaultGroup.default_command, cls=DefaultCommand, hidden=True, context_settings=CONTEXT)
@handle_errors
def summarize(
    ctx: typer.Context,
    inputs: opt.Inputs = None,
    model: opt.Model = "t5-small",
    method: opt.Method = opt.MethodName.auto,
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
    include: opt.Include = None,
    exclude: opt.Exclude = None,
    stdin_format: opt.StdinFormatOpt = opt.StdinFormat.text,
    input_format: opt.InputFormatOpt = opt.InputFormat.auto,
    max_input_bytes: opt.MaxInputBytes = 20_000_000,
    files_from: opt.FilesFrom = None,
    null: opt.Null = False,
    timeout: opt.Timeout = 30.0,
    extract: opt.Extract = False,
    fmt: opt.FormatOpt = opt.Format.text,
    bullets: opt.Bullets = False,
    combine: opt.Combine = False,
    output_dir: opt.OutputDir = None,
    output: opt.Output = None,
    text_column: opt.TextColumn = "text",
    id_column: opt.IdColumn = "id",
    ray: opt.Ray = False,
    ray_address: opt.RayAddress = None,
    workers: opt.Workers = None,
    skip_existing: opt.SkipExisting = False,
    no_cache: opt.NoCache = False,
    clear_cache: opt.ClearCache = None,
    quiet: opt.Quiet = False,
    verbose: opt.Verbose = False,
    version: opt.Version = None,
) -> None:
    """Summarise articles from files, folders or stdin with a T5 (or any seq2seq) model.

    Summaries go to stdout (or to files with -o); progress, warnings and errors go to stderr.
    To score summaries against references (ROUGE), see: summarize eval --help
    """
    from summarize_cli.cli.loop import run_job
    from summarize_cli.specs import InputSpec, Job, OutputSpec, RaySpec

    job = Job(
        run=opt.run_spec(ctx.params, use_cache=not no_cache),
        inputs=opt.spec_from(InputSpec, ctx.params, inputs=tuple(inputs or ())),
        outputs=opt.spec_from(OutputSpec, ctx.params),
        ray=opt.spec_from(RaySpec, ctx.params),
        clear_cache=bool(clear_cache),
    )
    run_job(job, show=show_progress(quiet), verbose=verbose)


app.command(name="eval", context_settings=CONTEXT)(evaluate)


@app.command(name="config", context_settings=CONTEXT)
@handle_errors
def show_config(ctx: typer.Context) -> None:
    """Show the config file's path and every option's value in effect, with where it comes from."""
    from summarize_cli.cli.config import listing

    print_result(listing(ctx.parent.command, ctx.parent.default_map or {}))


def main() -> None:
    """Console-script entry point."""
    _exit_now(run())


def run() -> int:
    """The command line run to its exit code, without exiting: SIGTERM stops a run the way Ctrl-C does."""
    try:
        signals.install()
        app(prog_name="summarize", args=ray_address_argument(sys.argv[1:]))
    except (KeyboardInterrupt, Terminated) as exc:  # before the command ran: while Typer built or parsed
        say([stop_line(exc)])
        return signal_exit(exc)
    except SystemExit as exc:
        if exc.code == 1 and type(sys.stdout).__name__ == "PacifyFlushWrapper":
            return EXIT_SIGPIPE  # Click's own answer to a closed pipe (--help | head): exit 1, stdout pacified
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BrokenPipeError:  # --help into `head`: the commands handle their own output, this is Click's
        return EXIT_SIGPIPE
    except OSError as exc:  # --help into a full device
        if os.environ.get("SUMMARIZE_DEBUG", "") not in ("", "0"):
            raise  # a command's own error, let through for its traceback (see handle_errors)
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


def is_remote(word: str) -> bool:
    """s3://, gs://, hdfs://, ...: an input on object storage, never a cluster's address."""
    from summarize_cli.storage import is_remote as remote

    return remote(word) and not word.lower().startswith("ray://")


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
            if looks_like_address and not os.path.exists(word) and not is_remote(word):
                out[i + 1 : i + 2] = ["--ray-address", word]
            break
    return out
