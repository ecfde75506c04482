"""Run the model's work in a worker thread, so the main thread stays free to take Ctrl-C and SIGTERM.

Python runs signal handlers only in the main thread and only between bytecodes: a long native call (a model
load, a conversion, a generate() with a large --max-length) would delay them for minutes. Here the native
work runs in a daemon thread; the main thread only waits, in short slices, and so stops within a fraction
of a second. The CLI then exits without waiting for the worker (see cli.main).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_SLICE = 0.1  # seconds the main thread waits at a time
_DONE = object()


def call(function: Callable[[], T]) -> T:
    """`function()` in a worker thread; its exception, if any, is raised here."""
    finished, outcome = _spawn(function, "summarize-worker")
    while not finished.wait(_SLICE):  # not Thread.join: a signal during join() marks the thread stopped
        pass
    return _unwrap(outcome)


def in_background(function: Callable[[], T]) -> Callable[[], T]:
    """Start `function()` in a daemon thread now; the returned call waits for its value (or raises its
    exception). For native work that releases the GIL, so two loads overlap."""
    finished, outcome = _spawn(function, "summarize-loader")

    def wait() -> T:
        finished.wait()
        return _unwrap(outcome)

    return wait


def _spawn(function: Callable[[], T], name: str) -> tuple[threading.Event, list]:
    outcome: list = []
    finished = threading.Event()

    def target() -> None:
        try:
            outcome.append((True, function()))
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits, as it is
            outcome.append((False, exc))
        finally:
            finished.set()

    _start(target, name)
    return finished, outcome


def _unwrap(outcome: list):
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


def iterate(items: Iterable[T], ahead: int = 64) -> Iterator[T]:
    """The items of `items`, produced in a worker thread at most `ahead` in advance, from the first next()."""
    early = Ahead(items, ahead)
    try:
        yield from early
    finally:
        early.close()


class Ahead:
    """The items of `items`, produced in a worker thread from now on, at most `ahead` in advance: inputs
    are read (and their languages detected) while the model loads, instead of after it. close() lets the
    producer end when the consumer stops early or never starts (a failed model load)."""

    def __init__(self, items: Iterable[T], ahead: int = 64):
        self._handoff: queue.Queue = queue.Queue(maxsize=ahead)
        self._stop = threading.Event()
        self._items = items
        _start(self._produce)

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._handoff.put(item, timeout=_SLICE)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for item in self._items:
                if not self._put((True, item)):
                    return
            self._put((True, _DONE))
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread as it is
            self._put((False, exc))

    def __iter__(self) -> Iterator[T]:
        try:
            while True:
                try:
                    ok, item = self._handoff.get(timeout=_SLICE)
                except queue.Empty:
                    continue
                if not ok:
                    raise item
                if item is _DONE:
                    return
                yield item
        finally:
            self.close()  # a consumer that stops early (a signal, a closed pipe) lets the producer end

    def close(self) -> None:
        self._stop.set()


def _start(target: Callable[[], None], name: str = "summarize-worker") -> None:
    threading.Thread(target=target, name=name, daemon=True).start()


_LEFTOVERS: set = set()


def leave_behind_nothing(path) -> None:
    """Register a temporary path (a conversion in progress) to remove if the process exits mid-way."""
    _LEFTOVERS.add(path)


def done_with(path) -> None:
    _LEFTOVERS.discard(path)


def cleanup() -> None:
    """Remove what an interrupted worker left half-made."""
    import shutil

    for path in list(_LEFTOVERS):
        shutil.rmtree(path, ignore_errors=True)
    _LEFTOVERS.clear()
