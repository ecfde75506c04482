"""What a person sees: the real entry point in a pseudo-terminal, the screen read back with pyte."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pyte = pytest.importorskip("pyte", reason="the [test] extra is not installed")

LAUNCHER = Path(__file__).parent / "slow_launcher.py"
ROOT = Path(__file__).parent.parent
QUICK = ["--max-length", "8", "--min-length", "2", "--num-beams", "1"]


class Terminal:
    """A process whose stdin, stdout and stderr are one pseudo-terminal of `cols` x `rows`."""

    def __init__(self, args: list[str], env: dict, cols: int = 100, rows: int = 40, cwd=None):
        self.screen = pyte.HistoryScreen(cols, rows, history=100_000)
        self.stream = pyte.ByteStream(self.screen)
        master, slave = pty.openpty()
        os.set_blocking(master, False)
        import fcntl
        import struct
        import termios

        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.master = master

        def controlling_terminal() -> None:  # as a shell gives it: Ctrl-C typed is the kernel's SIGINT, echoed
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(
            args,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**env, "TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(rows)},
            cwd=cwd,
            start_new_session=True,
            preexec_fn=controlling_terminal,
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

    def type(self, keys: bytes) -> None:
        """Keys typed at the terminal: b"\\x03" is Ctrl-C, which the terminal turns into SIGINT and echoes."""
        os.write(self.master, keys)

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
        return screen_lines(self.screen)

    def transcript(self) -> list[str]:
        """Every line the terminal shows or has scrolled off its top, as a person scrolling back sees it."""
        return scrollback(self.screen) + self.lines()


def screen_lines(screen) -> list[str]:
    shown = [line.rstrip() for line in screen.display]
    while shown and not shown[-1]:
        shown.pop()
    return shown


def scrollback(screen) -> list[str]:
    """The lines pushed off the screen's top, rendered as `display` renders the screen's own."""
    rendered = []
    for line in screen.history.top:
        text, wide = [], False
        for x in range(screen.columns):
            if wide:  # the stub cell behind a double-width character
                wide = False
                continue
            text.append(line[x].data)
            wide = pyte.screens.wcwidth(line[x].data[0]) == 2
        rendered.append("".join(text).rstrip())
    return rendered


def as_typed(output: bytes, cols: int, rows: int) -> list[str]:
    """What a terminal of this size shows for a plain stream of lines: the transcript a run with no
    display leaves (the tty turns each \\n into \\r\\n)."""
    screen = pyte.HistoryScreen(cols, rows, history=100_000)
    pyte.ByteStream(screen).feed(output.replace(b"\n", b"\r\n"))
    return scrollback(screen) + screen_lines(screen)


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


def summary_of(tiny_model, tmp_path, path: Path, *args: str, **env: str) -> str:
    """What the fake engine says for one file, asked without a terminal."""
    done = subprocess.run(
        [sys.executable, str(LAUNCHER), "-m", "slow", str(path), *QUICK, "--no-cache", *args],
        env=env_for(tiny_model, tmp_path, **env),
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


WIDTHS = [40, 60, 80, 100, 200]


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("cols", WIDTHS)
def test_the_readme_first_command_leaves_every_summary_whole_at_any_width(cols, fmt, tmp_path):
    """`summarize samples/` (extractive, offline, English and Chinese; text and json) in a 24-line terminal: the screen
    and its scrollback hold exactly what the run writes without a display, line for line. The progress
    display wrapped to two lines at 60 columns or less, and each redraw then erased the last screen line
    of the summary written above it."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "SUMMARIZE_CACHE_DIR": str(tmp_path / "c"),
    }
    command = [sys.executable, "-m", "summarize_cli", "samples/", "-f", fmt, "--no-cache"]
    plain = subprocess.run(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    assert plain.returncode == 0, plain.stdout
    # json: each record's last line ("  }") is written with what follows, so the display, drawn after a
    # record, never lands on a half-written line (it did, and a copy of it stayed after every record)
    assert plain.stdout.decode().count("==> samples/" if fmt == "text" else '"source": "samples/') == 6
    term = Terminal(command, env, cols=cols, rows=24, cwd=ROOT)
    assert term.finish() == 0

    def untimed(lines: list[str]) -> list[str]:  # each run's own timing, on a line of its own
        return [re.sub(r'"seconds": [0-9.e-]+', '"seconds": S', line) for line in lines]

    assert untimed(term.transcript()) == untimed(as_typed(plain.stdout, cols, 24))


STORY = (
    "The harbour ferry returns on Monday after three years, the council said, and the night crossings "
    "were chosen after a survey of residents who work evening shifts. "
    "社区图书馆周末开放时间延长，居民可以在晚上借书，志愿者也会帮助老人使用电脑。"
)


@pytest.mark.parametrize("cols", WIDTHS)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_stopped_run_leaves_its_summary_whole_and_no_display_at_any_width(cols, signum, tiny_model, tmp_path):
    """Ctrl-C (to the foreground group, as the terminal sends it) and SIGTERM while the third of four
    documents is stuck in native code: the summaries before it, long enough to wrap, stay whole (the
    second is written under a display that has a rate, two lines wide on an old narrow screen), the
    display is gone, and the stop's line is the last."""
    folder = tmp_path / "news"
    folder.mkdir()
    for i in range(4):
        (folder / f"s{i}.txt").write_text(f"{i}. {STORY}", encoding="utf-8")
    long = ["--max-length", "80", "--no-cache"]
    done = [summary_of(tiny_model, tmp_path, folder / f"s{i}.txt", *long, SLOW_KEEP="60") for i in range(2)]
    assert min(map(len, done)) > 80, done  # each wraps even at 80 columns
    mark = tmp_path / "stalled"
    command = [sys.executable, str(LAUNCHER), "-m", "slow", str(folder), "--batch-size", "1", *QUICK, *long]
    env = env_for(tiny_model, tmp_path, STALL_AFTER="2", SLOW_KEEP="60", STALL_MARK=str(mark))
    term = Terminal(command, env, cols=cols)
    deadline = time.monotonic() + 60
    while not mark.exists():
        assert time.monotonic() < deadline and term.proc.poll() is None, term.lines()
        term.pump(0.1)
    term.pump(1.0)  # the display redrawn after the record, as a person would see it when pressing Ctrl-C
    if signum == signal.SIGINT:
        term.type(b"\x03")  # typed: the terminal echoes "^C" after the display, which must not wrap past it
    else:
        os.kill(term.proc.pid, signum)
    assert term.finish() == 128 + signum
    word = "Interrupted" if signum == signal.SIGINT else "Terminated"
    typed = f"==> {folder / 's0.txt'} <==\n{done[0]}\n\n==> {folder / 's1.txt'} <==\n{done[1]}\n"
    typed += f"{word}: 2 summarised, 2 left.\n"
    assert term.transcript() == as_typed(typed.encode(), cols, 40)


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


@pytest.mark.parametrize("cols", [8, 12, 20, 30, 40, 50, 60, 70, 80, 100, 200])
def test_the_progress_display_is_one_line_short_of_the_width(cols, monkeypatch):
    """Drawn at every width with a long count, a rate and an ETA: one line, three columns short of the
    screen (a line that fills it leaves the cursor in the last column, where terminals differ, and the
    terminal's "^C" echo must fit after it)."""
    import io

    from rich.console import Console

    from summarize_cli.cli import common

    console = Console(file=io.StringIO(), width=cols, force_terminal=True, color_system=None)
    monkeypatch.setattr(common.LazyConsole, "_console", console)
    progress = common.progress_bar(True)
    task = progress.add_task("Summarising (a long label for a compared run)", total=12345)
    progress.update(task, completed=678)
    console.print(progress.make_tasks_table(progress.tasks))
    lines = console.file.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert 0 < console.measure(lines[0]).maximum <= cols - 3
    shown = progress.make_tasks_table(progress.tasks).columns
    if cols >= 40:  # room for the count and the bar (5% drawn: its head): neither is given up
        assert "678/12345" in lines[0] and {"━", "╸"} & set(lines[0]) and len(shown) >= 4
