"""Never lose work: bad inputs, output safety, resume, large folders and the result cache."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from conftest import CACHED, FAST, GENERATE, run, usage_error

from summarize_cli.documents import Document
from summarize_cli.inputs import sources
from summarize_cli.inputs.language import Detector, declare_languages
from summarize_cli.inputs.sources import discover, read_documents
from summarize_cli.model.settings import GenerationSettings
from summarize_cli.outputs import sinks
from summarize_cli.run.pipeline import Summarizer


def article(i: int) -> str:
    return f"Article {i}. The harbour ferry will run at night, the council said. Crews were hired."


def test_unreadable_file_is_a_failure_and_the_rest_go_on(echo_model, tmp_path, monkeypatch):
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
    result = run([str(good), str(locked), *FAST])
    assert result.exit_code == 1
    assert f"Failed {locked}: Permission denied" in result.stderr
    assert result.stdout.count("==> ") == 1
    assert result.stdout == f"==> {good} <==\n{echo_model.summary(article(1))}\n"


def test_huge_file_is_refused_without_reading_it_whole(echo_model, tmp_path):
    huge = tmp_path / "huge.txt"
    with huge.open("w") as handle:
        line = "The quick brown fox jumps over the lazy dog. " * 20 + "\n"
        for _ in range(50_000_000 // len(line) + 1):
            handle.write(line)
    assert huge.stat().st_size >= 50_000_000
    small = tmp_path / "small.txt"
    small.write_text(article(3))
    result = run([str(huge), str(small), *FAST])
    assert result.exit_code == 1
    assert "huge.txt: larger than --max-input-bytes (20,000,000 bytes)" in result.stderr
    assert result.stdout.count("==> ") == 1
    assert result.stdout == f"==> {small} <==\n{echo_model.summary(article(3))}\n"


def test_endless_plain_stdin_is_refused_at_the_limit_without_reading_on(tiny_model, tmp_path):
    """`yes | summarize --max-input-bytes 100000`: plain stdin is one document, read only up to the
    limit; the run ends at once with that one failure, and stdout stays empty."""
    producer = subprocess.Popen(["yes", "The harbour ferry returns on Monday."], stdout=subprocess.PIPE)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "summarize_cli", "-m", str(tiny_model), "--max-input-bytes", "100000", "-q"],
            stdin=producer.stdout,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "SUMMARIZE_CACHE_DIR": str(tmp_path)},
        )
    finally:
        producer.kill()
        producer.wait()
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.splitlines() == [
        "Failed <stdin>: larger than --max-input-bytes (100,000 bytes)",
        "1 input failed:",
        "  <stdin>: larger than --max-input-bytes (100,000 bytes)",
    ]


def test_long_line_without_punctuation_is_still_chunked(echo_model, tmp_path):
    line = tmp_path / "line.txt"
    text = " ".join(["harbour ferry council night crew"] * 400)
    line.write_text(text)
    result = run([str(line), "-f", "jsonl", *FAST])
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["chunks"] >= 2 and not record["truncated"]
    assert record["input_tokens"] == echo_model.tokenizer.count(text)
    assert record["summary"] == echo_model.summary(text)


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


def test_full_disk_is_an_error_naming_the_path(echo_model, tmp_path, monkeypatch, samples):
    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sinks.os, "replace", full)
    result = run([str(samples / "harbour-ferry.txt"), "-o", str(tmp_path / "out"), *FAST])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1].startswith("Error: cannot write ")
    assert "harbour-ferry.txt.summary.txt: No space left on device" in result.stderr
    assert not list((tmp_path / "out").rglob("*.tmp"))


def test_unwritable_output_folder_is_an_error(echo_model, tmp_path, samples):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run([str(samples / "harbour-ferry.txt"), "-o", str(blocker / "out"), *FAST])
    assert result.exit_code == 1
    assert "Error: cannot write" in result.stderr and str(blocker) in result.stderr


def test_skip_existing_needs_an_output_dir(echo_model, samples):
    result = run([str(samples), "--skip-existing", *FAST])
    assert result.exit_code == 2
    assert usage_error(result) == "Invalid value for --skip-existing: needs -o/--output-dir or --output"
    assert result.stdout == ""


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
    try:
        deadline = time.monotonic() + 120
        while not (resumed.exists() and len(list(resumed.rglob("*.summary.txt"))) >= 3):
            assert proc.poll() is None, "the run ended before it could be interrupted"
            assert time.monotonic() < deadline, "no three summaries written within 120 s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert "Interrupted:" in err and "left" in err
    partial = len(list(resumed.rglob("*.summary.txt")))
    assert 3 <= partial < 60
    assert not list(resumed.rglob("*.tmp"))

    again = subprocess.run(
        [*base, "-o", str(resumed), "--skip-existing"], env=env, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stderr
    assert f"Skipped {partial} inputs whose summaries exist" in again.stderr

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


def test_ten_thousand_files_stream_with_bounded_memory(tiny_tokenizer, tmp_path):
    # 100 folders of 100 files of ~1.5 KB: ~15 MB in all. Words the tokenizer knows whole keep its work small.
    filler = " residents crossing electricity thousand librarian finished Saturday overflow." * 18
    for i in range(10_000):
        folder = tmp_path / f"d{i // 100:02}"
        folder.mkdir(exist_ok=True)
        (folder / f"f{i:05}.txt").write_text(article(i) + filler)
    total = sum(p.stat().st_size for p in tmp_path.rglob("*.txt"))
    assert total > 14_000_000
    summarizer = Summarizer(CountingBackend(), tiny_tokenizer, GenerationSettings(), batch_size=16)
    reads = 0

    def counted(documents):
        nonlocal reads
        for doc in documents:
            reads += 1
            yield doc

    tracemalloc.start()
    try:  # finding the files, reading them and summarising them, all measured
        # (a file is read with read(max_input_bytes + 1): the default 20 MB would be counted for every file)
        documents = read_documents(discover([str(tmp_path)]), max_input_bytes=100_000)
        # declared (--language en), as detecting 10,000 languages under tracemalloc took two minutes
        results = summarizer.summarize(counted(declare_languages(documents, "en")))
        first = next(results)
        assert first.source.endswith("f00000.txt") and reads < 200  # summarising starts long before the end
        count = 1 + sum(1 for _ in results)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 10_000
    assert peak < total / 4  # ~2.7 MB: a window of documents and what the walk keeps, never the texts


def test_detecting_languages_while_streaming_keeps_no_text(tiny_tokenizer, tmp_path):
    """Languages are detected in the summarizer, window by window: 1,000 files detected peak where the same
    files declared (--language en) do, never keeping what was read (1.5 MB here)."""
    filler = " residents crossing electricity thousand librarian finished Saturday overflow." * 18
    for i in range(1_000):
        (tmp_path / f"f{i:04}.txt").write_text(article(i) + filler)
    Detector.identifier()  # loaded once per process (unpacked into the cache the first time): not streaming

    def peak_of(declared: str | None) -> tuple[int, set]:
        summarizer = Summarizer(CountingBackend(), tiny_tokenizer, GenerationSettings(), batch_size=16)
        tracemalloc.start()
        try:
            documents = read_documents(discover([str(tmp_path)]), max_input_bytes=100_000)
            languages = {r.document.language for r in summarizer.summarize(declare_languages(documents, declared))}
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return peak, languages

    declared, detected = peak_of("en"), peak_of(None)
    assert declared[1] == {"en"} and detected[1] == {"en"}
    assert detected[0] < declared[0] + 400_000


def test_cache_serves_unchanged_documents(echo_model, samples, tmp_path, monkeypatch):
    monkeypatch.setenv("SUMMARIZE_CACHE_DIR", str(tmp_path))  # a cache of this test's own
    path = str(samples / "solar-school.txt")
    first = json.loads(run([path, "-f", "jsonl", *CACHED]).stdout)
    second = json.loads(run([path, "-f", "jsonl", *CACHED]).stdout)
    assert (first["cached"], second["cached"]) == (False, True)
    assert second["summary"] == first["summary"] and second["chunks"] == first["chunks"]
    assert first["summary"] == echo_model.summary_of(samples / "solar-school.txt")
    bypass = json.loads(run([path, "-f", "jsonl", "--no-cache", *CACHED]).stdout)
    assert bypass["cached"] is False and bypass["summary"] == first["summary"]
    other = json.loads(run([path, "-f", "jsonl", *CACHED, "--max-length", "3"]).stdout)
    assert other["cached"] is False  # another setting is another key
    assert other["summary"] == echo_model.summary_of(samples / "solar-school.txt", 3)
    cleared = run(["--clear-cache"])
    assert cleared.exit_code == 0 and "Cleared the result cache" in cleared.stderr
    assert json.loads(run([path, "-f", "jsonl", *CACHED]).stdout)["cached"] is False


SAMPLED = ["--do-sample", "--seed", "1"]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ([], ["--num-beams", "3"]),
        ([], ["--min-length", "3"]),
        ([], ["--length-penalty", "1.5"]),
        ([], ["--no-repeat-ngram-size", "2"]),
        ([], ["--prefix", "summarise: "]),
        ([], ["--length", "long"]),
        ([], ["--force"]),
        ([], ["--long", "truncate"]),
        ([], ["--method", "extractive"]),
        ([], SAMPLED),
        (SAMPLED, ["--do-sample", "--seed", "2"]),
        (SAMPLED, [*SAMPLED, "--temperature", "0.5"]),
        (SAMPLED, [*SAMPLED, "--top-p", "0.5"]),
        (SAMPLED, [*SAMPLED, "--top-k", "5"]),
    ],
    ids=lambda args: " ".join(args) or "defaults",
)
def test_every_choice_that_shapes_a_summary_is_in_its_cache_key(
    echo_model, samples, tmp_path, monkeypatch, before, after
):
    """The README's key, beyond --max-length: a summary made one way is never served for another, and
    the same choices made again are served from the cache."""
    monkeypatch.setenv("SUMMARIZE_CACHE_DIR", str(tmp_path))
    path = str(samples / "solar-school.txt")

    def cached(args: list[str]) -> bool:
        result = run([path, "-f", "jsonl", "-q", *args])  # no lengths given: --length can set them
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)["cached"]

    assert (cached(before), cached(before)) == (False, True)
    assert (cached(after), cached(after)) == (False, True)


def test_a_cached_truncated_summary_says_what_the_model_was_given(echo_model, tmp_path, monkeypatch):
    """A hit is the fresh result again: the same record (but for `cached` and `seconds`) and the same -v
    line, "N tokens to the model (of M)", not the whole input's count as if it had all been sent."""
    monkeypatch.setenv("SUMMARIZE_CACHE_DIR", str(tmp_path / "cache"))
    article = tmp_path / "long.txt"
    article.write_text(" ".join(f"Sentence number {n} tells of the harbour." for n in range(400)), encoding="utf-8")
    args = [str(article), "-f", "jsonl", "--long", "truncate", "-v", *GENERATE]
    fresh, hit = run(args), run(args)
    assert fresh.exit_code == hit.exit_code == 0
    first, second = json.loads(fresh.stdout), json.loads(hit.stdout)
    assert (first["cached"], second["cached"]) == (False, True)
    assert first["truncated"] is True
    drop = ("cached", "seconds")
    assert {k: v for k, v in second.items() if k not in drop} == {k: v for k, v in first.items() if k not in drop}

    def told(result) -> str:
        return next(line for line in result.stderr.splitlines() if " to the model" in line)

    assert told(hit) == told(fresh).rsplit(", in ", 1)[0] + ", from the cache"
    sent = int(re.search(r"(\d+) tokens to the model \(of", told(hit))[1])
    assert f"truncated from {first['input_tokens']} to {sent} tokens (--long truncate)" in first["warnings"]
    assert f"{sent} tokens to the model (of {first['input_tokens']}), 1 chunk, truncated, from the cache" in told(hit)


