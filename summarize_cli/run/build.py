"""One builder: typed specs in, a ready run out. The local run, every Ray actor and `eval` call it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace

from summarize_cli.documents import Document, Problem, Result
from summarize_cli.specs import EXTRACTIVE, RunSpec


@dataclass
class ReadyRun:
    """A loaded engine, its resolved settings and a summarizer, with what the user must be told."""

    spec: RunSpec
    engine: object  # summarize_cli.model.engine.Engine (imported lazily: torch and transformers are heavy)
    settings: object  # summarize_cli.model.settings.GenerationSettings
    summarizer: object  # summarize_cli.run.pipeline.Summarizer
    cache: object | None = None  # summarize_cli.run.cache.ResultCache
    stage: object | None = None  # summarize_cli.run.cache.CacheStage over `cache`
    warnings: list[str] = field(default_factory=list)  # to show once, before any result
    fallback: bool = False  # the extractive method standing in for a model that could not be had
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
        """Results in input order. The model's summarizer detects languages while it generates; the
        extractive method splits sentences by language at once, so its documents are detected first."""
        if self.engine.info()["method"] == EXTRACTIVE:
            from summarize_cli.inputs.language import detect_languages

            items = detect_languages(items)
        results = (
            self.summarizer.summarize(items)
            if self.stage is None
            else self.stage.around(self.summarizer.summarize, items)
        )
        return _as_fallback(results) if self.fallback else results

    def late_warnings(self) -> list[str]:
        """Warnings that arose during the run (the cache failed), each said once."""
        if self.cache is not None and self.cache.warning and not self._cache_warned:
            self._cache_warned = True
            return [self.cache.warning]
        return []

    def describe(self) -> list[str]:
        """What -v reports: model, backend, device, precision, batch size and settings."""
        if hasattr(self.engine, "describe"):  # the extractive method: no model to describe
            return self.engine.describe(self.settings)
        info = self.engine.info()
        return [
            f"model {info['model']} ({self.engine.source.path}), backend {info['backend']}, device {info['device']}, "
            f"precision {info['precision']}{_layout(self.engine.backend)}, batch size {self.batch_size}, input limit "
            f"{self.engine.tokenizer.model_max_length} tokens",
            "settings " + ", ".join(f"{k}={v!r}" for k, v in self.settings.as_dict().items()),
        ]

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()


def _layout(backend) -> str:
    """How a CPU backend spreads over the cores, for -v: CTranslate2's replicas and their threads, and the
    kernels it was told to run (AVX512 where the CPU has it)."""
    replicas, threads = getattr(backend, "replicas", None), getattr(backend, "replica_threads", None)
    if not replicas or not threads:
        return ""
    kernels = getattr(backend, "kernels", None)
    layout = f", {replicas} replica{'s' if replicas > 1 else ''} of {threads} thread{'s' if threads > 1 else ''}"
    return layout + (f", {kernels} kernels" if kernels else "")


def _as_fallback(results: Iterable[Result | Problem]) -> Iterator[Result | Problem]:
    """The results of a fallback run, marked so: the report counts them, a route's own choice not."""
    for result in results:
        if isinstance(result, Result):
            result.fallback = True
        yield result


class RoutedRun:
    """Documents to the model for their language (`--model-for zh=MODEL`), every other one to the default.

    Each routed model is built (with the same builder) when its first document arrives. Documents are
    taken a window at a time, split by model, batched by each model's summarizer, and put back in input
    order; a paused feed (IDLE) runs what has arrived.
    """

    def __init__(self, spec: RunSpec, default: ReadyRun):
        self.spec = spec
        self.default = default
        self.routes = dict(spec.routes)
        self.runs: dict[str, ReadyRun] = {}
        self._late: list[str] = []
        self.window = default.summarizer.window  # the default model's summarizer sets the pace

    def __getattr__(self, name):  # warnings, run_info, batch_size, model_name, describe: the default's
        return getattr(self.default, name)

    def run_for(self, document: Document) -> ReadyRun:
        model = self.routes.get(document.language) if document.routable else None
        if model is None:
            return self.default
        if model not in self.runs:
            run = build_run(self.spec.for_model(model))
            self._late.extend(f"{model}: {w}" for w in run.warnings)
            self.runs[model] = run
        return self.runs[model]

    def summarize(self, items: Iterable[Document | Problem]) -> Iterator[Result | Problem]:
        from summarize_cli.run.pipeline import windows

        for window, _ in windows(items, self.window):
            yield from self._run_window(window)

    def _run_window(self, window: list) -> Iterator[Result | Problem]:
        if not window:
            return
        out: list = list(window)  # problems stay where they are; each document's result takes its place
        groups: dict[int, tuple[ReadyRun, list[int]]] = {}
        from summarize_cli.inputs.language import detect_language

        for index, item in enumerate(window):
            if isinstance(item, Document):
                detect_language(item)  # a route is chosen by it
                run = self.run_for(item)
                groups.setdefault(id(run), (run, []))[1].append(index)
        for run, indexes in groups.values():
            for index, result in zip(indexes, run.summarize([window[i] for i in indexes]), strict=True):
                if isinstance(result, Result) and result.run_info is None:
                    result.run_info = run.run_info  # the record names the model that made it
                out[index] = result
        yield from out

    def late_warnings(self) -> list[str]:
        said, self._late = self._late, []
        for run in (self.default, *self.runs.values()):
            said.extend(run.late_warnings())
        return said

    def close(self) -> None:
        for run in (self.default, *self.runs.values()):
            run.close()


