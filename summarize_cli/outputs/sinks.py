"""Sinks: print results to stdout in a format, or write one file per input under an output folder."""

from __future__ import annotations

import contextlib
import json
import os
import stat
from pathlib import Path
from typing import TextIO

from summarize_cli.documents import Result
from summarize_cli.errors import OutputError, stdout_failed
from summarize_cli.outputs.records import to_record
from summarize_cli.signals import deferred
from summarize_cli.storage import RemotePath, open_read

EXTENSIONS = {
    "text": ".summary.txt",
    "json": ".summary.json",
    "jsonl": ".summary.jsonl",
    "markdown": ".summary.md",
}
TEXT_EXTENSIONS = {"text": ".txt", "json": ".text.json", "jsonl": ".text.jsonl", "markdown": ".md"}  # --extract


def record_of(result: Result, run_info: dict, extract: bool) -> dict:
    """A summary's record, or with --extract the text's: source, final_url and text."""
    if extract:
        return {"source": result.source, "final_url": result.document.final_url, "text": result.summary}
    return to_record(result, run_info)


class StdoutSink:
    """Writes each result to a stream as it arrives, flushed at once so a reader downstream sees it; text
    gets `==> NAME <==` headers when there are several inputs, as `head` does."""

    def __init__(
        self,
        stream: TextIO,
        fmt: str,
        run_info: dict,
        several: bool = False,
        extract: bool = False,
        bullets: bool = False,
    ):
        self.extract = extract
        self.bullets = bullets
        self.stream = stream
        self.fmt = fmt
        self.run_info = run_info
        self.several = several
        self._count = 0
        self._closed = False
        self._held = ""  # json: the last record's closing line, written with the next record or the end

    def write(self, result: Result) -> None:
        first = self._count == 0
        self._count += 1
        if self.fmt == "jsonl":
            text = json.dumps(record_of(result, self.run_info, self.extract), ensure_ascii=False) + "\n"
        elif self.fmt == "json":
            body = _indent(json.dumps(record_of(result, self.run_info, self.extract), ensure_ascii=False, indent=2))
            # the object's last line ("  }") goes out with what follows it (a comma, or the array's end):
            # each write then ends a line, and a terminal's progress display never lands on a half-written one
            opened, _, last = body.rpartition("\n")
            text = ("[\n" if first else self._held + ",\n") + (opened + "\n" if opened else "")
            self._held = last
        elif self.fmt == "markdown":
            text = ("" if first else "\n") + f"## {result.source}\n\n{_body(result, self.bullets)}\n"
        elif self.several:
            text = ("" if first else "\n") + f"==> {result.source} <==\n{_body(result, self.bullets)}\n"
        else:
            text = _body(result, self.bullets) + "\n"
        self._put(text)

    def _put(self, text: str) -> None:
        """Write and flush one whole record: a signal waits for it, so no reader ever sees half a line."""
        try:
            with deferred():
                self.stream.write(text)
                self.stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:  # a full device (`> /dev/full`), a vanished mount
            raise stdout_failed(exc) from None

    def close(self) -> None:
        """End a json array; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self.fmt == "json":
            self._put(self._held + "\n]\n" if self._count else "[]\n")

    def writes_to_terminal(self) -> bool:
        try:
            return self.stream.isatty()
        except (AttributeError, ValueError):
            return False

    def writes_to_pipe(self) -> bool:
        """stdout is a pipe (or socket): its reader (`| cat`, `| jq`) may print to the display's terminal."""
        try:
            mode = os.fstat(self.stream.fileno()).st_mode
        except (AttributeError, ValueError, OSError):
            return False
        return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)

    def abandon(self) -> None:
        """The run stopped early: what was printed stays printed, a json array is still closed."""
        self.close()


def _body(result: Result, bullets: bool = False) -> str:
    """What a text or Markdown output shows: the summary (as `- ` points with --bullets: its sentences, or
    a chunked document's section summaries), or an extracted text, without final newlines."""
    if bullets:
        from summarize_cli.sentences import sentences

        points = result.sections or sentences(result.summary)
        return "\n".join(f"- {point}" for point in points)
    return result.summary.rstrip("\n")


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def output_path(out_dir: Path, relpath: Path, fmt: str, extract: bool = False) -> Path:
    """`notes/a.txt` -> `OUT/notes/a.txt.summary.txt` (by format): the whole source name is kept, so `a.txt`
    and `a.md` never collide, and a file's output path depends on nothing but its own path."""
    name = relpath.name or "stdin"
    return out_dir / relpath.parent / (name + (TEXT_EXTENSIONS if extract else EXTENSIONS)[fmt])


