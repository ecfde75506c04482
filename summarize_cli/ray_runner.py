"""Run the same pipeline on a Ray cluster with Ray Data: an actor pool, each actor loading the model once."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from summarize_cli.documents import Document, Problem, Result
from summarize_cli.errors import InputError, SettingsError, SummarizeError
from summarize_cli.sources import InputFile, is_dataset, make_document, read_documents, safe_relpath

RAY_EXTRA = "pip install 'summarize-cli[ray]'"
COLUMNS = ("source", "relpath", "text", "error", "skipped")


def require_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise SettingsError(f"--ray needs Ray Data: {RAY_EXTRA}") from None
    return ray


class SummarizeActor:
    """One model per actor: loaded in __init__, then called on batches of rows.

    The run's settings are a class attribute of a subclass made per run (see `_actor_class`), so Ray needs
    no constructor arguments in its object store.
    """

    config: dict = {}

    def __init__(self):
        engine_args, overrides = self.config["engine_args"], self.config["overrides"]
        batch_size, long_mode, use_cache = self.config["batch_size"], self.config["long_mode"], self.config["use_cache"]
        from summarize_cli.quiet import quiet_environment

        quiet_environment()
        from summarize_cli.engine import load_engine
        from summarize_cli.settings import resolve

        engine = load_engine(**engine_args)
        settings = resolve(engine.source.path, overrides)
        cache = None
        if use_cache:
            from summarize_cli.cache import ResultCache

            cache = ResultCache()
        self.summarizer = engine.summarizer(settings, batch_size, long_mode, cache)
        self.run_info = json.dumps(engine.run_info(settings))

    def __call__(self, batch: dict) -> dict:
        items: list[Document | Problem] = []
        for source, relpath, text, error, skipped in zip(*(batch[c] for c in COLUMNS), strict=True):
            if error:
                items.append(Problem(str(source), str(error), skipped=bool(skipped)))
            else:
                items.append(Document(str(source), str(text), Path(str(relpath))))
        out: dict[str, list] = {
            k: []
            for k in (
                "source",
                "relpath",
                "summary",
                "input_tokens",
                "chunks",
                "truncated",
                "unknown_share",
                "seconds",
                "cached",
                "warnings",
                "error",
                "skipped",
                "run_info",
            )
        }
        for item, result in zip(items, self.summarizer.summarize(items), strict=True):
            is_result = isinstance(result, Result)
            out["source"].append(result.source)
            out["relpath"].append(str(item.relpath) if isinstance(item, Document) else "")
            out["summary"].append(result.summary if is_result else "")
            out["input_tokens"].append(result.input_tokens if is_result else 0)
            out["chunks"].append(result.chunks if is_result else 0)
            out["truncated"].append(result.truncated if is_result else False)
            out["unknown_share"].append(result.unknown_share if is_result else 0.0)
            out["seconds"].append(result.seconds if is_result else 0.0)
            out["cached"].append(result.cached if is_result else False)
            out["warnings"].append(json.dumps(result.warnings if is_result else []))
            out["error"].append("" if is_result else result.reason)
            out["skipped"].append(False if is_result else result.skipped)
            out["run_info"].append(self.run_info)
        return out


def read_files(batch: dict, max_input_bytes: int, input_format: str) -> dict:
    """Ray task: read and decode files where they are (shared storage on a cluster)."""
    rows: dict[str, list] = {c: [] for c in COLUMNS}
    files = [
        InputFile(str(d), Path(str(p)), Path(str(r)))
        for d, p, r in zip(batch["display"], batch["path"], batch["relpath"], strict=True)
    ]
    for item, doc in zip(
        files, read_documents(files, max_input_bytes=max_input_bytes, input_format=input_format), strict=True
    ):
        _add_row(rows, item.display, item.relpath, doc)
    return rows


def dataset_rows(
    batch: dict, name: str, folder: str, text_column: str, id_column: str, max_input_bytes: int, from_json_lines: bool
) -> dict:
    """Ray task: rows of a Parquet or JSONL dataset as documents (JSONL lines are parsed here)."""
    rows: dict[str, list] = {c: [] for c in COLUMNS}
    if from_json_lines:
        records = []
        for line in batch["text"]:
            try:
                record = json.loads(line) if str(line).strip() else None
            except json.JSONDecodeError as exc:
                record = {"__error__": f"not valid JSON ({exc})", "__line__": str(line)}
            if record is not None:
                records.append(record)
    else:
        ids = batch.get(id_column, [None] * len(batch[text_column]))
        records = [{text_column: t, id_column: i} for t, i in zip(batch[text_column], ids, strict=True)]
    for record in records:
        text = record.get(text_column) if isinstance(record, dict) else None
        key = record.get(id_column) if isinstance(record, dict) else None
        digest = hashlib.sha1(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:10]
        source = str(key) if key is not None else f"{name}:{digest}"
        relpath = Path(folder) / safe_relpath(source, 0)
        if isinstance(record, dict) and "__error__" in record:
            _add_row(rows, source, relpath, Problem(source, record["__error__"]))
        elif not isinstance(text, str) or len(text.encode()) > max_input_bytes:
            reason = (
                f'no "{text_column}" string field' if not isinstance(text, str) else "larger than --max-input-bytes"
            )
            _add_row(rows, source, relpath, Problem(source, reason))
        else:
            try:
                doc: Document | Problem = make_document(source, text, relpath)
            except InputError as exc:
                doc = Problem(source, str(exc), skipped=exc.skipped)
            _add_row(rows, source, relpath, doc)
    return rows


def _add_row(rows: dict, source: str, relpath: Path, doc: Document | Problem) -> None:
    rows["source"].append(doc.source if isinstance(doc, Problem) else source)
    rows["relpath"].append(str(relpath))
    rows["text"].append(doc.text if isinstance(doc, Document) else "")
    rows["error"].append(doc.reason if isinstance(doc, Problem) else "")
    rows["skipped"].append(doc.skipped if isinstance(doc, Problem) else False)


class RaySummarizer:
    """Summarise inputs on Ray: results come back to the driver in input order, as Results and Problems."""

    def __init__(
        self,
        address: str | None,
        workers: int | None,
        engine_args: dict,
        overrides: dict,
        batch_size: int | None,
        long_mode: str,
        use_cache: bool,
        max_input_bytes: int,
        input_format: str = "auto",
        text_column: str = "text",
        id_column: str = "id",
    ):
        self.ray = require_ray()
        self.address = address
        self.workers = workers
        self.engine_args = engine_args
        self.overrides = overrides
        self.batch_size = batch_size
        self.long_mode = long_mode
        self.use_cache = use_cache
        self.max_input_bytes = max_input_bytes
        self.input_format = input_format
        self.text_column, self.id_column = text_column, id_column
        self.gpu = str(engine_args.get("device", "auto")).startswith("cuda")
        self._started_here = False

    def start(self) -> None:
        """Join the cluster at `address` (auto, ray://host:port), or start a local Ray instance."""
        ray = self.ray
        # results must come back in input order, without Ray's own progress bars on the terminal
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        if ray.is_initialized():
            return
        os.environ.setdefault("RAY_DEDUP_LOGS", "1")
        warnings.filterwarnings("ignore", module=r"ray(\.|$)")
        for name in ("ray", "ray.data", "ray.train", "ray.tune"):
            logging.getLogger(name).setLevel(logging.CRITICAL)  # failures reach the user as one Error line
        address = None if self.address in (None, "", "local") else self.address
        self._divert_native_stderr()
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

    def shutdown(self) -> None:
        if self._started_here and self.ray.is_initialized():
            self.ray.shutdown()
        self._restore_stderr()

    def _divert_native_stderr(self) -> None:
        """Ray's C++ core and its workers write notices straight to file descriptor 2: send those to a log
        file, and give Python's sys.stderr (progress, warnings, errors) a copy of the real stderr."""
        from summarize_cli.cache import cache_dir

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
        if getattr(self, "_saved_fd", None) is None:
            return
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
            sys.stderr.close()
        sys.stderr = self._saved_stderr
        os.dup2(self._saved_fd, 2)
        os.close(self._saved_fd)
        self._saved_fd = None

    def _blocks(self, rows: int) -> int:
        """Blocks are what the actor pool hands out: at most a batch each, and enough for every actor."""
        return max(1, min(rows, max(-(-rows // (self.batch_size or 16)), 2 * self.pool_size())))

    def pool_size(self) -> int:
        if self.workers:
            return self.workers
        resources = self.ray.cluster_resources()
        if self.gpu:
            return max(1, int(resources.get("GPU", 1)))
        return max(1, int(resources.get("CPU", 1) // (self.engine_args.get("threads") or 1)))

    def summarize(
        self, items: Iterable[InputFile | Problem], stdin: BinaryIO | None = None, stdin_format: str = "text"
    ) -> Iterator[Result | Problem]:
        """Every input's result, in order: files are read by Ray tasks, datasets by Ray Data readers."""
        self.start()
        pending: list[InputFile] = []
        for item in items:
            if isinstance(item, InputFile) and item.path is not None and not is_dataset(item):
                pending.append(item)
                continue
            if pending:
                yield from self._run(self._files(pending))
                pending = []
            if isinstance(item, Problem):
                yield item
            elif item.path is None:
                docs = list(
                    read_documents(
                        [item],
                        stdin,
                        stdin_format,
                        self.max_input_bytes,
                        self.input_format,
                        self.text_column,
                        self.id_column,
                    )
                )
                yield from self._run(self._in_memory(docs))
            else:
                yield from self._run(self._dataset(item))
        if pending:
            yield from self._run(self._files(pending))

    def _files(self, files: list[InputFile]):
        rows = [{"display": f.display, "path": str(f.path.resolve()), "relpath": str(f.relpath)} for f in files]
        blocks = self._blocks(len(rows))
        return self.ray.data.from_items(rows, override_num_blocks=blocks).map_batches(  # fuses into the actors
            read_files,
            fn_kwargs={"max_input_bytes": self.max_input_bytes, "input_format": self.input_format},
            batch_size=None,  # one call per block, so blocks stay as small as they were made
            num_cpus=0,
        )

    def _in_memory(self, docs: list[Document | Problem]):
        rows = []
        for doc in docs:
            row: dict[str, list] = {c: [] for c in COLUMNS}
            _add_row(row, doc.source, getattr(doc, "relpath", None) or Path("stdin"), doc)
            rows.append({c: v[0] for c, v in row.items()})
        return self.ray.data.from_items(rows, override_num_blocks=self._blocks(len(rows)))

    def _dataset(self, item: InputFile):
        data = self.ray.data
        path = str(item.path.resolve())
        lines = item.path.suffix.lower() == ".jsonl"
        if lines:
            source = data.read_text(path, num_cpus=0)
        else:
            import pyarrow.parquet as pq

            names = pq.read_schema(path).names
            if self.text_column not in names:
                raise SummarizeError(
                    f'{item.display}: no column "{self.text_column}" (columns: {", ".join(names)}; '
                    "choose one with --text-column)"
                )
            columns = [self.text_column] + ([self.id_column] if self.id_column in names else [])
            source = data.read_parquet(path, num_cpus=0).select_columns(columns)
        return source.map_batches(
            dataset_rows,
            fn_kwargs={
                "name": item.display,
                "folder": str(item.relpath.with_suffix("")),
                "text_column": self.text_column,
                "id_column": self.id_column,
                "max_input_bytes": self.max_input_bytes,
                "from_json_lines": lines,
            },
            batch_size=256,
            num_cpus=0,  # light parsing: the CPUs belong to the summarising actors
        ).repartition(target_num_rows_per_block=self.batch_size or 16)  # so one file feeds every actor

    def _run(self, dataset) -> Iterator[Result | Problem]:
        threads = self.engine_args.get("threads") or 1
        config = {
            "engine_args": {**self.engine_args, "threads": threads},
            "overrides": self.overrides,
            "batch_size": self.batch_size,
            "long_mode": self.long_mode,
            "use_cache": self.use_cache,
        }
        rows_per_call = self.batch_size or 16
        summarized = dataset.map_batches(
            type("SummarizeActor", (SummarizeActor,), {"config": config}),
            batch_size=rows_per_call,
            compute=self.ray.data.ActorPoolStrategy(min_size=1, max_size=self.pool_size()),
            num_cpus=threads,
            num_gpus=1 if self.gpu else 0,
        )
        try:
            for row in summarized.iter_rows():
                yield _from_row(row)
        except self.ray.exceptions.RayError as exc:
            message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            log = getattr(self, "log_path", None)
            raise SummarizeError(f"the Ray job failed: {message}" + (f" (Ray's log: {log})" if log else "")) from None


def _from_row(row: dict) -> Result | Problem:
    if row["error"]:
        return Problem(str(row["source"]), str(row["error"]), skipped=bool(row["skipped"]))
    document = Document(str(row["source"]), "", Path(str(row["relpath"])) if row["relpath"] else None)
    return Result(
        document=document,
        summary=str(row["summary"]),
        input_tokens=int(row["input_tokens"]),
        chunks=int(row["chunks"]),
        seconds=float(row["seconds"]),
        truncated=bool(row["truncated"]),
        warnings=json.loads(row["warnings"]),
        unknown_share=float(row["unknown_share"]),
        cached=bool(row["cached"]),
        run_info=json.loads(row["run_info"]),
    )
