"""One builder: typed specs in, a ready run out. The local run, every Ray actor and `eval` call it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from summarize_cli.documents import Document, Problem, Result
from summarize_cli.specs import RunSpec


@dataclass
class ReadyRun:
    """A loaded engine, its resolved settings and a summarizer, with what the user must be told."""

    spec: RunSpec
    engine: object  # summarize_cli.engine.Engine (imported lazily: torch and transformers are heavy)
    settings: object  # summarize_cli.settings.GenerationSettings
    summarizer: object  # summarize_cli.pipeline.Summarizer
    cache: object | None = None  # summarize_cli.cache.ResultCache
    stage: object | None = None  # summarize_cli.cache.CacheStage over `cache`
    warnings: list[str] = field(default_factory=list)  # to show once, before any result
    _cache_warned: bool = False

    @property
    def model_name(self) -> str:
        return self.engine.source.name

    @property
    def batch_size(self) -> int:
        return self.summarizer.batch_size

    @property
    def run_info(self) -> dict:
        """What json records say about how their summaries were made."""
        return self.engine.run_info(self.settings)

    def summarize(self, items: Iterable[Document | Problem]) -> Iterator[Result | Problem]:
        if self.stage is None:
            return self.summarizer.summarize(items)
        return self.stage.store(self.summarizer.summarize(self.stage.lookup(items)))

    def late_warnings(self) -> list[str]:
        """Warnings that arose during the run (the cache failed), each said once."""
        if self.cache is not None and self.cache.warning and not self._cache_warned:
            self._cache_warned = True
            return [self.cache.warning]
        return []

    def describe(self) -> list[str]:
        """What -v reports: model, backend, device, precision, batch size and settings."""
        info = self.engine.info()
        return [
            f"model {info['model']} ({self.engine.source.path}), backend {info['backend']}, device {info['device']}, "
            f"precision {info['precision']}, batch size {self.batch_size}, input limit "
            f"{self.engine.tokenizer.model_max_length} tokens",
            "settings " + ", ".join(f"{k}={v!r}" for k, v in self.settings.as_dict().items()),
        ]

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()


def build_run(spec: RunSpec, on_status: Callable[[str], None] = lambda message: None) -> ReadyRun:
    """Load the model, resolve its settings against the user's, open the cache, and make the summarizer."""
    from summarize_cli.engine import load_engine
    from summarize_cli.settings import check_bounds, output_limit, resolve

    model = spec.model
    engine = load_engine(
        model.model,
        backend=model.backend,
        device=model.device,
        dtype=model.dtype,
        compute_type=model.compute_type,
        offline=model.offline,
        threads=model.threads,
        on_status=on_status,
    )
    overrides = spec.generation.overrides()
    settings = resolve(engine.source.path, overrides, spec.generation.length)
    limit = output_limit(engine.source.config, engine.tokenizer.model_max_length)
    settings = check_bounds(settings, overrides, limit, engine.source.name)
    warnings = list(engine.backend.notes) + list(engine.backend.check(settings))
    summarizer = engine.summarizer(settings, model.batch_size, spec.generation.long_mode, spec.generation.force)
    run = ReadyRun(spec, engine, settings, summarizer, warnings=warnings)
    if spec.use_cache:
        run.cache, run.stage = open_cache(run.run_info, spec.generation)
        warnings.extend(run.late_warnings())  # a cache unusable from the start is said up front
    return run


def open_cache(run_info: dict, generation):
    """The result cache and the stage that consults it, for runs made as `run_info` and the generation
    spec's non-setting choices (--long, --force) say."""
    from summarize_cli.cache import CacheStage, ResultCache

    cache = ResultCache()
    return cache, CacheStage(cache, run_info, {"long": generation.long_mode, "force": generation.force})
