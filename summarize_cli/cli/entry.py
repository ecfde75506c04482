"""The console entry point: `summarize --version` answers before anything heavy is imported."""

from __future__ import annotations

import errno
import io
import os
import sys


def main() -> None:
    _hold_closed_streams()
    if sys.argv[1:] in (["--version"],):
        from summarize_cli import __version__

        code = _written(f"summarize-cli {__version__}\n")
        if code:  # the interpreter's own flush at exit would fail again, loudly
            os._exit(code)
        return
    from summarize_cli import signals

    signals.hold_until_installed()  # no signal breaks into the imports below: the run says it, 130 or 143
    from summarize_cli.cli import early

    early.start(sys.argv[1:])  # the model's load, beside the imports and parsing below
    from summarize_cli.cli.app import main as run

    run()


def _written(text: str) -> int:
    """0, or the exit code for a stdout that cannot take `text` (as summarize_cli.cli.app.flush_output does,
    without importing the CLI)."""
    from summarize_cli.errors import EXIT_SIGPIPE, stdout_failed

    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        return EXIT_SIGPIPE
    except OSError as exc:
        sys.stderr.write(f"Error: {stdout_failed(exc)}\n")
        return 1
    return 0


class _ClosedStdout(io.TextIOBase):
    """Stands in for a stdout the shell closed (`>&-`): writing fails as writing to fd 1 would (EBADF),
    so the one `cannot write to standard output` line and exit 1 follow, while a run that prints nothing
    (`-o DIR`) succeeds."""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))

    def isatty(self) -> bool:
        return False


def _hold_closed_streams() -> None:
    """Python sets sys.stdin/stdout/stderr to None for a closed fd 0/1/2, and the next file opened would
    take that number (a child process would then write its output into it). Hold each closed one with
    /dev/null; a closed stderr stays quiet (a success still exits 0), a closed stdout refuses writes."""
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        if getattr(sys, name) is not None:
            continue
        try:
            held = os.open(os.devnull, os.O_RDWR)
        except OSError:
            held = -1
        if held not in (-1, fd):  # a lower fd was free too: put it where it belongs
            os.dup2(held, fd)
            os.close(held)
        if name == "stdout":
            sys.stdout = _ClosedStdout()
        else:
            setattr(sys, name, open(os.devnull, "r" if fd == 0 else "w", encoding="utf-8"))  # noqa: SIM115