def test_unseeded_sampling_is_never_cached(echo_model, samples):
    path = str(samples / "library-robots.md")
    args = [path, "-f", "jsonl", "--do-sample", "--num-beams", "1", "--max-length", "8", "-q"]
    run(args)
    assert json.loads(run(args).stdout)["cached"] is False
    run([*args, "--seed", "3"])
    assert json.loads(run([*args, "--seed", "3"]).stdout)["cached"] is True


def test_corrupt_cache_warns_and_the_run_goes_on(echo_model, samples, tmp_path, monkeypatch):
    monkeypatch.setenv("SUMMARIZE_CACHE_DIR", str(tmp_path))
    (tmp_path / "results.sqlite3").write_bytes(b"this is not a database" * 100)
    result = run([str(samples / "harbour-ferry.txt"), *CACHED])
    assert result.exit_code == 0 and result.stdout.strip()
    assert result.stdout == echo_model.summary_of(samples / "harbour-ferry.txt") + "\n"
    assert "Warning: the result cache at" in result.stderr and "continuing without it" in result.stderr


def test_locked_cache_warns_and_the_run_goes_on(echo_model, samples, tmp_path, monkeypatch):
    monkeypatch.setenv("SUMMARIZE_CACHE_DIR", str(tmp_path))
    run([str(samples / "harbour-ferry.txt"), *CACHED])  # create it
    holder = sqlite3.connect(tmp_path / "results.sqlite3", isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = run([str(samples / "solar-school.txt"), *CACHED])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.exit_code == 0 and result.stdout.strip()
    assert result.stdout == echo_model.summary_of(samples / "solar-school.txt") + "\n"
    assert "continuing without it" in result.stderr


def test_documents_are_read_one_at_a_time(tmp_path, monkeypatch):
    for i in range(5):
        (tmp_path / f"{i}.txt").write_text(article(i))
    opened = []
    real_open = open

    def counting(path, *args, **kwargs):
        opened.append(Path(path).name)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(sources, "open", counting, raising=False)
    stream = read_documents(discover([str(tmp_path)]))
    first = next(stream)
    assert isinstance(first, Document)
    assert first.text == article(0) and opened == ["0.txt"]  # the others are not read yet
    second = next(stream)
    assert second.text == article(1) and opened == ["0.txt", "1.txt"]


def test_repeated_jsonl_ids_never_overwrite_each_other(echo_model, tmp_path):
    lines = "".join(json.dumps({"id": "same", "text": article(i)}) + "\n" for i in range(3))
    result = run(["--stdin-format", "jsonl", "-o", str(tmp_path / "out"), *FAST], input=lines)
    assert result.exit_code == 1
    assert result.stderr.count("Failed same: its summary would overwrite that of same") == 2
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["same.summary.txt"]
