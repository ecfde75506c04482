"""What a person sees: the real entry point in a pseudo-terminal, the screen read back with pyte."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pyte = pytest.importorskip("pyte", reason="the [test] extra is not installed")

LAUNCHER = Path(__file__).parent / "slow_launcher.py"
QUICK = ["--max-length", "8", "--min-length", "2", "--num-beams", "1"]


class Terminal:
    """A process whose stdin, stdout and stderr are one pseudo-terminal of `cols` x `rows`."""

    def __init__(self, args: list[str], env: dict, cols: int = 100, rows: int = 40, cwd=None):
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        master, slave = pty.openpty()
        os.set_blocking(master, False)
        import fcntl
        import struct
        import termios

        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.master = master
        self.proc = subprocess.Popen(
            args,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**env, "TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(rows)},
            cwd=cwd,
            start_new_session=True,
        )
        os.close(slave)

    def pump(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                try:
                    data = os.read(self.master, 65536)
                except OSError:
                    return
                if not data:
                    return
                self.stream.feed(data)
            elif self.proc.poll() is not None:
                return

    def wait_for(self, text: str, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while text not in "\n".join(self.lines()):
            if time.monotonic() > deadline or self.proc.poll() is not None and not self._more():
                raise AssertionError(f"{text!r} never appeared:\n" + "\n".join(self.lines()))
            self.pump(0.1)

    def _more(self) -> bool:
        ready, _, _ = select.select([self.master], [], [], 0.2)
        return bool(ready)

    def finish(self, seconds: float = 120) -> int:
        deadline = time.monotonic() + seconds
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.pump(0.1)
        self.pump(0.5)  # what was written just before exit
        code = self.proc.wait(timeout=5)
        os.close(self.master)
        return code

    def lines(self) -> list[str]:
        """The screen's text, without trailing blank lines."""
        shown = [line.rstrip() for line in self.screen.display]
        while shown and not shown[-1]:
            shown.pop()
        return shown


def env_for(tiny_model, tmp_path, **extra) -> dict:
    return {
        **os.environ,
        "TINY_MODEL": str(tiny_model),
        "SLOW": "generate",
        "STALL_AFTER": "1000",
        "HF_HUB_OFFLINE": "1",
        "SUMMARIZE_CACHE_DIR": str(tmp_path / "cache"),
        **extra,
    }


def launch(tmp_path, tiny_model, *args, cols: int = 100, **env) -> Terminal:
    command = [sys.executable, str(LAUNCHER), "-m", "slow", *args, *QUICK]
    return Terminal(command, env_for(tiny_model, tmp_path, **env), cols=cols)


def summary_of(tiny_model, tmp_path, path: Path, *args: str) -> str:
    """What the fake engine says for one file, asked without a terminal."""
    done = subprocess.run(
        [sys.executable, str(LAUNCHER), "-m", "slow", str(path), *QUICK, "--no-cache", *args],
        env=env_for(tiny_model, tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def folder_of(tmp_path, count: int) -> Path:
    folder = tmp_path / "news"
    folder.mkdir()
    for i in range(count):
        (folder / f"s{i}.txt").write_text(f"Story {i}: the harbour ferry returns on Monday, the council said.")
    return folder


def test_a_one_off_in_a_terminal_is_one_clean_line(tiny_model, tmp_path, samples):
    article = samples / "harbour-ferry.txt"
    expected = summary_of(tiny_model, tmp_path, article)
    term = launch(tmp_path, tiny_model, str(article))
    assert term.finish() == 0
    assert term.lines() == [expected]


def test_a_folder_in_a_terminal_has_clean_headers_and_nothing_stale(tiny_model, tmp_path):
    folder = folder_of(tmp_path, 3)
    expected = [summary_of(tiny_model, tmp_path, folder / f"s{i}.txt") for i in range(3)]
    term = launch(tmp_path, tiny_model, str(folder))
    assert term.finish() == 0
    assert term.lines() == [
        f"==> {folder / 's0.txt'} <==",
        expected[0],
        "",
        f"==> {folder / 's1.txt'} <==",
        expected[1],
        "",
        f"==> {folder / 's2.txt'} <==",
        expected[2],
    ]


def test_stdout_piped_to_the_terminal_leaves_no_progress_line(tiny_model, tmp_path):
    """`summarize news/ | cat` with stderr on the terminal: the display steps aside for each record and is
    gone at the end (it was never erased, and cat's first line was glued to it)."""
    import shlex

    folder = folder_of(tmp_path, 3)
    expected = [summary_of(tiny_model, tmp_path, folder / f"s{i}.txt") for i in range(3)]
    command = [sys.executable, str(LAUNCHER), "-m", "slow", str(folder), *QUICK, "--no-cache"]
    shell = " ".join(shlex.quote(word) for word in command) + " | cat; echo END"
    term = Terminal(["sh", "-c", shell], env_for(tiny_model, tmp_path))
    assert term.finish() == 0
    assert term.lines() == [
        f"==> {folder / 's0.txt'} <==",
        expected[0],
        "",
        f"==> {folder / 's1.txt'} <==",
        expected[1],
        "",
        f"==> {folder / 's2.txt'} <==",
        expected[2],
        "END",
    ]


def test_an_interrupted_run_in_a_terminal_shows_what_was_done(tiny_model, tmp_path):
    folder = folder_of(tmp_path, 3)
    expected = summary_of(tiny_model, tmp_path, folder / "s0.txt")
    term = launch(tmp_path, tiny_model, str(folder), "--batch-size", "1", STALL_AFTER="1")
    term.wait_for(expected)
    term.pump(1.0)
    os.killpg(term.proc.pid, signal.SIGINT)  # Ctrl-C reaches the terminal's foreground process group
    assert term.finish() == 130
    assert term.lines() == [
        f"==> {folder / 's0.txt'} <==",
        expected,
        "Interrupted: 1 summarised, 2 left.",
    ]


def test_warnings_and_summaries_in_a_terminal_each_keep_their_lines(tiny_model, tmp_path, samples):
    long = samples / "river-cleanup-long.txt"
    short = samples / "harbour-ferry.txt"
    term = launch(tmp_path, tiny_model, str(long), str(short), "--long", "truncate", cols=200)
    assert term.finish() == 0
    shown = term.lines()
    assert shown[2].startswith(f"Warning: {long}: truncated from ") and shown[2].endswith("(--long truncate)")
    assert shown[:2] + shown[3:] == [
        f"==> {long} <==",
        summary_of(tiny_model, tmp_path, long, "--long", "truncate"),
        "",
        f"==> {short} <==",
        summary_of(tiny_model, tmp_path, short),
    ]


@pytest.mark.parametrize("command", [[], ["eval"]])
def test_help_renders_every_option_text_and_panel_title_verbatim(command, monkeypatch):
    """Rich must not eat text as markup: `[ray]` in an install hint, `(0, 1]` in a range."""
    from typer.main import get_command
    from typer.testing import CliRunner

    from summarize_cli.cli.app import app

    monkeypatch.setenv("TERMINAL_WIDTH", "400")
    monkeypatch.setenv("COLUMNS", "400")
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    shown = " ".join(result.output.replace("│", " ").replace("─", " ").split())
    group = get_command(app)
    params = group.commands["eval" if command else "summarize"].params
    texts = [p.help for p in params if getattr(p, "help", None)]
    titles = {getattr(p, "rich_help_panel", None) for p in params} - {None}
    for text in [*texts, *titles]:
        assert " ".join(text.replace("\\[", "[").split()) in shown, text
