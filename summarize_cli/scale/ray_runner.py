"""A live stream (stdin) on Ray: a pool of actors, each holding one ready run built from the same spec.

Only the driver can read its own stdin, so here the driver reads and decodes with the local run's reader,
streams documents to the actors a batch at a time, and gets results back in input order. Finite inputs
(files, folders, datasets) run on Ray Data instead (scale/dataset.py), where the workers read and write.

An actor that dies (its process killed, its node lost) is restarted by Ray; the batch it held runs again
on another actor, so no record is lost or doubled.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import replace

from summarize_cli.documents import Document, Problem, Result
from summarize_cli.errors import SummarizeError
from summarize_cli.outputs.records import from_row, to_row
from summarize_cli.run.pipeline import windows
from summarize_cli.scale.cluster import Cluster
from summarize_cli.specs import RaySpec, RunSpec

CALLS_IN_FLIGHT = 2  # per actor: one running, one queued, so no actor waits for the driver
RESUBMITS = 8  # times a batch is sent again after its actor died, before the run gives up


class SummarizeWorker:
    """A Ray actor: builds the run once, then summarises batches of documents.

    A failure to build is kept, not raised, so the driver can give the user the same one-line error (and
    exit code) as the local run, rather than Ray's traceback.
    """

    def __init__(self, spec: RunSpec):
        from summarize_cli.quiet import quiet_environment

        quiet_environment()
        from summarize_cli.run.build import build_run

        self.run = None
        self.error: tuple[str, int] | None = None
        try:
            self.run = build_run(spec)
        except SummarizeError as exc:
            self.error = (str(exc), exc.exit_code)

    def ready(self) -> dict:
        """What the driver tells the user before any result: the same as a local run's."""
        if self.run is None:
            return {"error": self.error}
        return {
            "error": None,
            "warnings": self.run.warnings,
            "describe": self.run.describe(),
            "model_name": self.run.model_name,
            "batch_size": self.run.batch_size,
            "run_info": self.run.run_info,
        }

    def summarize(self, items: list[Document | Problem]) -> tuple[list[dict], list[str]]:
        rows = []
        for item in self.run.summarize(items):
            if isinstance(item, Result) and item.run_info is None:
                item.run_info = self.run.run_info
            rows.append(to_row(item))
        return rows, self.run.late_warnings()

    def close(self) -> None:
        if self.run is not None:
            self.run.close()


class RayRunner:
    """Summarise inputs on Ray; results come back to the driver in input order, as Results and Problems."""

    def __init__(self, spec: RunSpec, ray_spec: RaySpec):
        self.cluster = Cluster(ray_spec.address)
        self.ray = self.cluster.ray
        self.threads = spec.model.threads or 1  # per actor: one actor per core is the default layout
        self.generation = spec.generation
        # the driver keeps the result cache (below), so SQLite never sits on a cluster's shared storage;
        # with routes, each actor's models are its own, so each keeps its cache (in its node's cache folder)
        self.driver_caches = spec.use_cache and not spec.routes
        self.spec = replace(
            spec, model=replace(spec.model, threads=self.threads), use_cache=spec.use_cache and bool(spec.routes)
        )
        self.cache = self.stage = None
        self.ray_spec = ray_spec
        self.gpu = spec.model.device.startswith("cuda")
        self.actors: list = []
        self.warnings: list[str] = []
        self.model_name = spec.model.model
        self.run_info: dict = {}
        self.batch_size = 1
        self._described: list[str] = []
        self._late: list[str] = []
        self._cache_said: set[str] = set()

    def start(self, on_status=lambda message: None) -> None:
        """Join the cluster (auto, ray://host:port) or start a local Ray, then start the actors."""
        ray = self.ray
        self.cluster.connect()
        size = self.pool_size()
        on_status(f"Starting {size} Ray worker(s), each loading {self.model_name} ...")
        worker = ray.remote(SummarizeWorker).options(
            num_cpus=self.threads, num_gpus=1 if self.gpu else 0, max_restarts=-1, max_task_retries=0
        )
        self.actors = [worker.remote(self.spec) for _ in range(size)]
        infos = self._get([actor.ready.remote() for actor in self.actors])
        for info in infos:
            if info["error"] is not None:
                message, code = info["error"]
                error = SummarizeError(message)
                error.exit_code = code
                raise error
        first = infos[0]
        self.warnings = list(first["warnings"])
        self._described = list(first["describe"]) + [
            f"Ray: {size} worker(s), each loading {first['model_name']}; cluster resources "
            f"{self.ray.cluster_resources()}"
        ]
        self.model_name, self.batch_size, self.run_info = first["model_name"], first["batch_size"], first["run_info"]
        if self.driver_caches:
            from summarize_cli.run.build import open_cache

            self.cache, self.stage = open_cache(self.run_info, self.generation)
            self.warnings.extend(self.late_warnings())

    def pool_size(self) -> int:
        return self.cluster.pool_size(self.ray_spec.workers, self.threads, self.gpu)

    def describe(self) -> list[str]:
        return self._described

    def summarize(self, documents: Iterable[Document | Problem]) -> Iterator[Result | Problem]:
        """Every document's result, in order; cached results are found and kept on the driver."""
        if self.stage is None:
            return self._on_actors(documents)
        return self.stage.around(self._on_actors, documents)

    def _on_actors(self, documents: Iterable) -> Iterator[Result | Problem]:
        """With at most CALLS_IN_FLIGHT batches queued per actor."""
        in_flight: deque = deque()
        for turn, (batch, paused) in enumerate(windows(documents, self.batch_size)):
            if batch:
                in_flight.append(self._send(batch, turn))
            while in_flight and (paused or len(in_flight) >= CALLS_IN_FLIGHT * len(self.actors)):
                yield from self._collect(*in_flight.popleft())  # a paused feed: everything sent comes back
        while in_flight:
            yield from self._collect(*in_flight.popleft())

    def _send(self, batch: list, turn: int) -> tuple:
        return self.actors[turn % len(self.actors)].summarize.remote(batch), batch, turn

    def _collect(self, ref, batch: list, turn: int) -> Iterator[Result | Problem]:
        """One batch's results; a batch whose actor died is sent to the next actor (the dead one restarts)."""
        for attempt in range(1, RESUBMITS + 1):
            try:
                rows, late = self.ray.get(ref)
                break
            except (self.ray.exceptions.RayActorError, self.ray.exceptions.ActorUnavailableError) as exc:
                if attempt == RESUBMITS:
                    raise self.cluster.failed(exc) from None
                turn += 1
                ref, batch, turn = self._send(batch, turn)
            except self.ray.exceptions.RayError as exc:
                raise self.cluster.failed(exc) from None
        self._late.extend(w for w in late if w not in self._late)
        for row in rows:
            yield from_row(row)

    def _get(self, refs):
        return self.cluster.get(refs)

    def late_warnings(self) -> list[str]:
        """Warnings that arose during the run: an actor's, or the driver's cache failing."""
        said, self._late = self._late, []
        if self.cache is not None and self.cache.warning and self.cache.warning not in self._cache_said:
            self._cache_said.add(self.cache.warning)
            said.append(self.cache.warning)
        return said

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()
        for actor in self.actors:
            with contextlib.suppress(Exception):
                self.ray.kill(actor, no_restart=True)
        self.actors = []
        self.cluster.close()

    def divert_native_stderr(self) -> None:
        self.cluster.divert_native_stderr()

    @property
    def log_path(self):
        return self.cluster.log_path
