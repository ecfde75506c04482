"""Result cache: summaries kept in SQLite, keyed by the text and everything that shapes its summary."""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path

from summarize_cli import __version__
from summarize_cli.dirs import cache_dir
from summarize_cli.outputs.records import CACHE_SCHEMA


def results_path() -> Path:
    return cache_dir() / "results.sqlite3"


class ResultCache:
    """get/put by key; any SQLite trouble (corrupt, locked, read-only) turns the cache off with a warning."""

    def __init__(self, path: Path | None = None):
        self.path = path or results_path()
        self.warning: str | None = None
        self._db: sqlite3.Connection | None = None
        # the worker thread stores results while the main thread may close the cache (a signal stopped the
        # run): closing a connection in use crashes SQLite, so every use holds this lock
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # used by one thread at a time, but not always the one that opened it (see worker.py)
            db = sqlite3.connect(self.path, timeout=2.0, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._db = db
        except (sqlite3.Error, OSError) as exc:
            self._disable(exc)

    @property
    def enabled(self) -> bool:
        return self._db is not None

    def _disable(self, exc: Exception) -> None:
        self.warning = f"the result cache at {self.path} is unusable ({exc}); continuing without it"
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
        self._db = None

    def get(self, key: str) -> dict | None:
        with self._lock:
            if self._db is None:
                return None
            try:
                row = self._db.execute("SELECT value FROM results WHERE key = ?", (key,)).fetchone()
            except sqlite3.Error as exc:
                self._disable(exc)
                return None
        try:
            return json.loads(row[0]) if row else None
        except ValueError:
            return None

    def put(self, key: str, value: dict) -> None:
        text = json.dumps(value, ensure_ascii=False)
        with self._lock:
            if self._db is None:
                return
            try:
                self._db.execute("INSERT OR REPLACE INTO results (key, value) VALUES (?, ?)", (key, text))
            except sqlite3.Error as exc:
                self._disable(exc)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._db.close()
                self._db = None


class CacheStage:
    """The result cache as a stage around a summarizer: hits replace their documents before it (it passes
    them through in place), fresh results are stored after it. Used by the local run and by Ray's driver,
    so on a cluster only the driver touches SQLite."""

    def __init__(self, cache: ResultCache, run_info: dict, choices: dict):
        self.cache = cache
        settings = run_info["settings"]
        # unseeded sampling varies (the extractive method's settings have neither)
        self.active = not (settings.get("do_sample") and settings.get("seed") is None)
        self.context = {**run_info, **choices}
        self._pending: deque[str] = deque()  # keys of the documents sent on, in order

    def around(self, summarize, items: Iterable) -> Iterator:
        """`summarize(items)` with hits answered from the cache and fresh results kept in it."""
        return self.store(summarize(self.lookup(items)))

    def lookup(self, items: Iterable) -> Iterator:
        from summarize_cli.documents import Document
        from summarize_cli.outputs.records import from_cache

        for item in items:
            if self.active and isinstance(item, Document):
                key = result_key(item.text, self.context)
                hit = self.cache.get(key)
                if hit is not None:
                    yield from_cache(item, hit)
                    continue
                self._pending.append(key)
            yield item

    def store(self, results: Iterable) -> Iterator:
        from summarize_cli.documents import Result
        from summarize_cli.outputs.records import cache_value

        for result in results:
            if self.active and isinstance(result, Result) and not result.cached:
                self.cache.put(self._pending.popleft(), cache_value(result))
            yield result


def result_key(text: str, context: dict) -> str:
    """sha256 of the text and of the run context (model, revision, backend, precision, settings, version)."""
    digest = hashlib.sha256()
    stamp = {"tool_version": __version__, "schema": CACHE_SCHEMA}
    digest.update(json.dumps({**context, **stamp}, sort_keys=True).encode())
    digest.update(b"\0")
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def clear() -> Path:
    """Delete the cached results (converted models are kept)."""
    path = results_path()
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            Path(str(path) + suffix).unlink()
    return path
