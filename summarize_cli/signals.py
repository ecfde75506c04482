"""Ctrl-C and SIGTERM, as the CLI takes them: each raises in the main thread (KeyboardInterrupt,
Terminated), except inside `deferred()`, which holds it until a record or file is written whole.

Blocking the signals with a mask would not do: a signal the main thread blocks is delivered to another
thread (the model's worker), and Python still runs its handler in the main thread at once.
"""

from __future__ import annotations

import contextlib
import signal

from summarize_cli.errors import Terminated

_held: list[int] = []  # signals that arrived while deferred
_depth = 0
_stopping = False  # the first signal is being acted on: later ones must not interrupt that


def install() -> None:
    """Make SIGINT and SIGTERM raise, honouring deferral (called by the console entry point)."""
    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)


def _handler(signum, frame) -> None:
    if _depth or _stopping:  # a second Ctrl-C or TERM while the run winds down changes nothing
        _held.append(signum)
        return
    _raise(signum)


def _raise(signum: int) -> None:
    global _stopping
    _stopping = True
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated()


@contextlib.contextmanager
def deferred():
    """Hold Ctrl-C and SIGTERM until the block ends, then act on the first that came."""
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if not _depth and _held:
            signum = _held[0]
            _held.clear()
            _raise(signum)
