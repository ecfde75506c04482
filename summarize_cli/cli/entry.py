"""The console entry point: `summarize --version` answers before anything heavy is imported."""

from __future__ import annotations

import os
import sys


def main() -> None:
    if sys.argv[1:] in (["--version"],):
        from summarize_cli import __version__

        code = _written(f"summarize-cli {__version__}\n")
        if code:  # the interpreter's own flush at exit would fail again, loudly
            os._exit(code)
        return
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
