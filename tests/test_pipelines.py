"""Pipelines as shells build them: live feeds, per-record flushing, commands and options that mean what
they say, messages people can act on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

LAUNCHER = Path(__file__).parent / "slow_launcher.py"
QUICK = ["--max-length", "8", "--min-length", "2", "--num-beams", "1", "-q"]


def fake_env(tiny_model, tmp_path, **extra) -> dict:
    return {
        **os.environ,
        "TINY_MODEL": str(tiny_model),
        "SLOW": "generate",
        "STALL_AFTER": "100000",
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
        "SUMMARIZE_CACHE_DIR": str(tmp_path / "cache"),
        **extra,
    }


def record(i: int) -> str:
    return json.dumps({"id": f"n{i}", "text": f"News {i}: the harbour ferry returns on Monday, the council said."})


class Lines:
    """stdout of a process, line by line, with a deadline on each."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self._cv = threading.Condition()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            with self._cv:
                self.lines.append(line.rstrip("\n"))
                self._cv.notify_all()

    def wait_for(self, count: int, seconds: float) -> list[str]:
        with self._cv:
            self._cv.wait_for(lambda: len(self.lines) >= count, timeout=seconds)
            return list(self.lines)


@pytest.mark.parametrize("fmt", ["jsonl", "text"])
def test_a_live_feed_is_summarised_record_by_record_while_stdin_stays_open(tiny_model, tmp_path, fmt):
    proc = subprocess.Popen(
        [sys.executable, str(LAUNCHER), "-m", "slow", "--stdin-format", "jsonl", "-f", fmt, *QUICK],
        env=fake_env(tiny_model, tmp_path),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out = Lines(proc.stdout)
    per_record = 1 if fmt == "jsonl" else 3  # text: "==> n0 <==", the summary, a blank line before the next
    try:
        for i in range(3):
            proc.stdin.write(record(i) + "\n")
            proc.stdin.flush()
            started = time.monotonic()
            expected = per_record * i + (1 if fmt == "jsonl" else 2)
            seen = out.wait_for(expected, 20)
            assert len(seen) >= expected, f"record {i} not printed while stdin is open: {seen}"
            assert time.monotonic() - started < 5
        if fmt == "jsonl":
            assert [json.loads(line)["source"] for line in seen] == ["n0", "n1", "n2"]
        else:
            assert [line for line in seen if line.startswith("==>")] == ["==> n0 <==", "==> n1 <==", "==> n2 <=="]
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    assert proc.returncode == 0, proc.stderr.read()


def test_options_before_the_subcommand_apply_to_it(env_model, tmp_path):
    from conftest import run

    data = tmp_path / "ev.jsonl"
    data.write_text(
        json.dumps({"id": "a", "text": "The ferry returns on Monday.", "summary": "The ferry returns."}) + "\n"
    )
    result = run(["--offline", "-q", "eval", str(data), "--max-length", "6", "--min-length", "2", "-f", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [s["system"].split(" [")[0] for s in report["systems"]] == [env_model.name, "Lead-3", "Extractive (LexRank)"]


def test_warnings_of_one_kind_are_counted_past_a_few_and_named_under_verbose(tiny_model, tmp_path):
    folder = tmp_path / "long"
    folder.mkdir()
    text = " ".join(f"Sentence {i} tells of the harbour ferry and the council." for i in range(80))
    for i in range(6):
        (folder / f"a{i}.txt").write_text(f"Article {i}. {text}")
    command = [sys.executable, str(LAUNCHER), "-m", "slow", str(folder), "--long", "truncate", "-f", "jsonl", *QUICK]
    quiet = subprocess.run(command, env=fake_env(tiny_model, tmp_path), capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0, quiet.stderr
    lines = quiet.stderr.splitlines()
    assert [line.split(": truncated from")[0] for line in lines[:3]] == [
        f"Warning: {folder / f'a{i}.txt'}" for i in range(3)
    ]
    assert lines[3:] == [
        "Warning: 3 more documents were truncated to the model's input limit (--long truncate); -v names each."
    ]
    records = [json.loads(line) for line in quiet.stdout.splitlines()]
    assert all(len(r["warnings"]) == 1 and r["warnings"][0].startswith("truncated from") for r in records)

    loud = subprocess.run([*command, "-v"], env=fake_env(tiny_model, tmp_path), capture_output=True, text=True)
    assert loud.returncode == 0, loud.stderr
    named = [line for line in loud.stderr.splitlines() if ": truncated from" in line]
    assert [line.split(": truncated from")[0] for line in named] == [
        f"Warning: {folder / f'a{i}.txt'}" for i in range(6)
    ]
    assert "more document" not in loud.stderr


def test_grammar_and_names_in_the_report(tiny_model, tmp_path):
    feed = "\n".join(
        [
            json.dumps({"id": "one", "text": "The ferry returns on Monday, the council said."}),
            "{broken",
            json.dumps({"text": "No id here: the library opens a reading room."}),
        ]
    )
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, str(LAUNCHER), "-m", "slow", "--stdin-format", "jsonl", "-o", str(out), *QUICK],
        env=fake_env(tiny_model, tmp_path),
        input=feed + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    reason = "not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"
    assert done.stderr.splitlines() == [
        f"Failed <stdin>:2: {reason}",
        f"Wrote 2 summaries to {out}.",
        "1 input failed:",
        f"  <stdin>:2: {reason}",
    ]
    assert sorted(p.name for p in out.iterdir()) == ["line-3.summary.txt", "one.summary.txt"]


def test_a_named_pdf_without_its_extractor_fails_with_the_install_command(env_model, tmp_path, monkeypatch):
    from conftest import run

    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.4\n%%EOF\n")
    monkeypatch.setitem(sys.modules, "pypdf", None)
    named = run([str(pdf), "-q", "--no-cache"])
    assert named.exit_code == 1
    assert f"Failed {pdf}: reading PDF needs pypdf: pip install 'summarize-cli[formats]'" in named.stderr
    walked = run([str(tmp_path), "-q", "--no-cache"])
    assert walked.exit_code == 1 and f"Skipped {pdf}: reading PDF needs pypdf" in walked.stderr


def test_a_corrupt_pdf_is_one_message_naming_the_file(env_model, tmp_path):
    from conftest import run

    pdf = tmp_path / "broken.pdf"
    pdf.write_bytes(b"%PDF-1.4 garbage\n")
    result = run([str(pdf), "-q", "--no-cache"])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        f"Failed {pdf}: corrupt or unreadable PDF (Stream has ended unexpectedly); pdf: EOF marker not found"
    )
    assert "EOF marker not found" not in result.stderr.replace("pdf: EOF marker not found", "")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--clear-cache", "a.txt"], "Invalid value for --clear-cache: empties the cache and exits: give it no inputs"),
        (["--stdin-format", "jsonl", "a.txt"], "Invalid value for --stdin-format: applies to stdin"),
        (["-f", "json", "--output", "x.jsonl", "a.txt"], "Invalid value for -f/--format: --output writes jsonl"),
        (["--output", "res.txt", "a.txt"], "Invalid value for --output: must end in .jsonl or .parquet: res.txt"),
        (["--skip-existing", "a.txt"], "Invalid value for --skip-existing: needs -o/--output-dir or --output"),
    ],
)
def test_options_that_cannot_apply_are_usage_errors(tmp_path, monkeypatch, args, message):
    from conftest import run

    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.txt").write_text("The ferry returns.")
    result = run(args)
    assert result.exit_code == 2
    assert f"Error: {message}" in result.stderr
    assert (tmp_path / "a.txt").read_text() == "The ferry returns." and result.stdout == ""


