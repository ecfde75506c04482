"""Sources: find the inputs (files, folders, stdin) and decode them into documents, lazily and in order."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from summarize_cli.documents import IDLE, Document, Idle, Problem
from summarize_cli.errors import PARQUET_EXTRA, InputError, SkippedInput, SummarizeError
from summarize_cli.inputs.decoding import has_content
from summarize_cli.inputs.fetch import DEFAULT_TIMEOUT, body_format, fetch, is_url, url_relpath
from summarize_cli.inputs.formats import DEFAULT_INCLUDE, DEFAULT_SUFFIXES, MissingExtra, detect, extract, parser_notes
from summarize_cli.specs import DEFAULT_MAX_INPUT_BYTES, InputSpec
from summarize_cli.storage import RemotePath, is_remote

__all__ = ["DEFAULT_INCLUDE", "InputFile", "discover", "read_documents", "read_inputs"]
STDIN = "-"
STDIN_NAME = "<stdin>"
_BLANK_BYTES = bytes(range(33)) + b"\x7f"
DATASET_SUFFIXES = (".jsonl", ".parquet")
LOOP = "symbolic link loop (a link to a folder that contains it), not followed"


@dataclass(frozen=True)
class InputFile:
    """A file found on disk (`path`), or stdin (`path is None`), and where its output goes."""

    display: str
    path: Path | None
    relpath: Path
    named: bool = False  # given on the command line, not found by walking a folder
    url: str | None = None  # an http(s) input, fetched when read

    @property
    def is_stdin(self) -> bool:
        return self.path is None and self.url is None


def discover(
    inputs: Iterable[str],
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    skip: Iterable[Path] = (),
) -> Iterator[InputFile | Problem]:
    """Expand INPUTS into files, in order; folders are walked recursively in sorted order, taking the files
    `include` matches (none given: every extension the readers know, in any case).

    `skip` names folders never walked (the output folder). A file or folder reached twice (named twice,
    or through a link into the tree) is taken once, under its own path; only a link to one of its own
    ancestors is a loop.
    """
    inputs, include, exclude = list(inputs), tuple(include), tuple(exclude)
    paths = [a for a in inputs if a != STDIN and not is_url(a) and "\0" not in a]
    anchors = Anchors(paths)
    walk = _Walk(include, exclude, skip, roots=[Path(a) for a in paths])
    for arg in inputs:
        if arg == STDIN:
            yield InputFile(STDIN_NAME, None, Path("stdin"))
            continue
        if is_url(arg):
            try:
                relpath = url_relpath(arg)
            except ValueError as exc:  # a port out of range, a malformed host: this input fails, not the run
                yield Problem(arg, f"not a valid URL ({exc})")
                continue
            yield InputFile(arg, None, relpath, named=True, url=arg)
            continue
        if is_remote(arg):
            yield from _remote(arg, walk, skip)
            continue
        if "\0" in arg:  # no file name holds one: a NUL-separated list read as lines
            yield Problem(arg.replace("\0", "\\0"), "the name holds a NUL byte (a NUL-separated list needs -0)")
            continue
        path = Path(arg)
        try:
            info = path.stat()
        except FileNotFoundError:
            yield Problem(arg, "no such file or directory")
            continue
        except OSError as exc:
            yield Problem(arg, exc.strerror or str(exc))
            continue
        if stat.S_ISDIR(info.st_mode):
            yield from walk.folder(path, anchors.of(path))
        elif walk.first_time(info):  # a named file is read whatever its kind: `<(cmd)` gives a pipe
            yield InputFile(arg, path, anchors.of(path), named=True)


def _remote(uri: str, walk: _Walk, skip: Iterable) -> Iterator[InputFile | Problem]:
    """An object (read whatever its kind, as a named file is) or a folder of them on object storage,
    walked as a local folder is: sorted, --include and --exclude applied, the output folder left out.
    Each goes under --output-dir at its bucket and key."""
    root = RemotePath(uri)
    try:
        if root.is_file():
            yield InputFile(uri, root, root.relative(), named=True)
            return
        files = root.files()
    except FileNotFoundError:
        files = []
    except OSError as exc:
        yield Problem(uri, f"cannot read ({exc})")
        return
    if not files:
        yield Problem(uri, "no such file or folder")
        return
    outputs = [str(s).rstrip("/") + "/" for s in skip if isinstance(s, RemotePath)]
    for path in files:
        if any(str(path).startswith(prefix) for prefix in outputs):
            continue
        relative = PurePosixPath(path.key[len(root.key) :].lstrip("/"))
        if walk.takes(relative):
            yield InputFile(str(path), path, path.relative())


class Anchors:
    """Where each named input sits under --output-dir, so that no two inputs collide and a file's place
    never depends on the files beside it: inside the current folder, its path relative to it; outside,
    its path relative to the common parent of the named inputs outside it."""

    def __init__(self, paths: list[str]):
        self.cwd = Path.cwd().resolve()
        outside = [self._absolute(Path(a)) for a in paths if self._inside(Path(a)) is None]
        self.base = Path(os.path.commonpath([str(p.parent) for p in outside])) if outside else None

    @staticmethod
    def _absolute(path: Path) -> Path:
        return Path(os.path.normpath(path.resolve() if path.is_symlink() else path.absolute()))

    def _inside(self, path: Path) -> Path | None:
        normal = Path(os.path.normpath(path))
        if not normal.is_absolute() and normal.parts[:1] != ("..",):
            return Path() if str(normal) == "." else normal
        for candidate in (self._absolute(path), path.resolve()):
            try:
                return candidate.relative_to(self.cwd)
            except ValueError:
                continue
        return None

    def of(self, path: Path) -> Path:
        inside = self._inside(path)
        if inside is not None:
            return inside
        absolute = self._absolute(path)
        return absolute.relative_to(self.base) if self.base is not None else Path(absolute.name)


def _matches(relative: PurePosixPath, patterns: tuple[str, ...]) -> bool:
    """A glob without `/` matches the name at any depth; one with `/` the path below the walked folder,
    where `*` stays within one folder and `**/` is any number of folders, none included (wcmatch: a
    maintained glob matcher, where fnmatch lets `*` cross `/` and `**/*.md` miss the top level)."""
    from wcmatch.glob import BRACE, FORCEUNIX, GLOBSTAR, globmatch

    return any(
        globmatch(str(relative) if "/" in p else relative.name, p, flags=GLOBSTAR | BRACE | FORCEUNIX) for p in patterns
    )


def _known_suffix(relative: PurePosixPath) -> bool:
    return relative.suffix.lower() in DEFAULT_SUFFIXES


class _Walk:
    """One walk over all the named inputs: remembers what it has taken, so nothing is taken twice."""

    def __init__(self, include: tuple[str, ...], exclude: tuple[str, ...], skip: Iterable[Path], roots: list[Path]):
        self.include, self.exclude = include, exclude
        self.skip = {_key(p) for p in skip if isinstance(p, Path) and p.exists()}
        self.roots = [r.resolve() for r in roots if r.is_dir()]
        self.taken: set[tuple[int, int]] = set()

    def first_time(self, info: os.stat_result) -> bool:
        key = (info.st_dev, info.st_ino)
        if key in self.taken:
            return False
        self.taken.add(key)
        return True

    def takes(self, relative: PurePosixPath) -> bool:
        """A file at `relative` below a walked folder: not excluded (itself or a folder above it), and
        included. For object storage, whose folders are only prefixes."""
        if any(part.startswith(".") for part in relative.parts):
            return False
        if any(_matches(PurePosixPath(*relative.parts[: i + 1]), self.exclude) for i in range(len(relative.parts))):
            return False
        return _matches(relative, self.include) if self.include else _known_suffix(relative)

    def folder(self, root: Path, anchor: Path) -> Iterator[InputFile | Problem]:
        yield from self._visit(root, PurePosixPath(), anchor, ())

    def _visit(self, folder: Path, relative: PurePosixPath, anchor: Path, ancestors: tuple) -> Iterator:
        try:
            info = folder.stat()
        except OSError as exc:
            yield Problem(str(folder), exc.strerror or str(exc))
            return
        key = (info.st_dev, info.st_ino)
        if key in ancestors:
            yield Problem(str(folder), LOOP, skipped=True)
            return
        if key in self.skip or not self.first_time(info):
            return  # the output folder, or a folder already walked
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            yield Problem(str(folder), exc.strerror or str(exc))
            return
        ancestors = (*ancestors, key)
        for entry in entries:
            if entry.name.startswith("."):
                continue
            child_rel = relative / entry.name
            child = folder / entry.name
            if _matches(child_rel, self.exclude):
                continue
            try:
                child_info = entry.stat()
            except OSError as exc:
                if entry.is_symlink():
                    yield Problem(str(child), "broken symbolic link", skipped=True)
                else:
                    yield Problem(str(child), exc.strerror or str(exc))
                continue
            if stat.S_ISDIR(child_info.st_mode):
                if entry.is_symlink() and (child_info.st_dev, child_info.st_ino) not in ancestors:
                    target, here = child.resolve(), folder.resolve()
                    if target == here or target in here.parents:  # an ancestor, reached through an alias
                        yield Problem(str(child), LOOP, skipped=True)
                        continue
                    if any(target == r or r in target.parents for r in self.roots):
                        continue  # inside a walked tree: taken under its own path, not the link's
                yield from self._visit(child, child_rel, anchor, ancestors)
            elif not (_matches(child_rel, self.include) if self.include else _known_suffix(child_rel)):
                continue
            elif stat.S_ISREG(child_info.st_mode):
                if (child_info.st_dev, child_info.st_ino) in self.skip:
                    continue  # the --output file of this run
                if entry.is_symlink() and any(r in child.resolve().parents for r in self.roots):
                    continue  # a link to a file of a walked tree: taken under its own path
                if self.first_time(child_info):
                    yield InputFile(str(child), child, anchor / child_rel)
            else:
                yield Problem(str(child), "not a regular file (FIFO, socket or device), skipped", skipped=True)


def _open(path: Path | RemotePath):
    """A binary file object for a local path or an object on remote storage."""
    return path.open_read() if isinstance(path, RemotePath) else open(path, "rb")  # noqa: SIM115


def _key(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_dev, info.st_ino


def read_inputs(items: Iterable[InputFile | Problem], stdin: BinaryIO | None, spec: InputSpec):
    """Documents from the inputs as `spec` says to read them: the one reader for local runs and Ray."""
    return read_documents(
        items,
        stdin,
        stdin_format=spec.stdin_format,
        max_input_bytes=spec.max_input_bytes,
        input_format=spec.input_format,
        text_column=spec.text_column,
        id_column=spec.id_column,
        timeout=spec.timeout,
    )


def read_documents(
    items: Iterable[InputFile | Problem],
    stdin: BinaryIO | None = None,
    stdin_format: str = "text",
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES,
    input_format: str = "auto",
    text_column: str = "text",
    id_column: str = "id",
    timeout: float = DEFAULT_TIMEOUT,
) -> Iterator[Document | Problem]:
    """Read and decode each input when it is reached, so only one text is held at a time.

    A named `.jsonl` or `.parquet` file is a dataset: one document per row, from `text_column` (a JSONL row
    may give a `url` to fetch instead). A URL is fetched with `timeout`, its body bound by `max_input_bytes`.
    """
    limits = _Limits(max_input_bytes, input_format, timeout)
    for item in items:
        if isinstance(item, Problem):
            yield item
        elif item.is_stdin and stdin_format == "jsonl":
            yield from read_jsonl(stdin, max_input_bytes, STDIN_NAME, text_column, id_column, live=True, limits=limits)
        elif is_dataset(item):
            yield from read_dataset(item, max_input_bytes, text_column, id_column, limits)
        else:
            try:
                yield _read_one(item, stdin, limits)
            except InputError as exc:
                yield Problem(item.display, str(exc), skipped=exc.skipped)


@dataclass(frozen=True)
class _Limits:
    """What every read needs to know: the size limit, the format asked for, the URL timeout."""

    max_input_bytes: int
    input_format: str = "auto"
    timeout: float = DEFAULT_TIMEOUT


def _read_one(item: InputFile, stdin: BinaryIO | None, limits: _Limits) -> Document:
    if item.url is not None:
        return read_url(item.url, item.display, item.relpath, limits)
    limit = limits.max_input_bytes
    try:
        if item.path is None:
            if stdin is None:
                raise InputError("stdin is not available")
            data = _read_bounded(stdin, limit)
        else:
            with _open(item.path) as handle:
                data = _read_bounded(handle, limit)
    except OSError as exc:
        raise InputError(exc.strerror or str(exc)) from None
    if len(data) > limit:
        raise InputError(f"larger than --max-input-bytes ({limit:,} bytes)")
    fmt = detect(None if item.path is None else item.path.name, limits.input_format)
    return _document(item.display, data, fmt, item.relpath, limits, path=item.path, named=item.named)


def read_url(url: str, display: str, relpath: Path, limits: _Limits) -> Document:
    """The document behind a URL: fetched, then read by its Content-Type (else extension, else bytes)."""
    fetched = fetch(url, limits.timeout, limits.max_input_bytes)
    fmt = limits.input_format if limits.input_format != "auto" else body_format(fetched)
    document = _document(display, fetched.data, fmt, relpath, limits, named=True)
    document.final_url = fetched.final_url
    return document


def _document(
    source: str, data: bytes, fmt: str, relpath: Path, limits: _Limits, path: Path | None = None, named: bool = False
) -> Document:
    """Bytes of a known format to a Document: the parser's complaints kept as warnings (or in the reason it
    fails), and text that expands past --max-input-bytes (a zip bomb, a PDF of endless pages) refused."""
    if not data.strip(_BLANK_BYTES):
        raise SkippedInput("empty (only whitespace or control characters)")
    with parser_notes() as notes:
        try:
            text = extract(data, fmt, limits.max_input_bytes)
        except MissingExtra as exc:
            if named:  # asked for by name: a failure to act on, not a file passed over
                raise InputError(str(exc)) from None
            raise
        except InputError as exc:
            if notes:
                raise type(exc)(f"{exc}; {fmt}: {'; '.join(notes)}") from None
            raise
    document = make_document(source, text, relpath, path)
    document.warnings.extend(f"{fmt}: {note}" for note in notes)
    return document


def _read_bounded(handle: BinaryIO, limit: int) -> bytes:
    """At most `limit + 1` bytes, a megabyte at a time: memory follows the input's size, not the limit."""
    chunks, total = [], 0
    while total <= limit:
        chunk = handle.read(min(1 << 20, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


NULL_TEXT = "no text (null)"  # a dataset row whose text is a missing value, in JSONL or Parquet alike


def make_document(source: str, text: str, relpath: Path, path: Path | None = None) -> Document:
    """A Document, or SkippedInput when the text holds nothing to summarise."""
    if not has_content(text):
        raise SkippedInput("empty (only whitespace or control characters)")
    return Document(source=source, text=text, relpath=relpath, path=path)


def is_dataset(item: InputFile) -> bool:
    return item.path is not None and item.path.suffix.lower() in DATASET_SUFFIXES


def read_dataset(item: InputFile, max_input_bytes: int, text_column: str, id_column: str, limits=None):
    """Documents from the rows of a JSONL or Parquet file."""
    folder = item.relpath  # rows go under OUT/data.jsonl/ID.summary.*, beside OUT/other.txt.summary.*
    try:
        if item.path.suffix.lower() == ".jsonl":
            with _open(item.path) as stream:
                rows = read_jsonl(stream, max_input_bytes, item.display, text_column, id_column, limits=limits)
                for doc in rows:
                    if isinstance(doc, Document):
                        doc.relpath = folder / doc.relpath
                    yield doc
        else:
            for number, (key, text) in enumerate(parquet_rows(item.path, text_column, id_column), start=1):
                source = key or f"{item.display}:{number}"
                try:
                    if text is None:
                        raise SkippedInput(NULL_TEXT)
                    if len(text.encode("utf-8", "surrogatepass")) > max_input_bytes:
                        raise InputError(f"larger than --max-input-bytes ({max_input_bytes:,} bytes)")
                    yield make_document(source, text, folder / _row_relpath(key, "row", number))
                except InputError as exc:
                    yield Problem(source, f"row {number}: {exc}" if key else str(exc), skipped=exc.skipped)
    except OSError as exc:
        yield Problem(item.display, exc.strerror or str(exc))
    except InputError as exc:
        yield Problem(item.display, str(exc), skipped=exc.skipped)


def parquet_rows(path: Path, text_column: str, id_column: str) -> Iterator[tuple[str, str | None]]:
    """(id, text) pairs of a Parquet file, read a row group at a time; a null text is None."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(f"reading Parquet needs pyarrow: {PARQUET_EXTRA}") from None
    try:
        reader = pq.ParquetFile(_open(path))
    except Exception as exc:  # noqa: BLE001 - pyarrow's errors on a broken file
        raise InputError(f"not a readable Parquet file ({exc})") from None
    names = reader.schema_arrow.names
    if text_column not in names:
        raise InputError(f'no column "{text_column}" (columns: {", ".join(names)}; choose one with --text-column)')
    columns = [text_column] + ([id_column] if id_column in names else [])
    for batch in reader.iter_batches(columns=columns, batch_size=256):
        texts = batch.column(text_column).to_pylist()
        ids = batch.column(id_column).to_pylist() if id_column in names else [None] * len(texts)
        for row_id, text in zip(ids, texts, strict=True):
            yield ("" if row_id is None else str(row_id)), text


def read_jsonl(
    stream: BinaryIO | None,
    max_input_bytes: int,
    name: str = "<stdin>",
    text_field: str = "text",
    id_field: str = "id",
    live: bool = False,
    limits: _Limits | None = None,
) -> Iterator[Document | Problem | Idle]:
    """One document per line: {"text": ..., "id": ...} or {"url": ..., "id": ...} (fetched when read, with
    `limits`); a bad line is a problem, not the end.

    `live` (stdin): lines are read ahead in a thread, and IDLE marks each moment no further line is ready,
    so `tail -f feed.jsonl | summarize --stdin-format jsonl` summarises each record as it arrives.
    """
    if stream is None:
        yield Problem(name, "stdin is not available")
        return
    lines = _bounded_lines(stream, max_input_bytes)
    number = 0
    for raw in _read_ahead(lines) if live else lines:
        if raw is IDLE:
            yield IDLE
            continue
        number += 1
        line_name = f"{name}:{number}"  # a line's name until its record gives an id
        if raw is None:
            yield Problem(line_name, f"larger than --max-input-bytes ({max_input_bytes:,} bytes)")
            continue
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            yield Problem(line_name, f"not valid JSON ({exc})")
            continue
        url = record.get("url") if isinstance(record, dict) else None
        # a null text is a missing value, as a Parquet null is: skipped below, never a failure
        null = isinstance(record, dict) and text_field in record and record[text_field] is None and url is None
        if not isinstance(record, dict) or not (
            null or isinstance(record.get(text_field), str) or (isinstance(url, str) and is_url(url))
        ):
            yield Problem(line_name, f'no "{text_field}" string field')
            continue
        key = record.get(id_field)
        source = line_name if key is None else str(key)
        relpath = _row_relpath(key, "line", number)
        try:
            if null:
                raise SkippedInput(NULL_TEXT)
            if isinstance(record.get(text_field), str):
                yield make_document(source, record[text_field], relpath)
            else:
                try:
                    yield read_url(url, source, relpath, limits or _Limits(max_input_bytes))
                except InputError as exc:  # the row's name, and the URL that failed
                    raise type(exc)(f"{url}: {exc}") from None
        except InputError as exc:
            yield Problem(source, str(exc) if key is None else f"line {number}: {exc}", skipped=exc.skipped)


def _row_relpath(key, kind: str, number: int) -> Path:
    """A row's file under --output-dir: its id made safe, or `line-N` / `row-N` when it has none, wherever
    the row comes from (a file, stdin)."""
    return Path(f"{kind}-{number}") if key in (None, "") else safe_relpath(str(key), number)


IDLE_AFTER = 0.05  # seconds without a new line before the pipeline works on what it has


def _read_ahead(lines: Iterator[bytes | None]) -> Iterator[bytes | None | Idle]:
    """`lines`, read in a thread; IDLE whenever none has come for IDLE_AFTER seconds."""
    import queue
    import threading

    handoff: queue.Queue = queue.Queue(maxsize=1024)
    end = object()

    def read() -> None:
        try:
            for line in lines:
                handoff.put(line)
        except Exception as exc:  # noqa: BLE001 - an unreadable stream ends the stream, with its reason
            handoff.put(exc)
        handoff.put(end)

    threading.Thread(target=read, name="summarize-stdin", daemon=True).start()
    while True:
        try:
            line = handoff.get(timeout=IDLE_AFTER)
        except queue.Empty:
            yield IDLE
            line = handoff.get()
        if line is end:
            return
        if isinstance(line, Exception):
            raise line
        yield line


def _bounded_lines(stream: BinaryIO, limit: int) -> Iterator[bytes | None]:
    """The lines of `stream`, each read with a bound: a line over `limit` bytes is skipped as it streams
    past (None in its place), so a stream without newlines cannot exhaust memory."""
    while True:
        line = stream.readline(limit + 2)  # the text, and room for "\r\n"
        if not line:
            return
        if len(line.rstrip(b"\r\n")) <= limit:
            yield line
            continue
        while line and not line.endswith(b"\n"):  # drop the rest of the line a megabyte at a time
            line = stream.readline(1 << 20)
        yield None


def safe_relpath(name: str, number: int) -> Path:
    """A file name for a jsonl id that cannot climb out of --output-dir."""
    cleaned = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name).strip("._")
    return Path(cleaned[:120] or f"line-{number}")


def listed_inputs(source: str, null: bool, stdin) -> list[str]:
    """--files-from: one path or URL a line (NUL-separated with -0), taken as written; blank entries skipped.
    A listed `-` is a file of that name, not stdin."""
    try:
        raw = Path(source).read_bytes() if source != STDIN else stdin.read() if stdin is not None else b""
    except OSError as exc:
        raise SummarizeError(f"cannot read --files-from {source}: {exc.strerror or exc}") from None
    names = raw.split(b"\0") if null else raw.splitlines()
    listed = [os.fsdecode(name) for name in names if name.strip()]
    return [os.path.join(".", name) if name == STDIN else name for name in listed]
