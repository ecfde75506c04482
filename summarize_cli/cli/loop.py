"""The `summarize` run loop: start a runner (local or Ray), stream its results into a sink, report."""

from __future__ import annotations

import sys
from dataclasses import replace

import typer

from summarize_cli import worker
from summarize_cli.cli.common import OutOfTheWay, progress_bar, say, silence_stdout, status
from summarize_cli.cli.early import stdin_is_terminal as _stdin_is_terminal
from summarize_cli.documents import IDLE, Document, Problem, Result
from summarize_cli.errors import EXIT_SIGPIPE, SummarizeError, Terminated, signal_exit
from summarize_cli.inputs.language import declare_languages
from summarize_cli.inputs.sources import STDIN, InputFile, is_dataset, listed_inputs, read_inputs
from summarize_cli.outputs.report import RunReport
from summarize_cli.outputs.sinks import FileSink
from summarize_cli.run.plan import plan
from summarize_cli.signals import cut_short, deferred
from summarize_cli.specs import InputSpec, Job, OutputSpec, RaySpec, RunSpec

# The runner outlives the run: the process ends with os._exit (app._exit_now), and freeing a loaded
# model when summarize_all returned (CTranslate2 joins its threads and unmaps the weights) cost every run
# about 25 ms after its last record.
_KEPT: list = []


def run_job(job: Job, show: bool, verbose: bool) -> None:
    """One `summarize`: empty the cache, or find the inputs, plan the outputs and summarise."""
    if job.clear_cache:
        from summarize_cli.run.cache import clear

        say([f"Cleared the result cache ({clear()})."])
        return
    reading = job.inputs
    if reading.files_from is not None:
        listed = listed_inputs(reading.files_from, reading.null, _stdin())
        reading = replace(reading, inputs=(*reading.inputs, *listed), files_from=None, null=False)
        if not reading.inputs:
            raise SummarizeError(f"--files-from {job.inputs.files_from} lists no inputs")
    if not reading.inputs:
        if _stdin_is_terminal():
            say(
                [
                    "Usage: summarize [OPTIONS] [INPUTS]...",
                    "Give files or folders to summarise, or pipe text in: cat article.txt | summarize",
                    "Try 'summarize --help' for help.",
                ]
            )
            raise typer.Exit(2)
        reading = replace(reading, inputs=(STDIN,))
    found = plan(reading, job.outputs)
    summarize_all(
        found.items,
        inputs=reading,
        output=job.outputs,
        run=job.run,
        ray=job.ray if job.ray.enabled else None,
        already_done=found.already_done,
        done_sources=found.done_sources,
        show=show,
        verbose=verbose,
    )


def expected_results(items: list, stdin_format: str) -> int | None:
    """One result per input, failures included; None when a dataset or stdin jsonl hides the count."""
    for item in items:
        if isinstance(item, InputFile) and (is_dataset(item) or (item.is_stdin and stdin_format == "jsonl")):
            return None
    return len(items)


def on_ray_data(items: list, output: OutputSpec) -> bool:
    """Finite inputs run on Ray Data (the workers read and write); stdin, which only the driver can read,
    and --combine, which gathers every summary on the driver, run on an actor pool fed by the driver."""
    if output.skip_existing and output.output_file is not None:
        return False  # a source can stand for a row of several inputs: counted in input order, on the driver
    return not output.combine and not any(isinstance(i, InputFile) and i.is_stdin for i in items)


def start_runner(run: RunSpec, ray: RaySpec | None, show: bool, planned: tuple | None = None, verbose: bool = False):
    """A ready local run, or a started Ray runner: both summarize inputs and say the same things.
    `planned` (inputs, output): the Ray run reads and writes on its workers, with Ray Data."""
    if ray is not None:
        if planned is not None:
            from summarize_cli.scale.dataset import DatasetRunner

            runner = DatasetRunner(run, ray, *planned)
        else:
            from summarize_cli.scale.ray_runner import RayRunner

            runner = RayRunner(run, ray)
        runner.divert_native_stderr()  # before any display: Ray's own notices go to its log from here on
        try:
            with status("Starting Ray ...", show, verbose) as spinner:
                runner.start(on_status=spinner.update)
        except BaseException:
            runner.close()
            raise
        return runner
    from summarize_cli.run.build import build_run

    what = "the extractive method" if run.model.method == "extractive" else run.model.model
    with status(f"Loading {what} ...", show, verbose) as spinner:
        return worker.call(lambda: build_run(run, on_status=spinner.update))


