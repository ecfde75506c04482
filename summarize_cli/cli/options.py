"""Options shared by `summarize` and `summarize eval`: one definition, used by both commands."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:  # the specs are imported when built: --help needs none of them
    from summarize_cli.specs import GenerationSpec, ModelSpec


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
ModelFor = Annotated[
    list[str] | None,
    typer.Option(
        "--model-for",
        help="LANG=MODEL: documents detected as LANG (ISO 639-1, e.g. zh) go to MODEL; the rest to --model "
        "(repeatable; also a \\[models] table in the config file).",
        metavar="LANG=MODEL",
        rich_help_panel=MODEL,
    ),
]
Language = Annotated[
    str | None,
    typer.Option(
        "--language",
        help="Every input's language (ISO 639-1), instead of detecting it per document.",
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
    bool, typer.Option("--offline", help="Never touch the network (same as HF_HUB_OFFLINE=1).", rich_help_panel=MODEL)
]
BatchSize = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Documents per batch (default: 16 for ctranslate2 on CPU, 8 for torch, 32 on CUDA).",
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
    bool | None, typer.Option("--do-sample/--no-sample", help="Sample instead of searching.", rich_help_panel=GEN)
]
Temperature = Annotated[float | None, typer.Option(help="Sampling temperature (> 0).", rich_help_panel=GEN)]
TopP = Annotated[float | None, typer.Option(help="Nucleus sampling mass, in (0, 1].", rich_help_panel=GEN)]
TopK = Annotated[int | None, typer.Option(help="Sample from the k likeliest tokens (0: off).", rich_help_panel=GEN)]
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
        "--min-length/--max-length override its bounds.",
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


def model_spec(
    *,
    model: str,
    backend: BackendName,
    device: str,
    dtype: Dtype,
    compute_type: ComputeType,
    offline: bool,
    threads: int | None,
    batch_size: int | None,
) -> ModelSpec:
    """The model options of either command as a ModelSpec."""
    from summarize_cli.specs import ModelSpec

    return ModelSpec(
        model=model,
        backend=backend.value,
        device=device,
        dtype=dtype.value,
        compute_type=compute_type.value,
        offline=offline,
        threads=threads,
        batch_size=batch_size,
    )


def generation_spec(
    *,
    num_beams: int | None,
    do_sample: bool | None,
    temperature: float | None,
    top_p: float | None,
    top_k: int | None,
    min_length: int | None,
    max_length: int | None,
    length_penalty: float | None,
    no_repeat_ngram_size: int | None,
    seed: int | None,
    prefix: str | None,
    long: LongMode,
    length: LengthPreset | None = None,
    force: bool = False,
) -> GenerationSpec:
    """The generation options of either command as a GenerationSpec, checked before any model loads."""
    from summarize_cli.specs import GenerationSpec

    return GenerationSpec(
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
        long_mode=long.value,
        length=None if length is None else length.value,
        force=force,
    )


def routes(model_for: list[str] | None) -> tuple[tuple[str, str], ...]:
    """--model-for LANG=MODEL values as (language, model) pairs, checked."""
    pairs = []
    for value in model_for or []:
        language, _, model = value.partition("=")
        language, model = language.strip().lower(), model.strip()
        if not language or not model or not language.isalpha() or len(language) > 3:
            raise typer.BadParameter(
                f"{value!r}: give LANG=MODEL, e.g. zh=csebuetnlp/mT5_multilingual_XLSum", param_hint="--model-for"
            )
        pairs.append((language, model))
    return tuple(pairs)


def language(value: str | None) -> str | None:
    if value is None:
        return None
    code = value.strip().lower()
    if not code.isalpha() or not 2 <= len(code) <= 3:
        raise typer.BadParameter(f"{value!r}: give an ISO 639-1 code such as en or zh", param_hint="--language")
    return code