class DuplicateOutput(OutputError):
    """Two documents of one run map to the same output file."""


class FileSink:
    """What every sink that writes files (never the screen) says of itself; a stopped run has nothing
    to undo unless a subclass says otherwise."""

    written = 0

    def close(self) -> None:
        pass

    def writes_to_terminal(self) -> bool:
        return False

    def writes_to_pipe(self) -> bool:
        return False

    def abandon(self):
        """Each file was complete when written: nothing to undo."""
        return None


def duplicate_message(first: str, path: Path) -> str:
    return f"its summary would overwrite that of {first} ({path}); give each document its own id"


def write_result_file(
    path: Path, result: Result, fmt: str, run_info: dict, extract: bool, bullets: bool, stable: bool = False
) -> None:
    """One result's own file under an output folder, in `fmt`, written atomically (a retried write of the
    same result replaces it whole, never doubles it)."""
    if fmt in ("json", "jsonl"):
        indent = 2 if fmt == "json" else None
        text = json.dumps(record_of(result, run_info, extract), ensure_ascii=False, indent=indent) + "\n"
    elif fmt == "markdown":
        text = f"## {result.source}\n\n{_body(result, bullets)}\n"
    else:
        text = _body(result, bullets) + "\n"
    write_atomic(path, text, stable)


class DirectorySink(FileSink):
    """Writes one file per result under `out_dir`, mirroring the inputs, each written atomically."""

    def __init__(self, out_dir: Path, fmt: str, run_info: dict, extract: bool = False, bullets: bool = False):
        self.extract = extract
        self.bullets = bullets
        self.out_dir = out_dir
        self.fmt = fmt
        self.run_info = run_info
        self.written = 0
        self._claimed: dict[Path, str] = {}

    def path_for(self, relpath: Path) -> Path:
        return output_path(self.out_dir, relpath, self.fmt, self.extract)

    def write(self, result: Result) -> None:
        """Write one summary; a second input aiming at a path this run wrote (a repeated jsonl id) is refused."""
        path = self.path_for(result.document.relpath or Path("stdin"))
        if path in self._claimed:
            raise DuplicateOutput(duplicate_message(self._claimed[path], path))
        self._claimed[path] = result.source
        write_result_file(path, result, self.fmt, self.run_info, self.extract, self.bullets)
        self.written += 1


def _temporary_beside(path: Path, stable: bool = False) -> tuple[int, str]:
    """A temporary file beside `path` with the mode `path` will have: its own if it exists, else what the
    user's umask gives a new file (as cp and tee do), never mkstemp's 0600. For an object, a local
    temporary file, uploaded whole when complete (see _move).

    `stable`: always the same name for the same `path` (`.NAME.tmp`), for Ray's workers: a worker killed
    mid-write leaves it behind, and the batch that runs again writes it over and renames it away."""
    import tempfile  # here: a run that prints never needs it (with shutil, 5 ms of every start)

    if isinstance(path, RemotePath):
        return tempfile.mkstemp(prefix="summarize-", suffix=path.suffix or ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if stable:
            tmp = str(path.with_name(f".{path.name}.tmp"))
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        else:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    with contextlib.suppress(OSError):
        os.fchmod(fd, mode)
    return fd, tmp


def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it: put it straight back
    os.umask(mask)
    return mask


def write_atomic(path: Path, text: str, stable: bool = False) -> None:
    """Write to a temporary file beside `path`, then rename it into place (on object storage: one whole
    object). Ctrl-C and SIGTERM wait for the few milliseconds this takes, so neither can leave a temporary
    file behind (`stable`: see _temporary_beside)."""
    if isinstance(path, RemotePath):
        with deferred():
            _put(path, text.encode("utf-8"))
        return
    with deferred():
        fd, tmp = _temporary_beside(path, stable)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, OSError):
                raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
            raise


