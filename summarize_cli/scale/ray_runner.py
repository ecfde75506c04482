"""Run the same summarizer on Ray: a pool of actors, each holding one ready run built from the same spec.

The driver reads and decodes the inputs with the local run's reader (cli_run) (so names, messages, size limits and
per-input failures are the same), streams them to the actors a batch at a time, and gets results back in
input order as rows of the one record schema.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import replace

from summarize_cli.documents import Document, Problem, Result
from summarize_cli.errors import SettingsError, SummarizeError
from summarize_cli.outputs.records import from_row, to_row
from summarize_cli.run.pipeline import windows
from summarize_cli.specs import RaySpec, RunSpec

RAY_EXTRA = "pip install 'summarize-cli[ray]'"
CALLS_IN_FLIGHT = 2  # per actor: one running, one queued, so no actor waits for the driver


def require_ray():
    try:
        import ray
    except ImportError:
        raise SettingsError(f"--ray needs Ray: {RAY_EXTRA}") from None
    return ray


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
        self.ray = require_ray()
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
        self._started_here = False
        self._saved_fd: int | None = None

    def start(self, on_status=lambda message: None) -> None:
        """Join the cluster (auto, ray://host:port) or start a local Ray, then start the actors."""
        ray = self.ray
        if not ray.is_initialized():
            os.environ.setdefault("RAY_DEDUP_LOGS", "1")
            warnings.filterwarnings("ignore", module=r"ray(\.|$)")
            for name in ("ray", "ray.data", "ray.train", "ray.tune"):
                logging.getLogger(name).setLevel(logging.CRITICAL)  # failures reach the user as one Error line
            address = None if self.ray_spec.address in (None, "", "local") else self.ray_spec.address
            _check_reachable(address)
            try:
                ray.init(
                    address=address,
                    logging_level=logging.CRITICAL,
                    log_to_driver=False,
                    include_dashboard=False,
                    configure_logging=True,
                )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise SummarizeError(f"cannot start or join Ray at {address or 'a local instance'}: {exc}") from None
            self._started_here = address is None
            from summarize_cli import signals

            signals.install()  # ray.init takes SIGTERM for itself (exit 15): the run's own handling comes back
        size = self.pool_size()
        on_status(f"Starting {size} Ray worker(s), each loading {self.model_name} ...")
        worker = ray.remote(SummarizeWorker).options(num_cpus=self.threads, num_gpus=1 if self.gpu else 0)
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
        """--workers, or one actor per CPU (per GPU with --device cuda), never more than the cluster holds."""
        resources = self.ray.cluster_resources()
        fits = int(resources.get("GPU", 0)) if self.gpu else int(resources.get("CPU", 1) // self.threads)
        return max(1, min(self.ray_spec.workers or fits, max(fits, 1)))

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
                in_flight.append(self.actors[turn % len(self.actors)].summarize.remote(batch))
            while in_flight and (paused or len(in_flight) >= CALLS_IN_FLIGHT * len(self.actors)):
                yield from self._collect(in_flight.popleft())  # a paused feed: everything sent comes back
        while in_flight:
            yield from self._collect(in_flight.popleft())

    def _collect(self, ref) -> Iterator[Result | Problem]:
        rows, late = self._get(ref)
        self._late.extend(w for w in late if w not in self._late)
        for row in rows:
            yield from_row(row)

    def _get(self, refs):
        try:
            return self.ray.get(refs)
        except self.ray.exceptions.RayError as exc:
            message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            log = getattr(self, "log_path", None)
            raise SummarizeError(f"the Ray job failed: {message}" + (f" (Ray's log: {log})" if log else "")) from None

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
                self.ray.kill(actor)
        self.actors = []
        if self._started_here and self.ray.is_initialized():
            self.ray.shutdown()
        self._restore_stderr()

    def divert_native_stderr(self) -> None:
        """Ray's C++ core and its workers write notices straight to file descriptor 2: send those to a log
        file, and give Python's sys.stderr (progress, warnings, errors) a copy of the real stderr."""
        from summarize_cli.dirs import cache_dir

        try:
            self.log_path = cache_dir() / "ray.log"
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            sys.stderr.flush()
            if sys.stderr.fileno() != 2:  # stderr is not the process's own (a test runner captures it)
                raise ValueError("stderr is redirected")
            self._saved_fd = os.dup(2)
            log_fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(log_fd, 2)
            os.close(log_fd)
            self._saved_stderr = sys.stderr
            sys.stderr = open(  # noqa: SIM115 - lives until _restore_stderr closes it
                os.dup(self._saved_fd),
                "w",
                buffering=1,
                encoding=getattr(sys.stderr, "encoding", None) or "utf-8",
                errors="replace",
                closefd=True,
            )
        except (OSError, ValueError, AttributeError):  # no real stderr (tests): nothing to divert
            self._saved_fd = None
        try:  # Ray's driver prints task errors ("(raylet) ... will be retried") on stdout: log them instead
            import ray._private.worker as ray_worker

            ray_worker.print_to_stdstream = self._log_worker_lines
        except (ImportError, AttributeError):
            pass

    def _log_worker_lines(self, data: dict, ignore_prefix: bool = False) -> None:
        with contextlib.suppress(OSError, AttributeError, TypeError), open(self.log_path, "a") as log:
            log.write("\n".join(str(line) for line in data.get("lines", [])) + "\n")

    def _restore_stderr(self) -> None:
        if self._saved_fd is None:
            return
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
            sys.stderr.close()
        sys.stderr = self._saved_stderr
        os.dup2(self._saved_fd, 2)
        os.close(self._saved_fd)
        self._saved_fd = None


def _check_reachable(address: str | None) -> None:
    """A HOST:PORT (or ray://HOST:PORT) that nothing answers on fails in seconds, not after Ray's minutes
    of retries."""
    import re
    import socket

    match = re.fullmatch(r"(?:ray://)?([\w.-]+):(\d+)", address or "")
    if match is None:
        return
    host, port = match.group(1), int(match.group(2))
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as exc:
        raise SummarizeError(
            f"cannot join Ray at {address}: nothing answers on {host}:{port} ({exc.strerror or exc})"
        ) from None
