"""Finite inputs on a Ray cluster, with Ray Data end to end: the driver plans, the workers read and write.

The driver only lists the inputs it found (paths and URLs, never their text) as a dataset. Read tasks turn
each input into documents with the local run's own reader and language detector (so names, messages, size
limits and per-input failures are the same), an actor pool of ready runs (one `build_run` each) summarises
them, and writes them: `-o DIR` files and `--output` part files are written by the workers, atomically and
under names that depend only on the input, so a batch that Ray runs again (its worker or node died) replaces
its own output and never doubles it. Ray Data restarts dead actors and retries their tasks. The driver
receives one small row per input, in input order, for the report and the progress display; only a run that
prints to the driver's own stdout brings summaries back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from summarize_cli.documents import IDLE, Document, Problem, Result
from summarize_cli.errors import SummarizeError
from summarize_cli.outputs.sinks import remove_folder
from summarize_cli.scale.cluster import Cluster, quiet_data
from summarize_cli.scale.ray_runner import SummarizeWorker
from summarize_cli.specs import InputSpec, OutputSpec, RaySpec, RunSpec

READ_BATCH = 64  # documents per block a read task hands on
# most documents per actor call: each call costs the driver's scheduler about a millisecond, so a call
# carries many of the run's own batches (the actor batches them by length inside); fewer when the plan is
# small, so that every actor gets two calls; a retried call redoes this many
CALL_ROWS = 64


@dataclass(frozen=True)
class AlreadyDone:
    """--skip-existing on a worker: this document's output is already written."""

    source: str


def parts_folder(output_file: Path) -> Path:
    """Where the workers put --output's part files: beside the file, so on the same (shared) storage."""
    return output_file.with_name(f".{output_file.name}.parts")


def _column(values: list):
    import numpy as np

    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column


def read_units(batch: dict, inputs: InputSpec, output: OutputSpec) -> Iterator[dict]:
    """A read task: each planned input into its documents (a dataset file into its rows), each keyed by the
    input's place and the document's place within it, so the keys sort in input order."""
    from summarize_cli.inputs.language import declare_languages
    from summarize_cli.inputs.sources import read_inputs
    from summarize_cli.outputs.sinks import duplicate_message, output_path

    keys: list[str] = []
    items: list = []
    for index, item in zip(batch["index"], batch["item"], strict=True):
        claimed: dict[Path, str] = {}
        documents = declare_languages(read_inputs([item], None, inputs), inputs.language)
        for number, document in enumerate(d for d in documents if d is not IDLE):
            if output.output_dir is not None and isinstance(document, Document):
                path = output_path(output.output_dir, document.relpath or Path("stdin"), output.fmt, output.extract)
                if output.skip_existing and path.exists():
                    document = AlreadyDone(document.source)
                elif path in claimed:
                    document = Problem(document.source, duplicate_message(claimed[path], path))
                else:
                    claimed[path] = document.source
            keys.append(f"{int(index):010d}.{number:010d}")
            items.append(document)
            if len(items) >= READ_BATCH:
                yield {"key": _column(keys), "item": _column(items)}
                keys, items = [], []
    if items:
        yield {"key": _column(keys), "item": _column(items)}


class SummarizeBatches:
    """An actor of the pool: one ready run, built once; each batch summarised, written where the output
    goes, and answered with one small row per input (the summary itself only for the driver's stdout)."""

    def __init__(self, spec: RunSpec, output: OutputSpec):
        self.worker = SummarizeWorker(spec)
        if self.worker.run is None:
            message, _code = self.worker.error
            raise SummarizeError(message)
        self.output = output
        self.said: set[str] = set()

    def __call__(self, batch: dict) -> dict:
        from summarize_cli.outputs.sinks import output_path, record_of, write_part, write_result_file

        run, output = self.worker.run, self.output
        keys, items = list(batch["key"]), list(batch["item"])
        documents = [i for i in items if not isinstance(i, AlreadyDone)]
        done = iter(run.summarize(documents))
        results = [item if isinstance(item, AlreadyDone) else next(done) for item in items]
        records = []
        for result in results:
            if not isinstance(result, Result):
                continue
            if result.run_info is None:
                result.run_info = run.run_info
            if output.output_dir is not None:
                relpath = result.document.relpath or Path("stdin")
                path = output_path(output.output_dir, relpath, output.fmt, output.extract)
                write_result_file(path, result, output.fmt, run.run_info, output.extract, output.bullets, stable=True)
            elif output.output_file is not None:
                records.append(record_of(result, run.run_info, output.extract))
        if records:
            write_part(parts_folder(output.output_file), keys[0], records, output.output_file.suffix.lower())
        if output.output_dir is not None or output.output_file is not None:
            results = [_without_text(r) for r in results]  # the driver reports; it needs no summaries
        late = [w for w in run.late_warnings() if w not in self.said]
        self.said.update(late)
        return {"key": _column(keys), "item": _column(results), "late": _column([late] + [[]] * (len(keys) - 1))}


def _absolute(item):
    path = getattr(item, "path", None)
    return item if path is None or path.is_absolute() else replace(item, path=path.absolute())


def _without_text(result):
    if not isinstance(result, Result):
        return result
    document = replace(result.document, text="")
    return replace(result, document=document, summary="", sections=[])


