"""Ctrl-C and SIGTERM, as the CLI takes them: each raises in the main thread (KeyboardInterrupt,
Terminated), except inside `deferred()`, which holds it until a record or file is written whole, or
for GRACE seconds at most: a write to a pipe whose reader has stopped reading never ends, and a stop
must not wait on it.

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
_overdue = False  # a held signal waited GRACE seconds: it no longer waits for the write
_cut = False  # the stop broke into a write (see cut_short)
GRACE = 0.5  # seconds: a record or a file takes milliseconds to write; a stuck reader takes forever


_starting = False  # from the process's start to install(): a signal is noted, and raised by install()


def hold_until_installed() -> None:
    """From the console script's start until install(): a signal is noted, not raised. The start imports
    modules in the main thread, and an import a signal breaks into stays broken (CTranslate2's native
    module half made, then taken for absent; Python's import lock held, and the next import waiting on
    it for ever); install() raises it where the command line's run can say so and exit 130 or 143."""
    global _starting
    _starting = True
    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)


def install() -> None:
    """Make SIGINT and SIGTERM raise, honouring deferral (called by the console entry point); a signal
    noted since hold_until_installed() is raised here."""
    global _starting
    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
    if _starting:
        _starting = False
        if _held and not _stopping:
            _raise(_held[0])


def _handler(signum, frame) -> None:
    if _stopping:  # a second Ctrl-C or TERM while the run winds down changes nothing
        return
    if _starting:
        _held.append(signum)
        return
    if _depth and not _overdue:
        _held.append(signum)
        if len(_held) == 1:
            _start_grace(signum)
        return
    _raise(signum)


def _start_grace(signum: int) -> None:
    """After GRACE seconds, if the write still holds the signal, send it again to the main thread
    itself (where the write is, and where Python runs handlers): its blocked write() returns EINTR and
    the handler, the signal now overdue, raises there."""
    import threading

    main = threading.main_thread().ident

    def overdue() -> None:
        global _overdue
        if _depth and _held and not _stopping:
            _overdue = True
            signal.pthread_kill(main, signum)

    timer = threading.Timer(GRACE, overdue)
    timer.daemon = True
    timer.start()


def _raise(signum: int) -> None:
    global _stopping, _cut
    _stopping = True
    _cut = bool(_depth)
    _held.clear()
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated()


def cut_short() -> bool:
    """Whether the stop came in the middle of a write: the record then being written (to stdout, whose
    reader had stopped reading) may be cut short; files are written whole or not at all."""
    return _cut


@contextlib.contextmanager
def deferred():
    """Hold Ctrl-C and SIGTERM until the block ends, then act on the first that came."""
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if not _depth and _held and not _stopping:
            _raise(_held[0])