def summarize_all(
    items: list,
    *,
    inputs: InputSpec,
    output: OutputSpec,
    run: RunSpec,
    ray: RaySpec | None,
    already_done: int,
    show: bool,
    verbose: bool,
    done_sources: tuple[str, ...] = (),
) -> None:
    """Summarise every input and exit with the run's status."""
    expected = expected_results(items, inputs.stdin_format)
    destination = output.output_dir or output.output_file
    report = RunReport(
        expected,
        already_done,
        None if destination is None else str(destination),
        run.model.model,
        verbose,
        method=run.model.method,
    )
    readable = any(isinstance(i, InputFile) for i in items)
    if expected == 1 and ray is None:  # a one-off: one replica over the free cores (see ct2_backend)
        run = replace(run, model=replace(run.model, one_document=True))
    ray_data = ray is not None and readable and not output.extract and on_ray_data(items, output)
    planned = (inputs, output) if ray_data else None
    try:
        runner = start_runner(run, ray, show, planned, verbose) if readable and not output.extract else None
        _KEPT[:] = [runner]  # the last run's only: in-process callers (tests) run many
    except (KeyboardInterrupt, Terminated) as exc:  # during the model load: nothing done, all left
        lines, code = report.stopped(signal_exit(exc))
        say(lines)
        raise typer.Exit(code) from None
    sink = None
    # as `head` does, failures count; a dataset or jsonl stream is many records by nature
    several = not output.combine and (True if expected is None else len(items) > 1)
    try:
        documents = read_inputs(items, _stdin(), inputs) if planned is None else iter(())
        if output.skip_existing:
            documents = _without_existing(documents, output, report, done_sources)
        if output.extract:  # the text itself: no model at all
            report.noun = ("text", "texts")
            results, run_info = worker.iterate(as_extracted(d) for d in documents if d is not IDLE), {}
        elif runner is None:  # nothing readable: no model needed, the problems are all there is
            results, run_info = documents, {}
        else:
            say([f"Warning: {w}" for w in runner.warnings])
            if verbose:
                say(runner.describe())
            report.model_name, report.run_info = runner.model_name, runner.run_info
            if planned is not None:

                def done() -> None:
                    report.already_done += 1

                results, sink = runner.summarize_planned(items, on_done=done), runner.sink(several)
            else:
                results = runner.summarize(declare_languages(documents, inputs.language))
            if output.combine:
                results = combined(results, runner, report)
            results = worker.iterate(results)
            run_info = runner.run_info
        _stream(results, sink or _sink(output, run_info, several), report, show)
        if runner is not None:
            say([f"Warning: {w}" for w in runner.late_warnings()])
    finally:
        if runner is not None:
            runner.close()
    lines, code = report.finish()
    say(lines)
    if code:
        raise typer.Exit(code)


def combined(results, runner, report: RunReport):
    """--combine: problems pass on as they come; the summaries, in input order, are joined and summarised
    again as one document (map-reduce across documents, as within one), which is the only result. Its
    language is the inputs' when they agree (all of them, with --language), else the joined summaries'
    own, detected as any document's."""
    summaries: list[Result] = []
    for result in results:
        if isinstance(result, Problem):
            yield result
        else:
            summaries.append(result)
    if not summaries:
        return
    report.expected = None
    languages = {(r.document.language, r.document.routable) for r in summaries}
    confidence = min((r.document.language_confidence or 0.0) for r in summaries)
    language, routable = languages.pop() if len(languages) == 1 else (None, False)
    kept = {"language": language, "language_confidence": confidence if language else None, "routable": routable}
    if len(summaries) == 1:  # one document: its summary is the combined one, not summarised again
        only = summaries[0]
        yield replace(only, document=Document("combined", "", **kept), sources=[only.source])
        return
    joined = Document("combined", "\n\n".join(r.summary for r in summaries if r.summary), **kept)
    for result in runner.summarize([joined]):
        if isinstance(result, Result):
            result.sources = [r.source for r in summaries]
            result.warnings = [f"{r.source}: {w}" for r in summaries for w in r.warnings] + result.warnings
        yield result