def test_a_full_stdout_is_cannot_write(tiny_model, tmp_path):
    done = subprocess.run(
        f"{sys.executable} {LAUNCHER} -m slow {' '.join(QUICK)} --stdin-format jsonl > /dev/full",
        shell=True,
        env=fake_env(tiny_model, tmp_path),
        input=record(1) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr == "Error: cannot write to standard output: No space left on device\n"


def test_long_paths_in_usage_errors_are_never_broken(tmp_path, monkeypatch):
    from conftest import run

    monkeypatch.setenv("COLUMNS", "60")
    long = tmp_path / ("a-very-long-folder-name-" * 6) / "results.txt"
    result = run(["--output", str(long), "x.txt"])
    assert result.exit_code == 2
    assert f"Error: Invalid value for --output: must end in .jsonl or .parquet: {long}" in result.stderr.splitlines()


def test_verbose_reports_tokens_and_chunks_per_document(echo_model, samples):
    from conftest import FAST, run

    long, short = samples / "river-cleanup-long.txt", samples / "harbour-ferry.txt"
    result = run([str(long), str(short), "-v", "-f", "jsonl", *FAST])
    assert result.exit_code == 0, result.stderr
    records = {r["source"]: r for r in map(json.loads, result.stdout.splitlines())}
    per_document = [line for line in result.stderr.splitlines() if " to the model, " in line]
    assert [line.split(", in ")[0] for line in per_document] == [
        f"{long}: {records[str(long)]['input_tokens']} tokens to the model, {records[str(long)]['chunks']} chunks",
        f"{short}: {records[str(short)]['input_tokens']} tokens to the model, 1 chunk",
    ]
    assert records[str(long)]["chunks"] > 1


def test_an_option_of_summarize_before_eval_says_where_it_belongs(tmp_path):
    from conftest import run

    result = run(["-o", "out", "eval", str(tmp_path / "ev.jsonl")])
    assert result.exit_code == 2
    assert "-o belongs to summarize, not to summarize eval" in result.stderr


def test_no_wrote_line_when_nothing_was_written(echo_model, tmp_path):
    from conftest import run

    (tmp_path / "blank.txt").write_text("  ")
    result = run([str(tmp_path / "blank.txt"), "--output", str(tmp_path / "res.jsonl"), "-q"])
    assert result.exit_code == 1
    assert "Wrote" not in result.stderr and not (tmp_path / "res.jsonl").exists()
    assert result.stderr.splitlines()[-1] == "Nothing was summarised."


SUMMARIZE = str(Path(sys.executable).with_name("summarize"))  # the console script, as users run it


@pytest.mark.parametrize("args", [["--version"], ["-q", "--version"], ["--help"], ["eval", "--help"], ["config"]])
def test_version_help_and_config_into_a_full_device_say_so_in_one_line(args):
    done = subprocess.run(
        f"{SUMMARIZE} {' '.join(args)} > /dev/full", shell=True, capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stderr) == (1, "Error: cannot write to standard output: No space left on device\n")


@pytest.mark.parametrize("args", [["--version"], ["-q", "--version"], ["--help"], ["eval", "--help"], ["config"]])
def test_version_help_and_config_into_a_closed_pipe_end_quietly_with_141(args):
    """As `summarize docs/ | head` does: the reader went away, nothing to report."""
    reader_gone = subprocess.Popen(["true"], stdin=subprocess.PIPE)
    reader_gone.wait()
    done = subprocess.run([SUMMARIZE, *args], stdout=reader_gone.stdin, stderr=subprocess.PIPE, text=True, timeout=60)
    reader_gone.stdin.close()
    assert (done.returncode, done.stderr) == (141, "")
