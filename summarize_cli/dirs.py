"""Where the tool keeps what outlives a run: converted models, cached results, the language model, logs."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The folder for converted models and cached results (SUMMARIZE_CACHE_DIR overrides)."""
    from platformdirs import user_cache_dir

    return Path(os.environ.get("SUMMARIZE_CACHE_DIR") or user_cache_dir("summarize-cli"))
