"""`summarize eval`: ROUGE of the model (and of baselines) against reference summaries."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, fields, replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from summarize_cli import worker
from summarize_cli.cli import options as opt
from summarize_cli.cli.common import handle_errors, print_result, progress_bar, say, show_progress, status

if TYPE_CHECKING:  # imported when a run is built: --help needs none of it
    from summarize_cli.specs import EvalSpec, RunSpec

# `summarize eval` on its own: the main app registers the same function; --compare parses with this one
eval_app = typer.Typer(
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode="rich",
)


@dataclass(frozen=True)
class System:
    """One system to score: how its run is built, and the label it is reported under (None: the model)."""

    run: RunSpec
    label: str | None = None


@eval_app.command(name="eval")
@handle_errors
def evaluate(
    ctx: typer.Context,
    data: opt.Data,
    references: opt.References = None,
    text_field: opt.TextField = "text",
    reference_field: opt.ReferenceField = "summary",
    id_field: opt.IdField = "id",
    limit: opt.Limit = None,
    compare: opt.Compare = None,
    lead3: opt.Lead3 = True,
    fmt: opt.EvalFormatOpt = opt.EvalFormat.table,
    per_document: opt.PerDocument = None,
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
    quiet: opt.Quiet = False,
) -> None:
    """Score summaries against references with ROUGE-1/2/L/Lsum F1, beside Lead-3 and other settings."""
    # eval measures the model's speed: cached summaries would flatter it; and it scores what it was asked
    # to, so --method auto never falls back to the extractive method here
    from summarize_cli.specs import EvalSpec, check_threads

    base = System(opt.run_spec(ctx.params, use_cache=False).without_fallback())
    check_threads(base.run.model, on_ray=False)  # eval runs here
    score(opt.spec_from(EvalSpec, ctx.params), base, show=show_progress(quiet))


def score(spec: EvalSpec, base: System, show: bool) -> None:
    """Score the base system, each --compare and Lead-3 on the examples, and print the report."""
    import json

    from summarize_cli.inputs.language import Detector
    from summarize_cli.quality import evaluate as ev

    systems = [base] + [_compare_system(options, base) for options in spec.compare]
    rouge = ev.Rouge()
    if spec.data.is_dir():
        examples = ev.load_folder_pair(spec.data, spec.references)
    else:
        examples = ev.load_jsonl(spec.data, spec.text_field, spec.reference_field, spec.id_field)
    examples = examples[: spec.limit] if spec.limit else examples
    routable = {}
    for example in examples:  # for routing and for the per-language rows
        found = None if spec.language else Detector.detect(example.text)
        example.language = spec.language or found.language
        routable[example.id] = spec.language is not None or found.routable

    reports = []
    for system in systems:
        predictions, seconds, name = _run_model(system, examples, show, routable)
        reports.append(ev.score_system(name, examples, predictions, seconds, rouge))
    if spec.lead3:  # the baselines: the first three sentences, and the extractive method (per language too)
        reports.append(ev.score_system("Lead-3", examples, [ev.lead(e.text) for e in examples], None, rouge))
        if base.run.model.method != "extractive":
            extractive = System(base.run.for_model("extractive"), label="Extractive (LexRank)")
            predictions, seconds, name = _run_model(extractive, examples, show, routable)
            reports.append(ev.score_system(name, examples, predictions, seconds, rouge))
    counts = ev.tokenization_counts(examples, rouge)
    if spec.per_document is not None:
        _write_per_document(spec.per_document, reports)
    if spec.fmt == "json":
        print_result(json.dumps(ev.report_json(reports, counts), ensure_ascii=False, indent=2))
    elif spec.per_document != Path("-"):
        try:
            _print_table(reports, counts)
        except OSError as exc:  # a full device; a closed pipe is Rich's, and ends with 141
            from summarize_cli.errors import stdout_failed

            raise stdout_failed(exc) from None


def _compare_system(spec: str, base: System) -> System:
    """Options given in a --compare string, laid over the first system's."""
    import shlex

    from typer.main import get_command

    from summarize_cli.specs import GenerationSpec, ModelSpec

    command = get_command(eval_app)
    try:
        args = shlex.split(spec)
        context = command.make_context("eval", [*args, "."], resilient_parsing=False)
    except (ValueError, typer.Exit) as exc:
        raise typer.BadParameter(f"{spec!r}: {exc}", param_hint="--compare") from None
    except Exception as exc:  # noqa: BLE001 - Click's usage errors, without importing click
        raise typer.BadParameter(f"{spec!r}: {getattr(exc, 'message', exc)}", param_hint="--compare") from None
    model_fields = {f.name for f in fields(ModelSpec)}
    generation_fields = {f.name for f in fields(GenerationSpec)}
    model_given, generation_given = {}, {}
    for name in context.params:
        if context.get_parameter_source(name).name != "COMMANDLINE" or name in ("data", "references"):
            continue
        value = context.params[name]
        value = value.value if isinstance(value, Enum) else value
        field = opt.FIELD_FOR.get(name, name)
        if field in model_fields:
            model_given[field] = value
        elif field in generation_fields:
            generation_given[field] = value
        else:
            raise typer.BadParameter(f"{spec!r}: --{name.replace('_', '-')} cannot be compared", param_hint="--compare")
    run = base.run
    run = replace(run, model=replace(run.model, **model_given), generation=replace(run.generation, **generation_given))
    return System(run.without_fallback(), label=spec)


