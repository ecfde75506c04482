"""Typed specs: the CLI turns its options into these once; everything below takes them, never dicts."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, fields, replace
from pathlib import Path

from summarize_cli.errors import SettingsError, UsageError, need_pyarrow

LONG_MODES = ("chunk", "truncate")
DEFAULT_MAX_INPUT_BYTES = 20_000_000
MAX_SEED = 2**32 - 1  # what every backend's random generator takes
# --length: the model's own minimum and maximum summary length, scaled (medium is the model's default)
LENGTH_PRESETS = {"short": 0.5, "medium": 1.0, "long": 2.0}
_NOT_SETTINGS = ("long_mode", "length", "force")
STDIN = "-"
# --method: abstractive (a seq2seq model writes the summary), extractive (the text's own most central
# sentences, no model), auto (abstractive when the model can be had, else extractive, said once)
METHODS = ("auto", "abstractive", "extractive")
EXTRACTIVE = "extractive"  # also a route's model: --model-for zh=extractive
OUTPUT_SUFFIXES = (".jsonl", ".parquet")
DEVICES = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
MAX_BATCH_SIZE = 1024  # documents in one generate call: past this, memory runs out before speed improves
MAX_NUM_BEAMS = 64  # each beam is a decoder state per document: past this, memory runs out, never quality
MAX_TIMEOUT = 24 * 3600.0  # seconds: a URL that takes a day is a URL that hangs


def usable_cpus() -> int:
    """The CPUs this process may run on: --threads beyond them only adds contention (1,000 threads took
    250 s where the default took 1 s; 100,000 crashed CTranslate2)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


MAX_RAY_THREADS = 1024  # per Ray worker: each node's own CPUs are checked when the cluster is joined


def check_threads(model: ModelSpec, on_ray: bool) -> None:
    """--threads for where the model runs: this machine's CPUs for a local run (the driver's would wrongly
    bound a cluster's larger nodes, which Cluster checks instead), a sane bound on Ray."""
    if model.threads is None:
        return
    if not on_ray and model.threads > usable_cpus():
        raise UsageError("--threads", f"must be between 1 and {usable_cpus()}, the CPUs here (got {model.threads})")
    if on_ray and model.threads > MAX_RAY_THREADS:
        raise UsageError("--threads", f"must be between 1 and {MAX_RAY_THREADS} (got {model.threads})")


def _set(spec, name: str, value) -> None:
    """Normalise a field of a frozen spec while it is being made."""
    object.__setattr__(spec, name, value)


def _as_path(spec, *names: str) -> None:
    from summarize_cli.storage import location

    for name in names:
        value = getattr(spec, name)
        if value is not None:
            _set(spec, name, location(value))


def parse_routes(values) -> tuple[tuple[str, str], ...]:
    """--model-for LANG=MODEL values (or pairs) as (language, model) pairs, checked."""
    pairs = []
    for value in values:
        if isinstance(value, tuple):
            pairs.append(value)
            continue
        language, _, model = value.partition("=")
        language, model = language.strip().lower(), model.strip()
        if not language or not model or not language.isalpha() or len(language) > 3:
            raise UsageError("--model-for", f"{value!r}: give LANG=MODEL, e.g. zh=csebuetnlp/mT5_multilingual_XLSum")
        pairs.append((language, model))
    return tuple(pairs)


def parse_language(value: str | None) -> str | None:
    """--language as an ISO 639-1 (or -3) code, checked."""
    if value is None:
        return None
    code = value.strip().lower()
    if not code.isalpha() or not 2 <= len(code) <= 3:
        raise UsageError("--language", f"{value!r}: give an ISO 639-1 code such as en or zh")
    return code


@dataclass(frozen=True)
class ModelSpec:
    """What model to load and where it runs."""

    model: str = "t5-small"
    backend: str = "auto"
    device: str = "auto"
    dtype: str = "auto"
    compute_type: str = "auto"
    offline: bool = False
    threads: int | None = None
    batch_size: int | None = None  # None: the engine's default for its backend and device
    one_document: bool = False  # the run has one input: one replica over the free cores (see ct2_backend)
    method: str = "auto"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise UsageError("--method", f"{self.method!r}: give one of {', '.join(METHODS)}")
        if not DEVICES.fullmatch(self.device):
            raise UsageError("--device", f"{self.device!r}: give auto, cpu, cuda, cuda:N (N a number) or mps")
        if self.threads is not None and self.threads < 1:
            raise UsageError("--threads", f"must be 1 or more (got {self.threads})")
        if self.batch_size is not None and not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise UsageError("--batch-size", f"must be between 1 and {MAX_BATCH_SIZE} (got {self.batch_size})")


