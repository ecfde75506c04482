"""The CLI's run loop: load the engine under a spinner, stream results to a sink, report on stderr."""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from summarize_cli.documents import Problem, Result
from summarize_cli.sources import InputFile, is_dataset

UNKNOWN_WARNING_SHARE = 0.1  # above this share of unknown-token text, the model cannot read the language
EXIT_FAILED, EXIT_SIGPIPE, EXIT_SIGINT, EXIT_SIGTERM = 1, 141, 130, 143


class Terminated(Exception):
    """SIGTERM arrived: stop like Ctrl-C, with exit status 143."""


@dataclass
class Run:
    """One invocation's inputs and output choices; execute() does the work and exits with the status."""

    items: list
    stdin_format: str
    max_input_bytes: int
    fmt: str
    output_dir: Path | None
    show_progress: bool
    verbose: bool
    console: Console
    use_cache: bool = True
    input_format: str = "auto"
    output_file: Path | None = None
    columns: tuple[str, str] = ("text", "id")
    already_done: int = 0
    done: int = 0
    failures: list[Problem] = field(default_factory=list)
    skips: list[Problem] = field(default_factory=list)
    unreadable: list[Result] = field(default_factory=list)
    model_name: str = ""

    @property
    def total(self) -> int | None:
        """Results expected (one per input, failures included), or None when jsonl or datasets hide it."""
        if self.stdin_format == "jsonl" and any(isinstance(i, InputFile) and i.path is None for i in self.items):
            return None
        if any(isinstance(i, InputFile) and is_dataset(i) for i in self.items):
            return None
        return len(self.items)

    def execute(self, *, engine_args: dict, batch_size, long_mode, overrides, ray: dict | None = None) -> None:
        """Summarise every input, locally or (with `ray`) on a Ray cluster, and exit with the status."""
        stdin = sys.stdin.buffer if sys.stdin is not None and hasattr(sys.stdin, "buffer") else None
        if not any(isinstance(item, InputFile) for item in self.items):  # nothing readable: no model needed
            self._stream(iter(self.items), {})
            return
        if ray is not None:
            self._execute_on_ray(engine_args, batch_size, long_mode, overrides, ray, stdin)
            return
        from summarize_cli.engine import load_engine
        from summarize_cli.settings import resolve
        from summarize_cli.sources import read_documents

        model = engine_args["model"]
        with (
            self.console.status(f"Loading {model} ...", spinner="dots") if self.show_progress else NoStatus() as status
        ):
            engine = load_engine(**engine_args, on_status=status.update)
        settings = resolve(engine.source.path, overrides)
        self.model_name = engine.source.name
        run_info = engine.run_info(settings)
        for note in engine.backend.notes + engine.backend.check(settings):
            self.console.print(f"Warning: {note}", markup=False)
        if self.verbose:
            self._describe(engine, settings, batch_size or engine.default_batch_size)
        cache, warned = None, False
        if self.use_cache:
            from summarize_cli.cache import ResultCache

            cache = ResultCache()
            if cache.warning:
                warned = True
                self.console.print(f"Warning: {cache.warning}", markup=False)
        summarizer = engine.summarizer(settings, batch_size, long_mode, cache)
        documents = read_documents(
            self.items, stdin, self.stdin_format, self.max_input_bytes, self.input_format, *self.columns
        )
        try:
            self._stream(summarizer.summarize(documents), run_info)
        finally:
            if cache is not None:
                if cache.warning and not warned:  # the cache failed during the run
                    self.console.print(f"Warning: {cache.warning}", markup=False)
                cache.close()

    def _execute_on_ray(self, engine_args, batch_size, long_mode, overrides, ray: dict, stdin) -> None:
        from summarize_cli.ray_runner import RaySummarizer

        runner = RaySummarizer(
            ray.get("address"),
            ray.get("workers"),
            engine_args,
            overrides,
            batch_size,
            long_mode,
            self.use_cache,
            self.max_input_bytes,
            self.input_format,
            *self.columns,
        )
        self.model_name = engine_args["model"]
        try:
            with self.console.status("Starting Ray ...", spinner="dots") if self.show_progress else NoStatus():
                runner.start()
            if self.verbose:
                self.console.print(
                    f"Ray: up to {runner.pool_size()} worker(s), each loading {self.model_name}; "
                    f"cluster resources {runner.ray.cluster_resources()}",
                    markup=False,
                )
            self._stream(runner.summarize(self.items, stdin, self.stdin_format), {})
        finally:
            runner.shutdown()

    def _stream(self, results, run_info: dict) -> None:
        from summarize_cli.sinks import DatasetSink, DirectorySink, StdoutSink

        if self.output_file is not None:
            sink = DatasetSink(self.output_file, run_info)
        elif self.output_dir is not None:
            sink = DirectorySink(self.output_dir, self.fmt, run_info)
        else:
            several = None if self.total is None else len(self.items) > 1  # as `head` does, failures count
            sink = StdoutSink(sys.stdout, self.fmt, run_info, several=several)
        progress = progress_bar(self.console, self.show_progress)
        try:
            with progress:
                task = progress.add_task("Summarising", total=self.total)
                for out in results:
                    if isinstance(out, Problem):
                        self._problem(out)
                    else:
                        self._write(sink, out)
                    progress.advance(task)
            sink.close()
        except BrokenPipeError:
            _silence_stdout()
            raise typer.Exit(EXIT_SIGPIPE) from None
        except KeyboardInterrupt:
            self._stopped("Interrupted")
            raise typer.Exit(EXIT_SIGINT) from None
        except Terminated:
            self._stopped("Terminated")
            raise typer.Exit(EXIT_SIGTERM) from None
        finally:
            _close_quietly(sink)
        self._report()

    def _write(self, sink, result: Result) -> None:
        from summarize_cli.sinks import DuplicateOutput

        try:
            sink.write(result)
        except DuplicateOutput as exc:
            self._problem(Problem(result.source, str(exc)))
            return
        self.done += 1
        if result.unknown_share > UNKNOWN_WARNING_SHARE:
            self.unreadable.append(result)
        for warning in result.warnings:
            self.console.print(f"Warning: {warning}", markup=False)

    def _problem(self, problem: Problem) -> None:
        (self.skips if problem.skipped else self.failures).append(problem)
        word = "Skipped" if problem.skipped else "Failed"
        self.console.print(f"{word} {problem.source}: {problem.reason}", markup=False)

    def _stopped(self, how: str) -> None:
        total = self.total
        left = "" if total is None else f", {max(total - self.done - len(self.failures) - len(self.skips), 0)} left"
        self.console.print(f"{how}: {self.done} summarised{left}.", markup=False)

    def _report(self) -> None:
        if self.unreadable:
            names = ", ".join(f"{r.source} ({r.unknown_share:.0%})" for r in self.unreadable[:5])
            more = f" and {len(self.unreadable) - 5} more" if len(self.unreadable) > 5 else ""
            self.console.print(
                f"Warning: {len(self.unreadable)} document(s) are mostly text that {self.model_name} cannot read "
                f"(share of unknown-token text: {names}{more}); their summaries will be poor. For Chinese and "
                "other languages use a multilingual model, e.g. -m csebuetnlp/mT5_multilingual_XLSum.",
                markup=False,
            )
        if self.output_dir is not None or self.output_file is not None:
            self.console.print(f"Wrote {self.done} summaries to {self.output_dir or self.output_file}.", markup=False)
        if self.already_done:
            self.console.print(
                f"Skipped {self.already_done} input(s) whose summaries exist (--skip-existing).", markup=False
            )
        if self.skips and (self.failures or self.done):
            self.console.print(f"{len(self.skips)} input(s) skipped.", markup=False)
        if self.failures:
            self.console.print(f"{len(self.failures)} input(s) failed:", markup=False)
            for problem in self.failures:
                self.console.print(f"  {problem.source}: {problem.reason}", markup=False)
            raise typer.Exit(EXIT_FAILED)
        if self.done == 0 and not self.already_done:
            self.console.print("Nothing was summarised.", markup=False)
            raise typer.Exit(EXIT_FAILED)

    def _describe(self, engine, settings, batch_size: int) -> None:
        info = engine.info()
        self.console.print(
            f"model {info['model']} ({engine.source.path}), backend {info['backend']}, device {info['device']}, "
            f"precision {info['precision']}, batch size {batch_size}, input limit "
            f"{engine.tokenizer.model_max_length} tokens",
            markup=False,
        )
        self.console.print("settings " + ", ".join(f"{k}={v!r}" for k, v in settings.as_dict().items()), markup=False)


class _RateColumn(ProgressColumn):
    """Documents per second."""

    def render(self, task):
        from rich.text import Text

        elapsed = task.finished_time if task.finished else task.elapsed
        if not elapsed or not task.completed:
            return Text("")
        return Text(f"{task.completed / elapsed:.2f} docs/s", style="progress.data.speed")


def progress_bar(console: Console, show: bool) -> Progress:
    """Documents done/total, rate and ETA on stderr; hidden when `show` is false."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=not show,
        transient=True,
    )


class NoStatus:
    """Stands in for a Rich status spinner when progress is hidden."""

    def __enter__(self):
        return self

    def update(self, *args, **kwargs) -> None:
        pass

    def __exit__(self, *exc):
        return False


def _close_quietly(sink) -> None:
    with contextlib.suppress(OSError):
        sink.close()


def _silence_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so the interpreter's final flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
