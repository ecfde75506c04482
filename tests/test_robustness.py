"""Never lose work: bad inputs, output safety, resume, large folders and the result cache."""

from __future__ import annotations

import errno
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from typer.testing import CliRunner

from summarize_cli import sinks, sources
from summarize_cli.cli import app
from summarize_cli.documents import Document
from summarize_cli.pipeline import Summarizer
from summarize_cli.settings import GenerationSettings
from summarize_cli.sources import discover, read_documents
from summarize_cli.tokenizer import TextTokenizer

FAST = ["--max-length", "8", "--min-length", "2", "--num-beams", "2", "-q"]


def run(args, input=None):
    return CliRunner().invoke(app, args, input=input, catch_exceptions=False)


def article(i: int) -> str:
    return f"Article {i}. The harbour ferry will run at night, the council said. Crews were hired."


def test_unreadable_file_is_a_failure_and_the_rest_go_on(env_model, tmp_path, monkeypatch):
    good = tmp_path / "good.txt"
    good.write_text(article(1))
    locked = tmp_path / "locked.txt"
    locked.write_text(article(2))
    locked.chmod(0)
    if os.geteuid() == 0:  # root reads anything: make the open fail the way it does for a user
        real_open = open

        def guarded(path, *args, **kwargs):
            if Path(path) == locked:
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(sources, "open", guarded, raising=False)
    result = run([str(good), str(locked), "--no-cache", *FAST])
    assert result.exit_code == 1
    assert f"Failed {locked}: Permission denied" in result.stderr
    assert result.stdout.count("==> ") == 1


def test_huge_file_is_refused_without_reading_it_whole(env_model, tmp_path):
    huge = tmp_path / "huge.txt"
    with huge.open("w") as handle:
        line = "The quick brown fox jumps over the lazy dog. " * 20 + "\n"
        for _ in range(50_000_000 // len(line) + 1):
            handle.write(line)
    assert huge.stat().st_size >= 50_000_000
    small = tmp_path / "small.txt"
    small.write_text(article(3))
    result = run([str(huge), str(small), "--no-cache", *FAST])
    assert result.exit_code == 1
    assert "huge.txt: larger than --max-input-bytes (20,000,000 bytes)" in result.stderr
    assert result.stdout.count("==> ") == 1


def test_long_line_without_punctuation_is_still_chunked(env_model, tmp_path):
    line = tmp_path / "line.txt"
    line.write_text(" ".join(["harbour ferry council night crew"] * 400))
    result = run([str(line), "-f", "jsonl", "--no-cache", *FAST])
    record = json.loads(result.stdout)
    assert record["chunks"] >= 2 and not record["truncated"]


def test_atomic_write_leaves_the_old_file_or_the_new_one_never_half(tmp_path, monkeypatch):
    target = tmp_path / "a.summary.txt"
    target.write_text("old summary\n")

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(sinks.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sinks.write_atomic(target, "new summary\n")
    assert target.read_text() == "old summary\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.summary.txt"]


def test_full_disk_is_an_error_naming_the_path(env_model, tmp_path, monkeypatch, samples):
    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sinks.os, "replace", full)
    result = run([str(samples / "harbour-ferry.txt"), "-o", str(tmp_path / "out"), "--no-cache", *FAST])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1].startswith("Error: cannot write ")
    assert "harbour-ferry.summary.txt: No space left on device" in result.stderr
    assert not list((tmp_path / "out").rglob("*.tmp"))


def test_unwritable_output_folder_is_an_error(env_model, tmp_path, samples):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run([str(samples / "harbour-ferry.txt"), "-o", str(blocker / "out"), "--no-cache", *FAST])
    assert result.exit_code == 1
    assert "Error: cannot write" in result.stderr and str(blocker) in result.stderr


def test_skip_existing_needs_an_output_dir(env_model, samples):
    result = run([str(samples), "--skip-existing", *FAST])
    assert result.exit_code == 2