def as_extracted(item: Document | Problem) -> Result | Problem:
    """--extract: a document's text stands where its summary would."""
    if isinstance(item, Problem):
        return item
    return Result(document=item, summary=item.text, input_tokens=0, chunks=0, seconds=0.0, warnings=item.warnings)


def _without_existing(documents, output: OutputSpec, report: RunReport, done):
    """--skip-existing for what is known only once read (dataset rows, stdin jsonl lines): a summary
    file under -o already there, or a record of that source in the --output file. Two inputs' rows may
    share a source (the same ids in two datasets): each record there stands for one row, in input order."""
    from collections import Counter

    from summarize_cli.outputs.sinks import output_path

    left = Counter(done)
    for document in documents:
        if isinstance(document, Document):
            if output.output_dir is None:
                written = left[document.source] > 0
                left[document.source] -= written
            else:
                written = output_path(output.output_dir, document.relpath, output.fmt, output.extract).exists()
            if written:
                report.already_done += 1
                continue
        yield document


def _sink(output: OutputSpec, run_info: dict, several: bool | None):
    from summarize_cli.outputs.sinks import DatasetSink, DirectorySink, StdoutSink

    if output.output_file is not None:
        return DatasetSink(output.output_file, run_info, extract=output.extract, keep=output.skip_existing)
    if output.output_dir is not None:
        return DirectorySink(output.output_dir, output.fmt, run_info, extract=output.extract, bullets=output.bullets)
    return StdoutSink(sys.stdout, output.fmt, run_info, several=several, extract=output.extract, bullets=output.bullets)


def _stream(results, sink, report: RunReport, show: bool) -> None:
    """Every result into the sink and every problem into the report, under the progress display.

    The sink is closed only when the run completes; a run that stops early abandons it, so an --output
    file it would have replaced is left as it was.
    """
    from summarize_cli.outputs.sinks import DuplicateOutput

    progress = progress_bar(show)
    aside = OutOfTheWay(progress, sink, show)  # summaries and the display may share the screen
    try:
        with progress:
            try:
                task = progress.add_task("Summarising", total=report.expected)
                for out in results:
                    if isinstance(out, Problem):
                        say(report.problem(out))
                    else:
                        try:
                            with deferred():  # written and counted as one: a signal waits for both
                                with aside.writing():
                                    sink.write(out)
                                lines = report.result(out)
                        except DuplicateOutput as exc:
                            say(report.problem(Problem(out.source, str(exc))))
                        else:
                            say(lines)
                    progress.advance(task)
            finally:
                aside.close()  # before the display's last erase: a pending return would outlive it
        sink.close()
    except BrokenPipeError:
        _abandon(sink)
        silence_stdout()
        raise typer.Exit(EXIT_SIGPIPE) from None
    except (KeyboardInterrupt, Terminated) as exc:
        cut = cut_short() and not isinstance(sink, FileSink)
        if cut:  # stdout's reader stopped reading: what is still buffered for it would block the exit
            silence_stdout()
        _abandon(sink)
        lines, code = report.stopped(signal_exit(exc))
        if cut:
            lines.append("The record being written to stdout was not written whole: its reader had stopped reading.")
        say(lines)
        raise typer.Exit(code) from None
    except BaseException:
        _abandon(sink)
        raise


def _abandon(sink) -> None:
    try:
        partial = sink.abandon()
    except (OSError, BrokenPipeError):
        return
    if partial is not None:
        from summarize_cli.outputs.report import count

        made = count(sink.written, "summary", "summaries")
        say([f"{sink.path} was left as it was; the {made} made {'is' if sink.written == 1 else 'are'} in {partial}."])


def _stdin():
    return sys.stdin.buffer if sys.stdin is not None and hasattr(sys.stdin, "buffer") else None