def existing_sources(path) -> tuple[str, ...]:
    """The `source` of every record an earlier run wrote into the --output file, in order, repeats kept
    (none if it is not there): what --skip-existing leaves out."""
    try:
        if not path.exists():
            return ()
        with open_read(path) as handle:
            if path.suffix.lower() == ".parquet":
                import pyarrow.parquet as pq

                return tuple(pq.read_table(handle, columns=["source"]).column("source").to_pylist())
            return tuple(json.loads(line)["source"] for line in handle if line.strip())
    except (OSError, ValueError, KeyError) as exc:
        raise OutputError(f"cannot read the earlier records in {path} for --skip-existing: {exc}") from None


def parquet_row(row: dict) -> dict:
    """A record as a Parquet row: one column type in every row, empty or not, whatever the first rows
    hold (lists and tables as JSON text)."""
    for column in ("settings", "warnings", "sentences", "sections", "sources"):
        if column in row:
            row[column] = json.dumps(row[column], ensure_ascii=False)
    row["final_url"] = row["final_url"] or ""  # a string column even where no row came from a URL
    if "precision" in row:  # the extractive method has none: still a string column, as a model's rows have
        row["precision"] = row["precision"] or ""
    if "language" in row:
        row["language"] = row["language"] or ""
        confidence = row["language_confidence"]
        row["language_confidence"] = float("nan") if confidence is None else float(confidence)
    return row


def _put(path: RemotePath, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc}") from None


def write_part(folder: Path, name: str, records: list[dict], suffix: str) -> None:
    """One batch's records as a part file `folder/name.SUFFIX`, written atomically: a batch that runs again
    (its worker died) replaces its part, so the joined file holds each record once."""
    path = folder / f"{name}{suffix}"
    if suffix == ".jsonl":
        write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), stable=True)
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist([parquet_row(dict(r)) for r in records])
    if isinstance(path, RemotePath):
        import io

        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        with deferred():
            _put(path, buffer.getvalue())
        return
    with deferred():
        fd, tmp = _temporary_beside(path, stable=True)
        try:
            with os.fdopen(fd, "wb") as handle:
                pq.write_table(table, handle)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def join_parts(folder: Path, handle, suffix: str) -> int:
    """Every part in `folder`, in name order (input order), into the open binary `handle`: JSONL byte for
    byte, Parquet table by table (whole column chunks, no per-row work). The row count."""
    if isinstance(folder, RemotePath):
        parts = [p for p in folder.files() if p.name.endswith(suffix)] if folder.is_dir() else []
    else:
        parts = sorted(folder.glob(f"*{suffix}")) if folder.is_dir() else []
    if suffix == ".jsonl":
        rows = 0
        for part in parts:
            with open_read(part) as source:
                data = source.read()
            rows += data.count(b"\n")
            handle.write(data)
        return rows
    if not parts:
        return 0
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.unify_schemas([pq.read_schema(open_read(p)) for p in parts], promote_options="permissive")
    rows = 0
    with pq.ParquetWriter(handle, schema) as writer:
        for part in parts:
            table = pq.read_table(open_read(part))
            writer.write_table(table.select(schema.names) if table.schema == schema else _conform(table, schema))
            rows += table.num_rows
    return rows


def _conform(table, schema):
    import pyarrow as pa

    columns = [
        table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


class PartsSink(FileSink):
    """--output on Ray: the workers wrote each batch's records as part files in `parts`; this counts the
    results as they arrive and joins the parts into `path` when the run completes (with at least one
    record), as DatasetSink does for a local run; a stopped run leaves them joined in NAME.partial.EXT."""

    def __init__(self, path: Path, parts: Path):
        self.path = path
        self.parts = parts
        self.written = 0
        self._closed = False

    def write(self, result: Result) -> None:
        self.written += 1

    def _join_into(self, target: Path) -> int:
        if isinstance(target, RemotePath):
            import io

            buffer = io.BytesIO()
            rows = join_parts(self.parts, buffer, self.path.suffix.lower())
            if rows:
                _put(target, buffer.getvalue())
            return rows
        fd, tmp = _temporary_beside(target)
        try:
            with os.fdopen(fd, "wb") as handle:
                rows = join_parts(self.parts, handle, self.path.suffix.lower())
                handle.flush()
                os.fsync(handle.fileno())
            if rows:
                os.replace(tmp, target)
            else:
                os.unlink(tmp)
            return rows
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, OSError):
                raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
            raise

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self.written:
                self._join_into(self.path)
        finally:
            self._remove_parts()

    def _remove_parts(self) -> None:
        remove_folder(self.parts)

    def abandon(self) -> Path | None:
        if self._closed:
            return None
        self._closed = True
        partial = self.path.with_name(f"{self.path.stem}.partial{self.path.suffix}")
        try:
            return partial if self._join_into(partial) else None
        except (OSError, OutputError):
            return None
        finally:
            self._remove_parts()