def test_interrupted_run_resumed_with_skip_existing_matches_an_uninterrupted_one(tiny_model, tmp_path):
    corpus = tmp_path / "in"
    corpus.mkdir()
    for i in range(60):
        (corpus / f"a{i:03}.txt").write_text(article(i))
    env = {**os.environ, "SUMMARIZE_MODEL": str(tiny_model), "PYTHONUNBUFFERED": "1"}
    base = [
        sys.executable,
        "-m",
        "summarize_cli",
        str(corpus),
        "--no-cache",
        "--batch-size",
        "1",
        "--max-length",
        "30",
        "--min-length",
        "30",
        "--num-beams",
        "2",
    ]
    whole = tmp_path / "whole"
    subprocess.run([*base, "-o", str(whole)], env=env, check=True, capture_output=True, timeout=300)

    resumed = tmp_path / "resumed"
    proc = subprocess.Popen([*base, "-o", str(resumed)], env=env, stderr=subprocess.PIPE, text=True)
    while not (resumed.exists() and len(list(resumed.rglob("*.summary.txt"))) >= 3):
        assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Interrupted:" in err and "left" in err
    partial = len(list(resumed.rglob("*.summary.txt")))
    assert 3 <= partial < 60
    assert not list(resumed.rglob("*.tmp"))

    again = subprocess.run(
        [*base, "-o", str(resumed), "--skip-existing"], env=env, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stderr
    assert f"Skipped {partial} input(s) whose summaries exist" in again.stderr

    def contents(folder: Path) -> dict[str, str]:
        return {str(p.relative_to(folder)): p.read_text() for p in folder.rglob("*.summary.txt")}

    assert contents(resumed) == contents(whole)
    assert len(contents(whole)) == 60


class CountingBackend:
    name, device, precision = "count", "cpu", "float32"

    def __init__(self):
        self.notes: list[str] = []
        self.calls = 0

    def check(self, settings):
        return []

    def generate(self, inputs, settings):
        self.calls += 1
        return [ids[:3] for ids in inputs]


def test_ten_thousand_files_stream_with_bounded_memory(tiny_model, tmp_path):
    for i in range(10_000):
        (tmp_path / f"f{i:05}.txt").write_text(article(i) + " " + "padding words " * 100)
    tokenizer = TextTokenizer.from_dir(tiny_model)
    summarizer = Summarizer(CountingBackend(), tokenizer, GenerationSettings(), batch_size=16)
    items = list(discover([str(tmp_path)]))
    assert len(items) == 10_000
    reads = 0

    def counted():
        nonlocal reads
        for doc in read_documents(items):
            reads += 1
            yield doc

    tracemalloc.start()
    results = summarizer.summarize(counted())
    first = next(results)
    assert first.source.endswith("f00000.txt") and reads < 200  # summarising starts long before the end
    count = 1 + sum(1 for _ in results)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 10_000
    assert peak < 40_000_000  # ~15 MB of text in all: never held at once


def test_cache_serves_unchanged_documents(env_model, samples):
    path = str(samples / "solar-school.txt")
    first = json.loads(run([path, "-f", "jsonl", *FAST]).stdout)
    second = json.loads(run([path, "-f", "jsonl", *FAST]).stdout)
    assert (first["cached"], second["cached"]) == (False, True)
    assert second["summary"] == first["summary"] and second["chunks"] == first["chunks"]
    bypass = json.loads(run([path, "-f", "jsonl", "--no-cache", *FAST]).stdout)
    assert bypass["cached"] is False and bypass["summary"] == first["summary"]
    other = json.loads(run([path, "-f", "jsonl", *FAST, "--num-beams", "3"]).stdout)
    assert other["cached"] is False  # another setting is another key
    cleared = run(["--clear-cache"])
    assert cleared.exit_code == 0 and "Cleared the result cache" in cleared.stderr
    assert json.loads(run([path, "-f", "jsonl", *FAST]).stdout)["cached"] is False


def test_unseeded_sampling_is_never_cached(env_model, samples):
    path = str(samples / "library-robots.md")
    args = [path, "-f", "jsonl", "--do-sample", "--num-beams", "1", "--max-length", "8", "-q"]
    run(args)
    assert json.loads(run(args).stdout)["cached"] is False
    run([*args, "--seed", "3"])
    assert json.loads(run([*args, "--seed", "3"]).stdout)["cached"] is True


def test_corrupt_cache_warns_and_the_run_goes_on(env_model, samples, tmp_path, monkeypatch):
    monkeypatch.setenv("SUMMARIZE_CACHE_DIR", str(tmp_path))
    (tmp_path / "results.sqlite3").write_bytes(b"this is not a database" * 100)
    result = run([str(samples / "harbour-ferry.txt"), *FAST])
    assert result.exit_code == 0 and result.stdout.strip()
    assert "Warning: the result cache at" in result.stderr and "continuing without it" in result.stderr


def test_locked_cache_warns_and_the_run_goes_on(env_model, samples, tmp_path, monkeypatch):
    monkeypatch.setenv("SUMMARIZE_CACHE_DIR", str(tmp_path))
    run([str(samples / "harbour-ferry.txt"), *FAST])  # create it
    holder = sqlite3.connect(tmp_path / "results.sqlite3", isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = run([str(samples / "solar-school.txt"), *FAST])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.exit_code == 0 and result.stdout.strip()
    assert "continuing without it" in result.stderr


def test_documents_are_read_one_at_a_time(tmp_path):
    for i in range(5):
        (tmp_path / f"{i}.txt").write_text(article(i))
    stream = read_documents(discover([str(tmp_path)]))
    first = next(stream)
    assert isinstance(first, Document)


def test_repeated_jsonl_ids_never_overwrite_each_other(env_model, tmp_path):
    lines = "".join(json.dumps({"id": "same", "text": article(i)}) + "\n" for i in range(3))
    result = run(["--stdin-format", "jsonl", "-o", str(tmp_path / "out"), "--no-cache", *FAST], input=lines)
    assert result.exit_code == 1
    assert result.stderr.count("Failed same: its summary would overwrite that of same") == 2
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["same.summary.txt"]
