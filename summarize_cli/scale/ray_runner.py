"""A live stream (stdin) on Ray: a pool of actors, each holding one ready run built from the same spec.

Only the driver can read its own stdin, so here the driver reads and decodes with the local run's reader,
streams documents to the actors a batch at a time, and gets results back in input order. Finite inputs
(files, folders, datasets) run on Ray Data instead (scale/dataset.py), where the workers read and write.

An actor that dies (its process killed, its node lost) is restarted by Ray; the batch it held runs again
on another actor, so no record is lost or doubled.
"""

from __future__ import annotations

import contextlib

from summarize_cli.documents import Document, Problem, Result
from summarize_cli.errors import SummarizeError
from summarize_cli.outputs.records import to_row
from summarize_cli.specs import RunSpec

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