def _move(tmp: Path, target) -> None:
    """A finished temporary file into place: renamed on a disk, uploaded whole to object storage."""
    if isinstance(target, RemotePath):
        _put(target, tmp.read_bytes())
        tmp.unlink()
        return
    os.replace(tmp, target)


def remove_folder(folder) -> None:
    """A folder of part files, gone, wherever it is."""
    if isinstance(folder, RemotePath):
        with contextlib.suppress(OSError):
            folder.fs.delete_dir(folder.key)
        return
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


class WrittenSink(FileSink):
    """-o DIR on Ray: the workers wrote each result's file; this only counts what arrives."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self.written = 0

    def write(self, result: Result) -> None:
        self.written += 1


class DatasetSink(FileSink):
    """Writes every record into one `.jsonl` or `.parquet` file that replaces `path` only when the run
    completes with at least one record; an interrupted or failed run leaves `path` as it was."""

    def __init__(
        self, path: Path, run_info: dict, rows_per_group: int = 1000, extract: bool = False, keep: bool = False
    ):
        """`keep` (--skip-existing): the earlier run's records stay, first, and this run's follow."""
        self.extract = extract
        if path.suffix.lower() not in (".jsonl", ".parquet"):
            raise OutputError(f"--output must end in .jsonl or .parquet: {path}")
        self.path = path
        self.run_info = run_info
        self.written = 0
        self._rows: list[dict] = []
        self._rows_per_group = rows_per_group
        self._parquet = None
        self._closed = False
        fd, tmp = _temporary_beside(path)
        self._tmp = Path(tmp)
        self._handle = os.fdopen(fd, "wb")
        self._earlier = None  # the earlier records (a Parquet table), written before the first new group
        if keep and path.exists():
            with open_read(path) as old:
                if path.suffix.lower() == ".jsonl":
                    import shutil

                    self._write(lambda: shutil.copyfileobj(old, self._handle))
                else:
                    import pyarrow.parquet as pq

                    self._earlier = pq.read_table(old)

    def write(self, result: Result) -> None:
        row = record_of(result, self.run_info, self.extract)
        if self.path.suffix.lower() == ".jsonl":
            line = (json.dumps(row, ensure_ascii=False) + "\n").encode()
            with deferred():
                self._write(lambda: self._handle.write(line))
        else:
            self._rows.append(parquet_row(row))
            if len(self._rows) >= self._rows_per_group:
                self._flush_parquet()
        self.written += 1

    def _flush_parquet(self) -> None:
        if not self._rows:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(self._rows)
        if self._parquet is None:
            schema = table.schema
            if self._earlier is not None:
                schema = pa.unify_schemas([self._earlier.schema, schema], promote_options="permissive")
            self._parquet = pq.ParquetWriter(self._handle, schema)
            if self._earlier is not None:
                self._write(lambda: self._parquet.write_table(_conform(self._earlier, schema)))
        self._write(lambda: self._parquet.write_table(table.cast(self._parquet.schema)))
        self._rows = []

    def _write(self, action) -> None:
        try:
            action()
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def _finish(self) -> None:
        """Complete the temporary file (a Parquet footer) so that it is valid on its own."""
        if self.path.suffix.lower() == ".parquet":
            self._flush_parquet()
            if self._parquet is not None:
                self._parquet.close()
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()

    def close(self) -> None:
        """The run completed: the file replaces `path`, unless it holds nothing (then `path` is untouched)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._finish()
            if self.written:
                _move(self._tmp, self.path)
            else:
                self._tmp.unlink()
        except OSError as exc:
            with contextlib.suppress(OSError):
                self._tmp.unlink()
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def abandon(self) -> Path | None:
        """The run stopped early: `path` stays as it was; the records made so far are kept beside it, in
        `NAME.partial.EXT`, whose path is returned (None when there were none)."""
        if self._closed:
            return None
        self._closed = True
        partial = self.path.with_name(f"{self.path.stem}.partial{self.path.suffix}")
        try:
            self._finish()
            if self.written:
                _move(self._tmp, partial)
                return partial
        except (OSError, OutputError):
            pass
        with contextlib.suppress(OSError):
            self._tmp.unlink()
        return None
