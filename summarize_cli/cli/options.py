"""Options shared by `summarize` and `summarize eval`: one definition, used by both commands."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:  # the specs are imported when built: --help needs none of them
    from summarize_cli.specs import RunSpec


GEN = "Generation (each overrides the model's own default)"
IO = "Inputs and outputs"
MODEL = "Model and device"
RAY = "Ray cluster (pip install 'summarize-cli\\[ray]')"  # \\[: Rich would read [ray] as markup


class LongMode(str, Enum):
    chunk = "chunk"
    truncate = "truncate"


class LengthPreset(str, Enum):
    short = "short"
    medium = "medium"
    long = "long"


class MethodName(str, Enum):
    auto = "auto"
    abstractive = "abstractive"
    extractive = "extractive"


class Dtype(str, Enum):
    auto = "auto"
    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"


class ComputeType(str, Enum):
    auto = "auto"
    int8 = "int8"
    int8_float32 = "int8_float32"
    float32 = "float32"
    bfloat16 = "bfloat16"
    int8_bfloat16 = "int8_bfloat16"


class BackendName(str, Enum):
    auto = "auto"
    torch = "torch"
    ctranslate2 = "ctranslate2"


Model = Annotated[
    str,
    typer.Option(
        "-m", "--model", envvar="SUMMARIZE_MODEL", help="Hugging Face id or local model folder.", rich_help_panel=MODEL
    ),
]
Method = Annotated[
    MethodName,
    typer.Option(
        "--method",
        help="abstractive: the model writes the summary; extractive: the text's own most central sentences, "
        "no model; auto: abstractive when the model can be had, else extractive (said once).",
        rich_help_panel=MODEL,
    ),
]
ModelFor = Annotated[
    list[str] | None,
    typer.Option(
        "--model-for",
        help="LANG=MODEL: documents detected as LANG (ISO 639-1, e.g. zh) go to MODEL (or to the extractive "
        "method: zh=extractive); the rest to --model (repeatable; also a \\[models] table in the config file).",
        metavar="LANG=MODEL",
        rich_help_panel=MODEL,
    ),
]
Language = Annotated[
    str | None,
    typer.Option(
        "--language",
        help="Every input's language (ISO 639-1), instead of detecting it (default: detected per document).",
        metavar="LANG",
        rich_help_panel=MODEL,
    ),
]
Backend = Annotated[BackendName, typer.Option(help="Inference backend.", rich_help_panel=MODEL)]
Device = Annotated[
    str, typer.Option(help="auto, cpu, cuda, cuda:N or mps (auto: CUDA, then MPS, then CPU).", rich_help_panel=MODEL)
]
DtypeOpt = Annotated[
    Dtype,
    typer.Option(
        "--dtype", help="Torch weights precision (auto: bfloat16 on capable CUDA, else float32).", rich_help_panel=MODEL
    ),
]
ComputeTypeOpt = Annotated[
    ComputeType,
    typer.Option(
        "--compute-type", help="CTranslate2 precision (auto: int8 on CPU, bfloat16 on CUDA).", rich_help_panel=MODEL
    ),
]
Threads = Annotated[
    int | None, typer.Option(min=1, help="CPU threads (default: physical cores).", rich_help_panel=MODEL)
]
Offline = Annotated[
    bool,
    typer.Option(
        "--offline",
        help="Never download a model (as HF_HUB_OFFLINE=1); URL inputs are still fetched.",
        rich_help_panel=MODEL,
    ),
]
BatchSize = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Documents per batch, 1 to 1024 (default: 4 per --threads for ctranslate2 on CPU, 8 for torch, "
        "32 on CUDA).",
        rich_help_panel=MODEL,
    ),
]
Long = Annotated[
    LongMode,
    typer.Option(
        "--long", help="Documents over the input limit: map-reduce chunks, or truncate.", rich_help_panel=MODEL
    ),
]
NumBeams = Annotated[int | None, typer.Option(help="Beam search width.", rich_help_panel=GEN)]
DoSample = Annotated[
    bool | None,
    typer.Option("--do-sample/--no-sample", help="Sample instead of searching (default: off).", rich_help_panel=GEN),
]
Temperature = Annotated[
    float | None, typer.Option(help="Sampling temperature (> 0; default: 1.0).", rich_help_panel=GEN)
]
TopP = Annotated[
    float | None, typer.Option(help="Nucleus sampling mass, in (0, 1] (default: 1.0).", rich_help_panel=GEN)
]
TopK = Annotated[
    int | None, typer.Option(help="Sample from the k likeliest tokens (0: off; default: 50).", rich_help_panel=GEN)
]
MinLength = Annotated[int | None, typer.Option(help="Shortest summary, in tokens.", rich_help_panel=GEN)]
MaxLength = Annotated[int | None, typer.Option(help="Longest summary, in tokens.", rich_help_panel=GEN)]
LengthPenalty = Annotated[
    float | None, typer.Option(help="> 1 favours longer beams, < 1 shorter.", rich_help_panel=GEN)
]
NoRepeat = Annotated[
    int | None, typer.Option(help="Never repeat an n-gram of this size (0: off).", rich_help_panel=GEN)
]
Seed = Annotated[int | None, typer.Option(help="Random seed: same seed, same output.", rich_help_panel=GEN)]
Length = Annotated[
    LengthPreset | None,
    typer.Option(
        "--length",
        help="Named summary length: short (half the model's own), medium (the model's own), long (twice); "
        "--min-length/--max-length override its bounds (default: medium).",
        rich_help_panel=GEN,
    ),
]
Force = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Summarise even a text shorter than its summary would be (else kept as it is).",
        rich_help_panel=GEN,
    ),
]
Prefix = Annotated[
    str | None, typer.Option(help="Text put before each input (t5: 'summarize: ').", rich_help_panel=GEN)
]
Quiet = Annotated[bool, typer.Option("-q", "--quiet", help="No progress display.", rich_help_panel=IO)]
Verbose = Annotated[
    bool, typer.Option("-v", "--verbose", help="Report model, device and settings on stderr.", rich_help_panel=IO)
]


# summarize's own options


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
        from summarize_cli import __version__

        typer.echo(f"summarize-cli {__version__}")
        raise typer.Exit()


Inputs = Annotated[
    list[str] | None,
    typer.Argument(
        help="Files, folders (walked recursively) or - for stdin. Default: stdin.",
        show_default=False,
        metavar="[INPUTS]...",
    ),
]
Include = Annotated[
    list[str] | None,
    typer.Option(
        help="Glob of files to take from folders (repeatable; default: every supported extension).",
        rich_help_panel=IO,
    ),
]
Exclude = Annotated[
    list[str] | None, typer.Option(help="Glob of files or folders to leave out (repeatable).", rich_help_panel=IO)
]
StdinFormatOpt = Annotated[
    StdinFormat,
    typer.Option(help='text: stdin is one document; jsonl: one {"text", "id"} per line.', rich_help_panel=IO),
]
InputFormatOpt = Annotated[
    InputFormat, typer.Option(help="How to read inputs (auto: by extension; stdin: text).", rich_help_panel=IO)
]
MaxInputBytes = Annotated[
    int,
    typer.Option(
        min=1,
        help="Refuse inputs (files, stdin, URL bodies, each JSONL line or Parquet row, extracted text) "
        "larger than this.",
        rich_help_panel=IO,
    ),
]
FilesFrom = Annotated[
    str | None,
    typer.Option(
        "--files-from",
        help="Read input paths and URLs from this file, one per line (- for stdin), after any INPUTS.",
        metavar="FILE",
        rich_help_panel=IO,
    ),
]
Null = Annotated[
    bool, typer.Option("-0", "--null", help="With --files-from: names end in NUL (find -print0).", rich_help_panel=IO)
]
Timeout = Annotated[float, typer.Option(min=0.1, help="Seconds to connect to, and wait on, a URL.", rich_help_panel=IO)]
Extract = Annotated[
    bool,
    typer.Option(
        "--extract",
        help="Print the text each input becomes (after decoding and extraction) instead of summarising; "
        "loads no model.",
        rich_help_panel=IO,
    ),
]
FormatOpt = Annotated[Format, typer.Option("-f", "--format", help="Output format.", rich_help_panel=IO)]
Bullets = Annotated[
    bool,
    typer.Option(
        "--bullets",
        help="Each summary as a list of its sentences (a long document: one point per section).",
        rich_help_panel=IO,
    ),
]
Combine = Annotated[bool, typer.Option("--combine", help="One summary of every input together.", rich_help_panel=IO)]
OutputDir = Annotated[
    Path | None,
    typer.Option(
        "-o",
        "--output-dir",
        help="Write one file per input here, mirroring the inputs.",
        file_okay=False,
        rich_help_panel=IO,
    ),
]
Output = Annotated[
    Path | None,
    typer.Option(
        "--output", help="Write every record into one .jsonl or .parquet file.", dir_okay=False, rich_help_panel=IO
    ),
]
TextColumn = Annotated[
    str, typer.Option(help="Column (or JSONL field) holding the text in .jsonl/.parquet inputs.", rich_help_panel=IO)
]
IdColumn = Annotated[
    str, typer.Option(help="Column (or JSONL field) naming each row in .jsonl/.parquet inputs.", rich_help_panel=IO)
]
Ray = Annotated[
    bool,
    typer.Option("--ray", help="Run on Ray: a local instance, or the cluster at --ray-address.", rich_help_panel=RAY),
]
RayAddress = Annotated[
    str | None,
    typer.Option(
        help="Cluster to join: auto, or ray://HEAD:10001 (default: start a local Ray; RAY_ADDRESS is honoured).",
        rich_help_panel=RAY,
    ),
]
Workers = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Ray actors, each with the model loaded (default: one per CPU, or per GPU with --device cuda).",
        rich_help_panel=RAY,
    ),
]
SkipExisting = Annotated[
    bool,
    typer.Option(
        "--skip-existing",
        help="With -o or --output: skip inputs whose summary is already written (resume a run).",
        rich_help_panel=IO,
    ),
]
NoCache = Annotated[
    bool, typer.Option("--no-cache", help="Neither read nor write the result cache.", rich_help_panel=IO)
]
ClearCache = Annotated[
    bool | None, typer.Option("--clear-cache", help="Empty the result cache and exit (give no inputs).")
]
Version = Annotated[
    bool | None, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
]

# eval's own options


class EvalFormat(str, Enum):
    table = "table"
    json = "json"


Data = Annotated[
    Path,
    typer.Argument(
        help="A JSONL file of documents with reference summaries, or a folder of documents.",
        exists=True,
        show_default=False,
        metavar="DATA",
    ),
]
References = Annotated[
    Path | None,
    typer.Argument(
        help="With a folder of documents: the folder of references, matched by file name.",
        exists=True,
        file_okay=False,
        show_default=False,
        metavar="[REFERENCES]",
    ),
]
TextField = Annotated[str, typer.Option(help="JSONL field holding the document.", rich_help_panel=IO)]
ReferenceField = Annotated[str, typer.Option(help="JSONL field holding the reference summary.", rich_help_panel=IO)]
IdField = Annotated[str, typer.Option(help="JSONL field naming the document.", rich_help_panel=IO)]
Limit = Annotated[int | None, typer.Option(min=1, help="Evaluate only the first N documents.", rich_help_panel=IO)]
Compare = Annotated[
    list[str] | None,
    typer.Option(
        help="Another system to score beside the first, as options: --compare '--num-beams 1' or "
        "--compare '-m facebook/bart-large-cnn' (repeatable).",
        rich_help_panel=IO,
    ),
]
Lead3 = Annotated[
    bool,
    typer.Option(
        "--lead3/--no-lead3", help="Score the baselines too: Lead-3 and the extractive method.", rich_help_panel=IO
    ),
]
EvalFormatOpt = Annotated[EvalFormat, typer.Option("-f", "--format", help="table (Rich) or json.", rich_help_panel=IO)]
PerDocument = Annotated[
    Path | None,
    typer.Option(
        help="Write per-document scores (and summaries) to this JSONL file; - for stdout.", rich_help_panel=IO
    ),
]

# options -> specs: each spec field takes the option of its name (or of the name given here)
FIELD_FOR = {"long": "long_mode", "output": "output_file", "ray": "enabled", "ray_address": "address"}


def spec_from(cls, params: Mapping[str, object], **given):
    """A `cls` spec from a command's parsed options: each field from the option of its name, enums as
    their values, lists as tuples; `given` fields as they are. The spec checks itself when made."""
    names = {f.name for f in fields(cls)}
    for name, value in params.items():
        field = FIELD_FOR.get(name, name)
        if field in names and field not in given:
            value = value.value if isinstance(value, Enum) else value
            given[field] = tuple(value) if isinstance(value, list) else value
    return cls(**given)


def run_spec(params: Mapping[str, object], use_cache: bool) -> RunSpec:
    """The model, generation and routing options of either command as a RunSpec."""
    from summarize_cli.specs import GenerationSpec, ModelSpec, RunSpec

    return RunSpec(
        model=spec_from(ModelSpec, params),
        generation=spec_from(GenerationSpec, params),
        use_cache=use_cache,
        routes=tuple(params.get("model_for") or ()),
        languages=_records_show_languages(params),
    )


def _records_show_languages(params: Mapping[str, object]) -> bool:
    """Text and Markdown show summaries alone; json and jsonl records and --output datasets carry each
    document's language (`summarize eval` has no --output and detects its own)."""
    fmt = params.get("fmt")
    fmt = fmt.value if isinstance(fmt, Enum) else fmt
    return fmt not in ("text", "markdown") or params.get("output") is not None
