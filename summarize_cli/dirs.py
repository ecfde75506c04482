"""Where the tool keeps what outlives a run: converted models, cached results, the language model, logs;
and where its config file lives."""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP = "summarize-cli"


def cache_dir() -> Path:
    """The folder for converted models and cached results (SUMMARIZE_CACHE_DIR overrides; blank is unset)."""
    return _named("SUMMARIZE_CACHE_DIR") or _user_folder("XDG_CACHE_HOME", "~/.cache", "user_cache_dir")


def config_file() -> Path:
    """$SUMMARIZE_CONFIG (blank is unset), else config.toml in the user config folder (~/.config/summarize-cli
    on Linux)."""
    return _named("SUMMARIZE_CONFIG") or _user_folder("XDG_CONFIG_HOME", "~/.config", "user_config_dir") / "config.toml"


def _named(variable: str) -> Path | None:
    """The path an environment variable names, or None when it is unset or blank (as a blank XDG one is)."""
    value = os.environ.get(variable, "")
    return Path(value).expanduser() if value.strip() else None


def _user_folder(xdg: str, default: str, platformdirs_call: str) -> Path:
    """This tool's folder of a kind, where platformdirs puts it; on Linux without its 4 ms import at every
    start: the XDG variable, else the default under home."""
    if sys.platform.startswith("linux"):
        return Path(os.environ.get(xdg, "").strip() or os.path.expanduser(default)) / APP
    import platformdirs

    return Path(getattr(platformdirs, platformdirs_call)(APP))
