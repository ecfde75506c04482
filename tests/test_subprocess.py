"""The installed command as a real process: pipes, a closed stdout, signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import GENERATE, run


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "summarize_cli", *args]


def env_for(model) -> dict:
    return {**os.environ, "SUMMARIZE_MODEL": str(model), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def test_cat_file_into_summarize(tiny_model, env_model, samples):
    shell = f"cat {samples / 'harbour-ferry.txt'} | {' '.join(command(*GENERATE))}"
    done = subprocess.run(shell, shell=True, capture_output=True, text=True, env=env_for(tiny_model), timeout=120)
    assert done.returncode == 0, done.stderr
    # exactly what the same run makes in process from the same text: one summary, nothing else on stdout
    same = run([*GENERATE], input=(samples / "harbour-ferry.txt").read_text(encoding="utf-8"))
    assert same.exit_code == 0, same.stderr
    assert done.stdout == same.stdout and len(done.stdout.splitlines()) == 1
    assert done.stderr == ""  # no progress bar (not a terminal), no library warnings


@pytest.mark.parametrize("force", ["FORCE_COLOR", "TTY_COMPATIBLE"])
def test_forced_colour_writes_no_live_display_into_a_redirected_stderr(tiny_model, samples, tmp_path, force):
    """FORCE_COLOR=1 (many CI systems set it) made Rich take a stderr file for a terminal: the live display's
    spinner and cursor codes went into the file."""
    log = tmp_path / "stderr.log"
    files = [str(samples / "harbour-ferry.txt"), str(samples / "solar-school.txt")]
    with log.open("wb") as err:
        done = subprocess.run(
            command(*GENERATE, "--no-cache", *files),
            stdout=subprocess.PIPE,
            stderr=err,
            env={**env_for(tiny_model), force: "1"},
            timeout=120,
        )
    assert done.returncode == 0, log.read_text()
    assert done.stdout.decode().count("==> ") == 2
    assert log.read_bytes() == b""  # no spinner, no progress line, no escape code


def test_closed_stdout_ends_quietly(tiny_model, tmp_path):
    # far more output than a pipe holds (64 KiB) plus what `head` reads: the writer must meet the closed pipe
    name = "about-the-ferry-and-the-harbour-" * 6
    for i in range(500):
        (tmp_path / f"doc{i:03}-{name}.txt").write_text(f"Article number {i} about the ferry and the harbour.")
    summarize = " ".join(command("-f", "jsonl", *GENERATE, "--no-cache", "--batch-size", "1", str(tmp_path)))
    everything = subprocess.run(
        f"{summarize} | wc -c", shell=True, capture_output=True, text=True, env=env_for(tiny_model), timeout=120
    )
    assert int(everything.stdout) > 4 * 65536, everything.stderr
    done = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {summarize} | head -n 1"],
        capture_output=True,
        text=True,
        env=env_for(tiny_model),
        timeout=120,
    )
    assert json.loads(done.stdout)["source"].endswith(f"doc000-{name}.txt")
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr
    assert done.stderr == ""
    assert done.returncode == 141  # 128 + SIGPIPE, as `yes | head -n 1` under pipefail


@pytest.mark.parametrize(
    ("sig", "code", "word"), [(signal.SIGINT, 130, "Interrupted"), (signal.SIGTERM, 143, "Terminated")]
)
def test_signal_stops_promptly_and_keeps_finished_summaries(tiny_model, tmp_path, sig, code, word):
    feed = tmp_path / "feed.jsonl"
    feed.write_text(
        "".join(json.dumps({"id": f"d{i}", "text": f"Article {i} about the harbour."}) + "\n" for i in range(400))
    )
    proc = subprocess.Popen(
        command(
            "--stdin-format",
            "jsonl",
            "-f",
            "jsonl",
            "--batch-size",
            "1",
            "--max-length",
            "40",
            "--min-length",
            "40",
            "--force",  # these short texts are to be summarised, slowly, not passed through
        ),
        stdin=feed.open("rb"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env_for(tiny_model),
    )
    first = proc.stdout.readline()
    assert json.loads(first)["source"] == "d0"
    proc.send_signal(sig)
    started = time.monotonic()
    rest = proc.stdout.read()  # not communicate(): it would skip what readline() left in the buffer
    err = proc.stderr.read()
    proc.wait(timeout=60)
    assert time.monotonic() - started < 10
    assert proc.returncode == code
    assert "Traceback" not in err
    finished = [json.loads(line) for line in (first + rest).splitlines()]
    assert 1 <= len(finished) < 400
    # stdin: no count of what is left; a record is written and counted as one (a signal waits for both)
    reported = int(err.strip().splitlines()[-1].removeprefix(f"{word}: ").removesuffix(" summarised."))
    assert reported == len(finished), err
    assert [r["source"] for r in finished] == [f"d{i}" for i in range(len(finished))]


def test_help_does_not_import_torch_or_transformers():
    code = (
        "import sys; from summarize_cli.cli.app import run; sys.argv=['summarize','--help'];\n"
        "assert run() == 0\n"
        "print(sorted(m for m in ('torch','transformers','ctranslate2') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["config"]])
def test_a_closed_stdout_is_one_clear_line_and_exit_1(args):
    """`summarize --version >&-` once ended in a traceback: Python gives a closed fd 1 as sys.stdout None."""
    done = subprocess.run(
        ["bash", "-c", '"$@" >&-', "bash", *command(*args)], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stderr) == (1, "Error: cannot write to standard output: Bad file descriptor\n")


def test_closed_streams_in_a_real_run(tiny_model, samples, tmp_path):
    """A closed stderr keeps a success a success (it was exit 1); a closed stdout fails a run that prints
    (one line, exit 1) but not one whose summaries go to files."""
    article = str(samples / "harbour-ferry.txt")
    env = env_for(tiny_model)

    def shell(redirect: str, *args: str):
        return subprocess.run(
            ["bash", "-c", f'"$@" {redirect}', "bash", *command(*GENERATE, *args)],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )

    quiet = shell("2>&-", article, "-f", "jsonl")
    assert quiet.returncode == 0
    assert json.loads(quiet.stdout)["source"] == article
    printed = shell(">&-", article)
    assert printed.returncode == 1
    assert printed.stderr.splitlines()[-1] == "Error: cannot write to standard output: Bad file descriptor"
    assert "Traceback" not in printed.stderr
    to_files = shell(">&-", article, "-o", str(tmp_path / "out"))
    assert (to_files.returncode, to_files.stderr) == (0, f"Wrote 1 summary to {tmp_path / 'out'}.\n")
    [written] = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert written.name == "harbour-ferry.txt.summary.txt" and written.read_text(encoding="utf-8").strip()
