"""Generation settings: the model's own summarisation defaults, overridden by the user's options."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from summarize_cli.errors import SettingsError
from summarize_cli.model.source import read_json

FALLBACK = {  # for models that carry no summarisation parameters of their own
    "prefix": "",
    "num_beams": 4,
    "min_length": 10,
    "max_length": 128,
    "length_penalty": 1.0,
    "no_repeat_ngram_size": 3,
    "early_stopping": True,
}


@dataclass(frozen=True)
class GenerationSettings:
    """Everything that decides the summary; lengths count summary tokens."""

    prefix: str = ""
    num_beams: int = 4
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 50
    min_length: int = 10
    max_length: int = 128
    length_penalty: float = 1.0
    no_repeat_ngram_size: int = 3
    early_stopping: bool = True
    seed: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def model_defaults(model_dir: Path) -> dict:
    """The model's summarisation parameters: generation_config.json, then task_specific_params."""
    defaults = dict(FALLBACK)
    config = read_json(model_dir / "config.json")
    generation = read_json(model_dir / "generation_config.json")
    task = (config.get("task_specific_params") or {}).get("summarization") or {}
    for source in (generation, task):
        for key in FALLBACK:
            if source.get(key) is not None:
                defaults[key] = source[key]
    return defaults


def output_limit(config: dict, input_limit: int) -> int:
    """The longest summary a model can sensibly produce: its decoder's position limit where it has one
    (BART, Pegasus: 1024), else its input limit (T5's relative positions have none; a summary longer than
    the text it summarises is no summary)."""
    for key in ("max_position_embeddings", "n_positions"):
        if isinstance(config.get(key), int) and config[key] > 0:
            return config[key]
    return input_limit


def check_bounds(settings: GenerationSettings, overrides: dict, limit: int, model: str) -> GenerationSettings:
    """A --max-length past what the model can produce is a typo, not a run of hours: refuse it. A preset
    (--length long) that reaches past it is held to it."""
    if settings.max_length <= limit:
        return settings
    if overrides.get("max_length") is not None:
        raise SettingsError(
            f"--max-length {settings.max_length} is more than {model} can produce ({limit} tokens); "
            f"give at most --max-length {limit}"
        )
    return replace(settings, max_length=limit, min_length=min(settings.min_length, limit))


def resolve(model_dir: Path, overrides: dict, length: str | None = None) -> GenerationSettings:
    """Model defaults, scaled by a --length preset, with every non-None override applied on top, checked
    as a whole."""
    from summarize_cli.specs import LENGTH_PRESETS

    known = {f.name for f in fields(GenerationSettings)}
    merged = {k: v for k, v in model_defaults(model_dir).items() if k in known}
    if length is not None:
        scale = LENGTH_PRESETS[length]
        merged["min_length"] = max(1, round(merged["min_length"] * scale))
        merged["max_length"] = max(merged["min_length"], round(merged["max_length"] * scale))
    merged.update({k: v for k, v in overrides.items() if v is not None and k in known})
    settings = GenerationSettings(**merged)
    if settings.min_length > settings.max_length:
        if "min_length" in overrides and overrides["min_length"] is not None:
            raise SettingsError(
                f"--min-length ({settings.min_length}) is greater than the max length ({settings.max_length})"
            )
        settings = replace(settings, min_length=settings.max_length)  # a shorter --max-length wins
    return settings