def build_run(spec: RunSpec, on_status: Callable[[str], None] = lambda message: None):
    """A ReadyRun for the spec's model, or with routes a RoutedRun whose default it is."""
    run = _build_one(spec, on_status)
    return RoutedRun(spec, run) if spec.routes else run


def _build_one(spec: RunSpec, on_status: Callable[[str], None]) -> ReadyRun:
    """Load the model, resolve its settings against the user's, open the cache, and make the summarizer.
    The extractive method loads nothing; `--method auto` falls back to it when the model cannot be had
    (not cached, and offline or the Hub unreachable), saying so once: any other failure stays an error."""
    from summarize_cli.errors import ModelUnavailable
    from summarize_cli.model.engine import load_engine
    from summarize_cli.model.settings import check_bounds, output_limit, resolve
    from summarize_cli.run.pipeline import Summarizer

    model = spec.model
    if model.method == EXTRACTIVE:
        return _build_extractive(spec, [])
    try:
        engine = load_engine(
            model.model,
            backend=model.backend,
            device=model.device,
            dtype=model.dtype,
            compute_type=model.compute_type,
            offline=model.offline,
            threads=model.threads,
            on_status=on_status,
            one_document=model.one_document,
        )
    except ModelUnavailable as exc:
        if model.method != "auto":
            raise
        note = (
            f"{exc.reason}, so these summaries are extractive (each document's own most central sentences; "
            f"--method abstractive makes this an error). To get the model, {exc.how}"
        )
        run = _build_extractive(spec, [note])
        run.fallback = True
        return run
    overrides = spec.generation.overrides()
    settings = resolve(engine.source.path, overrides, spec.generation.length)
    limit = output_limit(engine.source.config, engine.tokenizer.model_max_length)
    settings = check_bounds(settings, overrides, limit, engine.source.name)
    # sampling searches one beam: a beam count the user never gave (the model's own) is nothing to warn of
    asked = settings
    if settings.do_sample and overrides.get("num_beams") is None:
        asked = replace(settings, num_beams=1)
    warnings = list(engine.backend.notes) + list(engine.backend.check(asked))
    summarizer = Summarizer(
        engine.backend,
        engine.tokenizer,
        settings,
        model.batch_size or engine.default_batch_size,
        spec.generation.long_mode,
        force=spec.generation.force,
        languages=spec.languages,
    )
    run = ReadyRun(spec, engine, settings, summarizer, warnings=warnings)
    if spec.use_cache:
        run.cache, run.stage = open_cache(run.run_info, spec.generation)
        warnings.extend(run.late_warnings())  # a cache unusable from the start is said up front
    return run


def _build_extractive(spec: RunSpec, warnings: list[str]) -> ReadyRun:
    """The extractive method as a ready run: its budget from --length and --max-length, no model."""
    from summarize_cli.model.extractive import ExtractiveEngine, ExtractiveSummarizer, settings_for

    settings = settings_for(spec.generation.length, spec.generation.max_length)
    summarizer = ExtractiveSummarizer(settings, spec.model.batch_size or 16, force=spec.generation.force)
    run = ReadyRun(spec, ExtractiveEngine(), settings, summarizer, warnings=list(warnings))
    if spec.use_cache:
        run.cache, run.stage = open_cache(run.run_info, spec.generation)
        run.warnings.extend(run.late_warnings())
    return run


def open_cache(run_info: dict, generation):
    """The result cache and the stage that consults it, for runs made as `run_info` and the generation
    spec's non-setting choices (--long, --force) say."""
    from summarize_cli.run.cache import CacheStage, ResultCache

    cache = ResultCache()
    return cache, CacheStage(cache, run_info, {"long": generation.long_mode, "force": generation.force})
