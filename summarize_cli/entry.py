"""The console entry point: `summarize --version` answers before anything heavy is imported."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] in (["--version"],):
        from summarize_cli import __version__

        sys.stdout.write(f"summarize-cli {__version__}\n")
        return
    from summarize_cli.cli import main as run

    run()
