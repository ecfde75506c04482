"""Object storage and other filesystems by URI (s3://, gs://, hdfs://, abfs://, ...), as pyarrow or fsspec
know them, behind the few Path operations the stages use, so a folder of inputs or an output folder can
live on a bucket as well as on a disk.

Credentials come from where each filesystem's own SDK looks (AWS_* variables and ~/.aws for S3,
GOOGLE_APPLICATION_CREDENTIALS for GCS, ...); nothing here reads or prints them. AWS_ENDPOINT_URL points
S3 at any compatible server.
"""

from __future__ import annotations

import posixpath
import re
from functools import lru_cache
from pathlib import Path, PurePosixPath

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
WEB = ("http", "https")


CREDENTIAL_PREFIXES = ("AWS_", "GOOGLE_", "GCS_", "AZURE_", "HADOOP_", "HDFS_", "ARROW_LIBHDFS")


def credential_environment() -> dict[str, str]:
    """The variables object storage reads its endpoint and credentials from, as this process has them:
    handed to Ray's workers so that they reach the same buckets as the driver. Never printed."""
    import os

    return {k: v for k, v in os.environ.items() if k.startswith(CREDENTIAL_PREFIXES)}


def is_remote(name: str) -> bool:
    """A URI on a filesystem other than this machine's own (and not a web page, which is fetched)."""
    match = _SCHEME.match(name)
    return match is not None and match.group(1).lower() not in (*WEB, "file")


@lru_cache(maxsize=16)
def _filesystem(scheme_and_authority: str):
    """One filesystem per bucket (per process): pyarrow's own where it has one, else fsspec's."""
    from pyarrow import fs

    try:
        return fs.FileSystem.from_uri(scheme_and_authority + "/")[0]
    except (ValueError, OSError, ImportError) as native:
        try:
            import fsspec
            from pyarrow.fs import FSSpecHandler, PyFileSystem
        except ImportError:
            raise OSError(f"no filesystem for {scheme_and_authority} ({native})") from None
        scheme = scheme_and_authority.split("://", 1)[0]
        return PyFileSystem(FSSpecHandler(fsspec.filesystem(scheme)))


def short_reason(text: str) -> str:
    """An object store's error as the line a user needs: pyarrow's AWS text ("When listing objects under
    key 'in/' in bucket 'b': AWS Error NO_SUCH_BUCKET during ListObjectsV2 operation: The specified bucket
    does not exist (Request ID: ...)") becomes "bucket 'b': the specified bucket does not exist
    (NO_SUCH_BUCKET)"; any other text is kept as it is."""
    import re

    found = re.search(r"AWS Error (\w+) during \w+ operation: ?(.*?)(?: \(Request ID: [^)]*\))?\s*$", text, re.S)
    if found is None:
        return text
    code, message = found.group(1), found.group(2).strip().rstrip(".")
    message = message[:1].lower() + message[1:] if message else code.replace("_", " ").lower()
    bucket = re.search(r"in bucket '([^']+)'", text)
    return f"{f'bucket {bucket.group(1)!r}: ' if bucket else ''}{message} ({code})"


def _plain_errors(method):
    """The remote operation's OSError with its reason shortened (see short_reason)."""
    import functools

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except OSError as exc:
            shorter = short_reason(str(exc))
            if shorter == str(exc):
                raise
            raise OSError(shorter) from None

    return wrapper


class RemotePath:
    """A file or folder on a remote filesystem, named by its URI; what the stages need of a Path."""

    def __init__(self, uri: str):
        scheme, rest = uri.split("://", 1)
        self.scheme = scheme.lower()
        self.key = posixpath.normpath(rest).lstrip("/") if rest.strip("/") else ""
        if self.key == ".":
            self.key = ""

    @property
    def uri(self) -> str:
        return f"{self.scheme}://{self.key}"

    @property
    def fs(self):
        return _filesystem(f"{self.scheme}://{self.key.split('/', 1)[0]}")

    def __str__(self) -> str:
        return self.uri

    def __repr__(self) -> str:
        return f"RemotePath({self.uri!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, RemotePath) and other.uri == self.uri

    def __hash__(self) -> int:
        return hash(self.uri)

    def __truediv__(self, part) -> RemotePath:
        part = str(part)
        return RemotePath(f"{self.scheme}://{self.key}/{part}" if part not in ("", ".") else self.uri)

    def __reduce__(self):  # to Ray's workers: the URI alone (the filesystem is made again there)
        return RemotePath, (self.uri,)

    @property
    def parent(self) -> RemotePath:
        return RemotePath(f"{self.scheme}://{posixpath.dirname(self.key)}")

    @property
    def name(self) -> str:
        return posixpath.basename(self.key)

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.name).suffix

    @property
    def stem(self) -> str:
        return PurePosixPath(self.name).stem

    def with_name(self, name: str) -> RemotePath:
        return self.parent / name

    def relative(self) -> Path:
        """Where this object sits under an output folder: its bucket and key, as a URL's host and path."""
        return Path(self.key)

    def is_absolute(self) -> bool:
        return True

    def absolute(self) -> RemotePath:
        return self

    def resolve(self) -> RemotePath:
        return self

    @_plain_errors
    def _type(self):
        from pyarrow.fs import FileType

        kind = self.fs.get_file_info(self.key).type
        return {FileType.File: "file", FileType.Directory: "dir"}.get(kind)

    def exists(self) -> bool:
        return self._type() is not None

    def is_dir(self) -> bool:
        return self._type() == "dir"

    def is_file(self) -> bool:
        return self._type() == "file"

    @_plain_errors
    def files(self) -> list[RemotePath]:
        """Every file below this folder, in sorted order."""
        from pyarrow.fs import FileSelector, FileType

        found = self.fs.get_file_info(FileSelector(self.key, recursive=True))
        return sorted((RemotePath(f"{self.scheme}://{i.path}") for i in found if i.type == FileType.File), key=str)

    @_plain_errors
    def open_read(self):
        """A buffered binary file (pyarrow's own has no readline)."""
        import io

        return io.BufferedReader(self.fs.open_input_file(self.key), buffer_size=1 << 20)

    @_plain_errors
    def write_bytes(self, data: bytes) -> None:
        """The whole object in one write: readers see the old object or the new one, never part of it."""
        with self.fs.open_output_stream(self.key) as stream:
            stream.write(data)

    @_plain_errors
    def unlink(self) -> None:
        self.fs.delete_file(self.key)


def location(value) -> Path | RemotePath:
    """A path as the user typed it: a remote URI, or a local Path."""
    if isinstance(value, (Path, RemotePath)):
        return value
    return RemotePath(str(value)) if is_remote(str(value)) else Path(value)


def open_read(path: Path | RemotePath):
    """A binary file object, local or remote."""
    return path.open_read() if isinstance(path, RemotePath) else open(path, "rb")  # noqa: SIM115