class DatasetRunner:
    """Summarise planned inputs on Ray Data; results reach the driver in input order."""

    def __init__(self, spec: RunSpec, ray_spec: RaySpec, inputs: InputSpec, output: OutputSpec):
        self.cluster = Cluster(ray_spec.address)
        self.ray = self.cluster.ray
        self.threads = spec.model.threads or 1  # per actor: one actor per core is the default layout
        self.gpu = spec.model.device.startswith("cuda")
        # each actor keeps the result cache of its own node (its cache folder), never one on shared storage
        self.spec = replace(spec, model=replace(spec.model, threads=self.threads))
        self.ray_spec = ray_spec
        self.inputs = inputs
        # the workers' current folder is not the driver's: every path they read or write is absolute
        self.output = replace(
            output,
            output_dir=None if output.output_dir is None else output.output_dir.absolute(),
            output_file=None if output.output_file is None else output.output_file.absolute(),
        )
        self.warnings: list[str] = []
        self.model_name = spec.model.model
        self.run_info: dict = {}
        self.batch_size = 1
        self.size = 1
        self._described: list[str] = []
        self._late: list[str] = []

    def start(self, on_status=lambda message: None) -> None:
        """Join or start Ray, then build the run once on a worker: its warnings, description and record
        fields are the driver's to tell, and a model that cannot load fails here in one line."""
        self.cluster.connect()
        self.size = self.pool_size()
        on_status(f"Starting {self.size} Ray worker(s), each loading {self.model_name} ...")
        probe = self.ray.remote(SummarizeWorker).options(
            num_cpus=self.threads, num_gpus=1 if self.gpu else 0, **self.remote_args()
        )
        actor = probe.remote(self.spec)
        try:
            info = self.cluster.get(actor.ready.remote())
        finally:
            with contextlib.suppress(Exception):
                self.ray.kill(actor, no_restart=True)
        if info["error"] is not None:
            message, code = info["error"]
            error = SummarizeError(message)
            error.exit_code = code
            raise error
        self.warnings = list(info["warnings"])
        self._described = list(info["describe"]) + [
            f"Ray Data: {self.size} worker(s), each loading {info['model_name']}; cluster resources "
            f"{self.ray.cluster_resources()}"
        ]
        self.model_name, self.batch_size, self.run_info = info["model_name"], info["batch_size"], info["run_info"]

    def pool_size(self) -> int:
        return self.cluster.pool_size(self.ray_spec.workers, self.threads, self.gpu)

    def describe(self) -> list[str]:
        return self._described

    def dataset(self, items: list):
        """The plan as a Ray Data program: inputs -> read tasks -> the actor pool."""
        import ray.data

        quiet_data()
        remote_args = self.remote_args()
        units = ray.data.from_items([{"index": i, "item": _absolute(item)} for i, item in enumerate(items)])
        documents = units.map_batches(
            read_units,
            batch_size=1,
            fn_kwargs={"inputs": self.inputs, "output": self.output},
            num_cpus=0,  # light next to the model; the CPUs are the actors'
            compute=ray.data.TaskPoolStrategy(size=max(1, self.size // 2)),  # CPU-free, so bounded here
            **remote_args,
        )
        return documents.map_batches(
            SummarizeBatches,
            batch_size=self.call_rows(items),
            fn_constructor_kwargs={"spec": self.spec, "output": self.output},
            compute=ray.data.ActorPoolStrategy(size=self.size),
            num_cpus=self.threads,
            num_gpus=1 if self.gpu else 0,
            **remote_args,
        )

    def call_rows(self, items: list) -> int:
        """Documents per actor call: CALL_ROWS, or fewer when the plan's size (its files, and its Parquet
        datasets' row counts from their footers) would leave an actor idle."""
        from summarize_cli.inputs.sources import InputFile, is_dataset
        from summarize_cli.storage import open_read

        known = 0
        for item in items:
            if not isinstance(item, InputFile) or not is_dataset(item):
                known += 1
                continue
            if item.path.suffix.lower() != ".parquet":
                return max(self.batch_size, CALL_ROWS)  # a JSONL dataset's size is unknown until read
            try:
                import pyarrow.parquet as pq

                with open_read(item.path) as handle:
                    known += pq.read_metadata(handle).num_rows
            except Exception:  # noqa: BLE001 - an unreadable file fails in its read task, with its reason
                known += 1
        return max(self.batch_size, min(CALL_ROWS, -(-known // (2 * self.size))))

    def remote_args(self) -> dict:
        """Object storage's endpoint and credentials, as the driver has them, for every worker."""
        from summarize_cli.storage import credential_environment

        variables = credential_environment()
        return {"runtime_env": {"env_vars": variables}} if variables else {}

    def summarize_planned(self, items: list, on_done=lambda: None) -> Iterator[Result | Problem]:
        """Every input's result in input order; a document --skip-existing found done calls `on_done`
        instead."""
        if self.output.output_file is not None:
            remove_folder(parts_folder(self.output.output_file))  # an earlier run's
        try:
            for row in self.dataset(items).iter_rows():
                self._late.extend(w for w in row["late"] if w not in self._late)
                item = row["item"]
                if isinstance(item, AlreadyDone):
                    on_done()
                    continue
                yield item
        except self.ray.exceptions.RayError as exc:
            raise self.cluster.failed(exc) from None

    def summarize(self, documents: Iterable[Document | Problem]):  # pragma: no cover - planned inputs only
        raise NotImplementedError("DatasetRunner reads its own inputs: use summarize_planned")

    def sink(self, several: bool):
        """Where the driver puts what arrives: its stdout, or (the workers having written) only a count."""
        from summarize_cli.outputs.sinks import PartsSink, WrittenSink

        if self.output.output_file is not None:
            return PartsSink(self.output.output_file, parts_folder(self.output.output_file))
        if self.output.output_dir is not None:
            return WrittenSink(self.output.output_dir)
        return None

    def late_warnings(self) -> list[str]:
        said, self._late = self._late, []
        return said

    def close(self) -> None:
        self.cluster.close()

    def divert_native_stderr(self) -> None:
        self.cluster.divert_native_stderr()
