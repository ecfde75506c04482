"""The cache and config folders: where platformdirs puts them, found without importing it on Linux."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

SETTINGS = [
    {},
    {"XDG_CACHE_HOME": "{tmp}/xdg-cache", "XDG_CONFIG_HOME": "{tmp}/xdg-config"},
    {"XDG_CACHE_HOME": "  ", "XDG_CONFIG_HOME": ""},  # blank: as if unset
]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fast path is Linux's")
@pytest.mark.parametrize("settings", SETTINGS, ids=["defaults", "xdg", "blank-xdg"])
def test_the_folders_are_where_platformdirs_puts_them(settings, tmp_path, monkeypatch):
    from platformdirs import user_cache_dir, user_config_dir

    from summarize_cli.cli.config import config_path
    from summarize_cli.dirs import cache_dir

    for name in ("SUMMARIZE_CACHE_DIR", "SUMMARIZE_CONFIG", "XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    for name, value in settings.items():
        monkeypatch.setenv(name, value.format(tmp=tmp_path))
    assert cache_dir() == Path(user_cache_dir("summarize-cli"))
    assert config_path() == Path(user_config_dir("summarize-cli")) / "config.toml"
    assert str(cache_dir()).startswith(str(tmp_path))
    for blank in ("", "   "):  # as if unset, never a folder named by spaces
        monkeypatch.setenv("SUMMARIZE_CACHE_DIR", blank)
        monkeypatch.setenv("SUMMARIZE_CONFIG", blank)
        assert cache_dir() == Path(user_cache_dir("summarize-cli"))
        assert config_path() == Path(user_config_dir("summarize-cli")) / "config.toml"
    monkeypatch.setenv("SUMMARIZE_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"


def test_a_run_does_not_import_platformdirs(tmp_path):
    """The cache folder is asked for at every start (the conversion's and the results' caches)."""
    import subprocess

    code = "import sys; from summarize_cli.dirs import cache_dir; cache_dir(); print('platformdirs' in sys.modules)"
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ("False" if sys.platform.startswith("linux") else "True")
