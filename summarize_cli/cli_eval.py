"""`summarize eval`: ROUGE of the model (and of baselines) against reference summaries."""

from __future__ import annotations

import json
import shlex
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from summarize_cli import cli_options as opt
from summarize_cli.cli import handle_errors, stderr
from summarize_cli.cli_options import IO

eval_app = typer.Typer(
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode="rich",
)

ENGINE_OPTIONS = ("model", "backend", "device", "dtype", "compute_type", "offline", "threads")
MODEL_OPTIONS = ("model", "backend", "device", "dtype", "compute_type", "threads", "offline", "batch_size", "long")


class EvalFormat(str, Enum):
    table = "table"
    json = "json"


@eval_app.command(name="eval")
@handle_errors
def evaluate(
    data: Annotated[
        Path,
        typer.Argument(
            help="A JSONL file of documents with reference summaries, or a folder of documents.",
            exists=True,
            show_default=False,
            metavar="DATA",
        ),
    ],
    references: Annotated[
        Path | None,
        typer.Argument(
            help="With a folder of documents: the folder of references, matched by file name.",
            exists=True,
            file_okay=False,
            show_default=False,
            metavar="[REFERENCES]",
        ),
    ] = None,
    text_field: Annotated[str, typer.Option(help="JSONL field holding the document.", rich_help_panel=IO)] = "text",
    reference_field: Annotated[
        str, typer.Option(help="JSONL field holding the reference summary.", rich_help_panel=IO)
    ] = "summary",
    id_field: Annotated[str, typer.Option(help="JSONL field naming the document.", rich_help_panel=IO)] = "id",
    limit: Annotated[
        int | None, typer.Option(min=1, help="Evaluate only the first N documents.", rich_help_panel=IO)
    ] = None,
    compare: Annotated[
        list[str] | None,
        typer.Option(
            help="Another system to score beside the first, as options: --compare '--num-beams 1' or "
            "--compare '-m facebook/bart-large-cnn' (repeatable).",
            rich_help_panel=IO,
        ),
    ] = None,
    lead3: Annotated[
        bool, typer.Option("--lead3/--no-lead3", help="Score the Lead-3 baseline too.", rich_help_panel=IO)
    ] = True,
    fmt: Annotated[
        EvalFormat, typer.Option("-f", "--format", help="table (Rich) or json.", rich_help_panel=IO)
    ] = EvalFormat.table,
    per_document: Annotated[
        Path | None,
        typer.Option(
            help="Write per-document scores (and summaries) to this JSONL file; - for stdout.", rich_help_panel=IO
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
    quiet: opt.Quiet = False,
) -> None:
    """Score summaries against references with ROUGE-1/2/L/Lsum F1, beside Lead-3 and other settings."""
    params = dict(locals())
    from summarize_cli import evaluate as ev

    base = {name: params[name] for name in MODEL_OPTIONS}
    base["overrides"] = opt.generation_overrides(params)
    systems = [base] + [_compare_system(spec, base) for spec in compare or []]
    rouge = ev.Rouge()
    if data.is_dir():
        if references is None:
            raise typer.BadParameter("a folder of documents needs a folder of references too", param_hint="DATA")
        examples = ev.load_folder_pair(data, references)
    else:
        if references is not None:
            raise typer.BadParameter("a JSONL file holds its own references", param_hint="REFERENCES")
        examples = ev.load_jsonl(data, text_field, reference_field, id_field)
    examples = examples[:limit] if limit else examples

    reports = []
    show = not quiet and stderr.is_terminal
    for system in systems:
        predictions, seconds, name = _run_model(system, examples, show)
        reports.append(ev.score_system(name, examples, predictions, seconds, rouge))
    if lead3:
        reports.append(ev.score_system("Lead-3", examples, [ev.lead(e.text) for e in examples], None, rouge))
    counts = ev.tokenization_counts(examples, rouge)
    if per_document is not None:
        _write_per_document(per_document, reports)
    if fmt == EvalFormat.json:
        typer.echo(json.dumps(ev.report_json(reports, counts), ensure_ascii=False, indent=2))
    elif per_document != Path("-"):
        _print_table(reports, counts)


def _compare_system(spec: str, base: dict) -> dict:
    """Options given in a --compare string, laid over the first system's."""
    from typer.main import get_command

    command = get_command(eval_app)
    try:
        args = shlex.split(spec)
        context = command.make_context("eval", [*args, "."], resilient_parsing=False)
    except (ValueError, typer.Exit) as exc:
        raise typer.BadParameter(f"{spec!r}: {exc}", param_hint="--compare") from None
    except Exception as exc:  # noqa: BLE001 - Click's usage errors, without importing click
        raise typer.BadParameter(f"{spec!r}: {getattr(exc, 'message', exc)}", param_hint="--compare") from None
    given = {
        name
        for name in context.params
        if context.get_parameter_source(name).name == "COMMANDLINE" and name not in ("data", "references")
    }
    system = {**base, "overrides": dict(base["overrides"])}
    for name in given:
        value = context.params[name]
        value = value.value if isinstance(value, Enum) else value
        if name in MODEL_OPTIONS:
            system[name] = value
        elif name in opt.GENERATION_OPTIONS:
            system["overrides"][name] = value
        else:
            raise typer.BadParameter(f"{spec!r}: --{name.replace('_', '-')} cannot be compared", param_hint="--compare")
    opt.generation_overrides(system["overrides"])
    system["label"] = spec
    return system


def _run_model(system: dict, examples, show: bool) -> tuple[list[str], float, str]:
    """Summarise every example with one system; returns predictions, generation seconds and a label."""
    from summarize_cli.cli_run import NoStatus, progress_bar
    from summarize_cli.documents import Document, Problem
    from summarize_cli.engine import load_engine
    from summarize_cli.settings import resolve

    value = {k: (v.value if isinstance(v, Enum) else v) for k, v in system.items()}
    with stderr.status(f"Loading {value['model']} ...") if show else NoStatus() as status:
        engine = load_engine(**{k: value[k] for k in ENGINE_OPTIONS}, on_status=status.update)
    settings = resolve(engine.source.path, value["overrides"])
    for note in engine.backend.notes + engine.backend.check(settings):
        stderr.print(f"Warning: {note}", markup=False)
    summarizer = engine.summarizer(settings, value["batch_size"], value["long"])
    label = value.get("label") or (Path(value["model"]).name if Path(value["model"]).is_dir() else value["model"])
    documents = [Document(e.id, e.text) for e in examples]
    predictions = []
    started = time.perf_counter()
    with progress_bar(stderr, show) as progress:
        task = progress.add_task(f"Summarising ({label})", total=len(documents))
        for result in summarizer.summarize(documents):
            if isinstance(result, Problem):  # pragma: no cover - documents in memory cannot fail to read
                predictions.append("")
            else:
                predictions.append(result.summary)
            progress.advance(task)
    return predictions, time.perf_counter() - started, f"{label} [{engine.backend.name}]"


def _write_per_document(path: Path, reports) -> None:
    lines = "".join(json.dumps(d, ensure_ascii=False) + "\n" for r in reports for d in r.per_document)
    if str(path) == "-":
        sys.stdout.write(lines)
        sys.stdout.flush()
        return
    from summarize_cli.sinks import write_atomic

    write_atomic(path, lines)


def _print_table(reports, counts: dict[str, int]) -> None:
    how = ", ".join(f"{kind} for {n} document(s)" for kind, n in sorted(counts.items()))
    table = Table(title="ROUGE F1 (x100)", caption=f"tokenisation: {how}; length: mean summary length in ROUGE tokens")
    for header in ("system", "ROUGE-1", "ROUGE-2", "ROUGE-L", "ROUGE-Lsum", "length", "docs/s"):
        if header == "system":
            table.add_column(header, min_width=16, overflow="fold")
        else:
            table.add_column(header, justify="right")
    for r in reports:
        rate = "" if r.docs_per_second is None else f"{r.docs_per_second:.2f}"
        table.add_row(
            escape(r.name),
            *(f"{r.means[t]:.2f}" for t in ("rouge1", "rouge2", "rougeL", "rougeLsum")),
            f"{r.mean_length:.1f}",
            rate,
        )
    Console(highlight=False, width=None if sys.stdout.isatty() else 120).print(table)