def _run_model(system: System, examples, show: bool, routable: dict) -> tuple[list[str], float, str]:
    """Summarise every example with one system; returns predictions, generation seconds and a label."""
    from summarize_cli.documents import Document, Problem
    from summarize_cli.run.build import build_run

    model = system.run.model.model
    with status(f"Loading {model} ...", show) as spinner:
        ready = worker.call(lambda: build_run(system.run, on_status=spinner.update))
    try:
        say([f"Warning: {w}" for w in ready.warnings])
        label = system.label or (Path(model).name if Path(model).is_dir() else ready.model_name)
        documents = [Document(e.id, e.text, language=e.language, routable=routable[e.id]) for e in examples]
        predictions = []
        started = time.perf_counter()
        with progress_bar(show) as progress:
            task = progress.add_task(f"Summarising ({label})", total=len(documents))
            for result in worker.iterate(ready.summarize(documents)):
                if isinstance(result, Problem):  # pragma: no cover - documents in memory cannot fail to read
                    predictions.append("")
                else:
                    predictions.append(result.summary)
                progress.advance(task)
        return predictions, time.perf_counter() - started, f"{label} [{ready.engine.backend.name}]"
    finally:
        ready.close()


def _write_per_document(path: Path, reports) -> None:
    import json

    lines = "".join(json.dumps(d, ensure_ascii=False) + "\n" for r in reports for d in r.per_document)
    if str(path) == "-":
        sys.stdout.write(lines)
        sys.stdout.flush()
        return
    from summarize_cli.outputs.sinks import write_atomic

    write_atomic(path, lines)


def _print_table(reports, counts: dict[str, int]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from summarize_cli.outputs.report import count

    how = ", ".join(f"{kind} for {count(n, 'document')}" for kind, n in sorted(counts.items()))
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
        if len(r.by_language) > 1:  # a mixed set: each language's own row under the system's
            for language, means in r.by_language.items():
                table.add_row(
                    escape(f"  {language} ({count(int(means['documents']), 'document')})"),
                    *(f"{means[t]:.2f}" for t in ("rouge1", "rouge2", "rougeL", "rougeLsum")),
                    f"{means['mean_length']:.1f}",
                    "",
                )
    Console(highlight=False, width=None if sys.stdout.isatty() else 120).print(table)
