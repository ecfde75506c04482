"""Typed specs: the CLI turns its options into these once; everything below takes them, never dicts."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

from summarize_cli.errors import SettingsError

LONG_MODES = ("chunk", "truncate")
DEFAULT_MAX_INPUT_BYTES = 20_000_000
MAX_SEED = 2**32 - 1  # what every backend's random generator takes
# --length: the model's own minimum and maximum summary length, scaled (medium is the model's default)
LENGTH_PRESETS = {"short": 0.5, "medium": 1.0, "long": 2.0}
_NOT_SETTINGS = ("long_mode", "length", "force")


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
    one_document: bool = False  # the run has one input: every core on one model replica


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
            "num_beams": (lambda v: v >= 1, "--num-beams must be at least 1"),
            "temperature": (lambda v: v > 0, "--temperature must be greater than 0"),
            "top_p": (lambda v: 0 < v <= 1, "--top-p must be in (0, 1]"),
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

    def for_model(self, model: str) -> RunSpec:
        """The same run with another model: what a route is built from."""
        return replace(self, model=replace(self.model, model=model), routes=())


@dataclass(frozen=True)
class InputSpec:
    """How inputs are found and read."""

    inputs: tuple[str, ...] = ("-",)
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    stdin_format: str = "text"
    input_format: str = "auto"
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES
    text_column: str = "text"
    id_column: str = "id"
    timeout: float = 30.0  # seconds to connect to, and to wait on, a URL
    language: str | None = None  # every input's language, declared (else detected per document)


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


@dataclass(frozen=True)
class RaySpec:
    """Run on Ray: the cluster to join (None: a local instance) and how many actors."""

    address: str | None = None
    workers: int | None = None
