"""Where the tool keeps what outlives a run: converted models, cached results, the language model, logs."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def cache_dir() -> Path:
    """The folder for converted models and cached results (SUMMARIZE_CACHE_DIR overrides; blank is unset)."""
    if os.environ.get("SUMMARIZE_CACHE_DIR", "").strip():
        return Path(os.environ["SUMMARIZE_CACHE_DIR"]).expanduser()
    if sys.platform.startswith("linux"):  # what platformdirs says there, without its 4 ms import at every start
        base = os.environ.get("XDG_CACHE_HOME", "").strip() or os.path.expanduser("~/.cache")
        return Path(base) / "summarize-cli"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("summarize-cli"))