@dataclass(frozen=True)
class GenerationSpec:
    """The user's generation options; None keeps the model's own default. Checked when made."""

    num_beams: int | None = None
    do_sample: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_length: int | None = None
    max_length: int | None = None
    length_penalty: float | None = None
    no_repeat_ngram_size: int | None = None
    seed: int | None = None
    prefix: str | None = None
    long_mode: str = "chunk"
    length: str | None = None  # a preset: short, medium (the model's own), long
    force: bool = False  # summarise even a text shorter than its summary would be

    def __post_init__(self) -> None:
        checks = {
            "num_beams": (lambda v: 1 <= v <= MAX_NUM_BEAMS, f"--num-beams must be between 1 and {MAX_NUM_BEAMS}"),
            "temperature": (lambda v: 0 < v < math.inf, "--temperature must be a finite number greater than 0"),
            "top_p": (lambda v: 0 < v <= 1, "--top-p must be in (0, 1]"),
            "length_penalty": (math.isfinite, "--length-penalty must be a finite number"),
            "top_k": (lambda v: v >= 0, "--top-k must be 0 (off) or more"),
            "min_length": (lambda v: v >= 0, "--min-length must be 0 or more"),
            "max_length": (lambda v: v >= 1, "--max-length must be at least 1"),
            "no_repeat_ngram_size": (lambda v: v >= 0, "--no-repeat-ngram-size must be 0 (off) or more"),
            "seed": (lambda v: 0 <= v <= MAX_SEED, f"--seed must be between 0 and {MAX_SEED}"),
        }
        for name, (ok, message) in checks.items():
            value = getattr(self, name)
            if value is not None and not ok(value):
                raise SettingsError(f"{message} (got {value})")
        if self.min_length is not None and self.max_length is not None and self.min_length > self.max_length:
            raise SettingsError(f"--min-length ({self.min_length}) is greater than --max-length ({self.max_length})")
        if self.long_mode not in LONG_MODES:
            raise SettingsError(f"--long must be one of {', '.join(LONG_MODES)}")
        if self.length is not None and self.length not in LENGTH_PRESETS:
            raise SettingsError(f"--length must be one of {', '.join(LENGTH_PRESETS)}")

    def overrides(self) -> dict:
        """The generation settings given, by GenerationSettings field name (None: the model's own)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _NOT_SETTINGS}


@dataclass(frozen=True)
class RunSpec:
    """Everything that builds a ready run: the local run, each Ray actor and `eval` take one of these."""

    model: ModelSpec = ModelSpec()
    generation: GenerationSpec = GenerationSpec()
    use_cache: bool = True
    routes: tuple[tuple[str, str], ...] = ()  # (language, model): documents in that language go to that model
    languages: bool = True  # whether the results need each document's language: json and jsonl records do

    def __post_init__(self) -> None:
        _set(self, "routes", parse_routes(self.routes or ()))

    def for_model(self, model: str) -> RunSpec:
        """The same run with another model: what a route is built from. The model `extractive` is the
        extractive method (a route that needs no download)."""
        method = EXTRACTIVE if model == EXTRACTIVE else self.model.method
        return replace(self, model=replace(self.model, model=model, method=method), routes=())

    def without_fallback(self) -> RunSpec:
        """`--method auto` held to the model: `summarize eval` scores what it was asked to, never a stand-in."""
        if self.model.method != "auto":
            return self
        return replace(self, model=replace(self.model, method="abstractive"))


@dataclass(frozen=True)
class InputSpec:
    """How inputs are found and read. An empty `inputs` means stdin (or, from a terminal, a usage hint);
    an empty `include`, every extension the readers know."""

    inputs: tuple[str, ...] = (STDIN,)
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    stdin_format: str = "text"
    input_format: str = "auto"
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES
    text_column: str = "text"
    id_column: str = "id"
    timeout: float = 30.0  # seconds to connect to, and to wait on, a URL
    language: str | None = None  # every input's language, declared (else detected per document)
    files_from: str | None = None  # a file listing more inputs, one a line (- for stdin)
    null: bool = False  # the list's names end in NUL (find -print0)

    def __post_init__(self) -> None:
        for name in ("inputs", "include", "exclude"):
            _set(self, name, tuple(getattr(self, name) or ()))
        _set(self, "language", parse_language(self.language))
        if not 0.1 <= self.timeout <= MAX_TIMEOUT:  # nan and inf fail too
            raise UsageError("--timeout", f"must be between 0.1 and {MAX_TIMEOUT:g} seconds (got {self.timeout})")
        if self.null and self.files_from is None:
            raise UsageError("-0/--null", "needs --files-from")
        if self.files_from == STDIN and STDIN in self.inputs:
            raise UsageError("--files-from -", "stdin holds the list: it cannot be an input too")
        if "" in self.inputs:  # an unset shell variable: `cat ''` refuses it too, never the current folder
            raise UsageError("INPUTS", "an input name is empty (an unset variable?); give . for the current folder")
        if self.inputs.count(STDIN) > 1:
            raise UsageError("INPUTS", "stdin (-) can be given only once")
        if self.stdin_format != "text" and self.inputs and STDIN not in self.inputs:
            raise UsageError(
                "--stdin-format", "applies to stdin: give - among the inputs, or pipe the stream with no inputs"
            )


@dataclass(frozen=True)
class OutputSpec:
    """Where results go: stdout in a format, one file per input under `output_dir`, or one `output_file`."""

    fmt: str = "text"
    bullets: bool = False  # the summary's sentences (a chunked document's sections) as a list
    combine: bool = False  # every input into one summary
    output_dir: Path | None = None
    output_file: Path | None = None
    skip_existing: bool = False
    extract: bool = False  # the text each input becomes, instead of its summary

    def __post_init__(self) -> None:
        _as_path(self, "output_dir", "output_file")
        if self.output_file is not None:
            if self.output_file.suffix.lower() not in OUTPUT_SUFFIXES:
                raise UsageError("--output", f"must end in .jsonl or .parquet: {self.output_file}")
            if self.fmt != "text":
                raise UsageError(
                    "-f/--format",
                    f"--output writes {self.output_file.suffix[1:]} (its extension says the format); "
                    f"leave out -f {self.fmt}",
                )
            if self.output_dir is not None:
                raise UsageError("--output", "give either --output FILE or -o/--output-dir DIR")
            if self.output_file.suffix.lower() == ".parquet":
                need_pyarrow("writing Parquet")  # before a temporary file or a model exists
        if self.skip_existing and self.output_dir is None and self.output_file is None:
            raise UsageError("--skip-existing", "needs -o/--output-dir or --output")
        if self.combine and self.output_dir is not None:
            raise UsageError(
                "--combine", "makes one summary: redirect stdout (> combined.txt) or use --output FILE.jsonl"
            )
        if self.combine and self.extract:
            raise UsageError("--combine", "--extract prints each input's text; there is nothing to combine")


@dataclass(frozen=True)
class RaySpec:
    """Run on Ray (`enabled`): the cluster to join (None: a local instance) and how many actors."""

    enabled: bool = True
    address: str | None = None
    workers: int | None = None

    def __post_init__(self) -> None:
        if (self.address or self.workers) and not self.enabled:
            raise UsageError("--ray-address" if self.address else "--workers", "needs --ray")


@dataclass(frozen=True)
class Job:
    """One `summarize` invocation: what to run, on what, into what, and where."""

    run: RunSpec
    inputs: InputSpec
    outputs: OutputSpec
    ray: RaySpec
    clear_cache: bool = False  # empty the result cache and stop

    def __post_init__(self) -> None:
        check_threads(self.run.model, on_ray=self.ray.enabled)
        if self.clear_cache and self.inputs.inputs:
            raise UsageError("--clear-cache", "empties the cache and exits: give it no inputs")
        if self.outputs.extract:
            given = [
                name
                for name, value in vars(self.run.generation).items()
                if name != "long_mode" and value not in (None, False)
            ] + (["batch_size"] if self.run.model.batch_size is not None else [])
            if given:
                names = ", ".join("--" + name.replace("_", "-") for name in given)
                raise UsageError("--extract", f"prints text without summarising: {names} would do nothing")


@dataclass(frozen=True)
class EvalSpec:
    """What `summarize eval` scores: a JSONL file with references, or a folder of documents beside a folder
    of references; which systems (the run, each --compare, Lead-3); and how the scores are reported."""

    data: Path
    references: Path | None = None
    text_field: str = "text"
    reference_field: str = "summary"
    id_field: str = "id"
    limit: int | None = None
    compare: tuple[str, ...] = ()
    lead3: bool = True
    fmt: str = "table"
    per_document: Path | None = None
    language: str | None = None  # every document's language, declared (else detected per document)

    def __post_init__(self) -> None:
        _as_path(self, "data", "references", "per_document")
        _set(self, "compare", tuple(self.compare or ()))
        _set(self, "language", parse_language(self.language))
        if self.data.is_dir() and self.references is None:
            raise UsageError("DATA", "a folder of documents needs a folder of references too")
        if not self.data.is_dir() and self.references is not None:
            raise UsageError("REFERENCES", "a JSONL file holds its own references")
