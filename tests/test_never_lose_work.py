"""Never lose work, round 2: signals during native calls, --output safety, output paths, bounds, caches."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FAST, run

LAUNCHER = Path(__file__).parent / "slow_launcher.py"
QUICK = ["--max-length", "8", "--min-length", "2", "--num-beams", "1", "-q"]


def env_with(tiny_model, **extra) -> dict:
    return {**os.environ, "TINY_MODEL": str(tiny_model), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **extra}


def wait_for(condition, seconds: float, proc=None) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the run ended early: {proc.returncode} {proc.stderr.read()}")
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def plain(stderr: str) -> str:
    """Rich's usage-error box as one line of words, whatever the terminal width."""
    return " ".join(stderr.replace("│", " ").replace("╭", " ").replace("╰", " ").replace("─", " ").split())


def stop_and_time(proc, sig) -> tuple[int, float, str]:
    sent = time.monotonic()
    proc.send_signal(sig)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("the run did not stop within 20 s of the signal") from None
    return proc.returncode, time.monotonic() - sent, proc.stderr.read()


def slow_run_over_three_stories(tiny_model, tmp_path, *output: str) -> subprocess.Popen:
    """`summarize news/ OUTPUT` over three short stories, one per batch, every batch after the first
    stuck in a native call that ignores signals (tests/slow_launcher.py)."""
    folder = tmp_path / "news"
    folder.mkdir()
    for i in range(3):
        (folder / f"s{i}.txt").write_text(f"Story {i}: the harbour ferry returns on Monday, the council said.")
    return subprocess.Popen(
        [sys.executable, str(LAUNCHER), str(folder), "-m", "slow", *output, "--batch-size", "1", *QUICK],
        env=env_with(
            tiny_model,
            SLOW="generate",
            STALL_MARK=str(tmp_path / "stalled"),
            SUMMARIZE_CACHE_DIR=str(tmp_path / "cache"),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize(
    ("sig", "code", "word"), [(signal.SIGTERM, 143, "Terminated"), (signal.SIGINT, 130, "Interrupted")]
)
def test_signal_during_a_native_generate_stops_at_once_and_keeps_finished_work(tiny_model, tmp_path, sig, code, word):
    out = tmp_path / "out"
    proc = slow_run_over_three_stories(tiny_model, tmp_path, "-o", str(out))
    first = out / "news" / "s0.txt.summary.txt"
    wait_for(first.is_file, 60, proc)
    wait_for((tmp_path / "stalled").exists, 60, proc)  # the second batch is now inside the native call
    returncode, took, stderr = stop_and_time(proc, sig)
    assert returncode == code, stderr
    assert took < 2.0, f"took {took:.1f} s to stop"
    assert f"{word}: 1 summarised, 2 left." in stderr
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["s0.txt.summary.txt"]
    assert first.read_text(encoding="utf-8").strip()


def test_signal_during_conversion_leaves_nothing_and_marks_nothing(tiny_model, tmp_path, samples):
    cache = tmp_path / "cache"
    env = env_with(tiny_model, SLOW="convert", SUMMARIZE_CACHE_DIR=str(cache))
    article = str(samples / "harbour-ferry.txt")
    proc = subprocess.Popen(
        [sys.executable, str(LAUNCHER), article, "-m", str(tiny_model), "--backend", "auto", *QUICK],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: any(p.is_dir() for p in (cache / "ctranslate2").glob(".*")), 60, proc)
    returncode, took, stderr = stop_and_time(proc, signal.SIGTERM)
    assert returncode == 143, stderr
    assert took < 2.0, f"took {took:.1f} s to stop"
    assert stderr.strip().splitlines()[-1] == "Terminated: 0 summarised, 1 left."
    assert sorted(p.name for p in (cache / "ctranslate2").iterdir() if not p.name.endswith(".lock")) == []

    again = subprocess.run(
        [sys.executable, "-m", "summarize_cli", article, "-m", str(tiny_model), "-f", "jsonl", *QUICK],
        env={**env, "SLOW": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["backend"] == "ctranslate2"  # not marked unsupported by the signal
    assert again.stderr == ""


# --- data: --output ---------------------------------------------------------------------------------------


def fake(tiny_model, tmp_path, *args, stdin=None, cwd=None, stall_after=1000, timeout=120):
    """The real entry point as a process, on the fast fake engine `slow` (which never stalls here)."""
    env = env_with(tiny_model, SLOW="generate", STALL_AFTER=str(stall_after), SUMMARIZE_CACHE_DIR=str(tmp_path / "c"))
    return subprocess.run(
        [sys.executable, str(LAUNCHER), "-m", "slow", *args, *QUICK],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
    )


def rows(n: int, start: int = 0) -> str:
    return "".join(
        json.dumps({"id": f"r{i}", "text": f"Row {i}: the harbour ferry returns, the council said."}) + "\n"
        for i in range(start, start + n)
    )


def test_output_that_is_an_input_is_refused_through_any_path(tiny_model, tmp_path):
    data = tmp_path / "ev.jsonl"
    data.write_text(rows(3))
    (tmp_path / "link.jsonl").symlink_to(data)
    before = data.read_bytes()
    for output in (data, tmp_path / "." / "ev.jsonl", tmp_path / "link.jsonl"):
        done = fake(tiny_model, tmp_path, str(data), "--output", str(output))
        assert done.returncode == 2, done.stderr
        assert f"Invalid value for --output: {output} is also an input ({data}): it would be overwritten" in plain(
            done.stderr
        )
        assert data.read_bytes() == before


@pytest.mark.parametrize("kind", ["jsonl", "parquet"])
def test_output_file_is_replaced_only_by_a_completed_run(tiny_model, tmp_path, kind):
    data = tmp_path / "in.jsonl"
    data.write_text(rows(4))
    out = tmp_path / f"out.{kind}"
    first = fake(tiny_model, tmp_path, str(data), "--output", str(out))
    assert first.returncode == 0, first.stderr
    good = out.read_bytes()

    blank = tmp_path / "blank"
    blank.mkdir()
    (blank / "empty.txt").write_text("  \n")
    nothing = fake(tiny_model, tmp_path, str(blank), "--output", str(out))
    assert nothing.returncode == 1 and "Nothing was summarised." in nothing.stderr
    assert out.read_bytes() == good  # not replaced by an empty file

    bigger = tmp_path / "more.jsonl"
    bigger.write_text(rows(6, start=10))
    proc = subprocess.Popen(
        [sys.executable, str(LAUNCHER), "-m", "slow", str(bigger), "--output", str(out), "--batch-size", "1", *QUICK],
        env=env_with(
            tiny_model,
            SLOW="generate",
            STALL_AFTER="2",
            STALL_MARK=str(tmp_path / "stalled"),
            SUMMARIZE_CACHE_DIR=str(tmp_path / "c2"),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for((tmp_path / "stalled").exists, 120, proc)  # two rows done, the third stuck in the native call
    returncode, _, stderr = stop_and_time(proc, signal.SIGTERM)
    assert returncode == 143, stderr
    assert out.read_bytes() == good  # the interrupted run left the good file alone
    partial = tmp_path / f"out.partial.{kind}"
    # two rows were done when the stall began; the main thread may not have written the second yet: the
    # message, the count and the partial file agree either way
    made = 2 if f"{out} was left as it was; the 2 summaries made are in {partial}." in stderr else 1
    if made == 1:
        assert f"{out} was left as it was; the 1 summary made is in {partial}." in stderr, stderr
    if kind == "parquet":
        import pyarrow.parquet as pq

        kept = [r["source"] for r in pq.read_table(partial).to_pylist()]
    else:
        kept = [json.loads(line)["source"] for line in partial.read_text().splitlines()]
    assert kept == ["r10", "r11"][:made]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_output_files_get_the_mode_the_umask_gives(tiny_model, tmp_path):
    (tmp_path / "a.txt").write_text("The harbour ferry returns on Monday, the council said.")
    old = os.umask(0o027)
    try:
        to_dir = fake(tiny_model, tmp_path, str(tmp_path / "a.txt"), "-o", str(tmp_path / "out"))
        to_file = fake(tiny_model, tmp_path, str(tmp_path / "a.txt"), "--output", str(tmp_path / "all.jsonl"))
    finally:
        os.umask(old)
    assert to_dir.returncode == 0 and to_file.returncode == 0, to_dir.stderr + to_file.stderr
    [written] = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert oct(written.stat().st_mode & 0o777) == oct(0o640)
    assert oct((tmp_path / "all.jsonl").stat().st_mode & 0o777) == oct(0o640)


# --- output folders in real trees ---------------------------------------------------------------------------


def test_find_print0_xargs_with_same_names_outside_the_current_folder(tiny_model, tmp_path):
    site = tmp_path / "site"
    for part in ("a", "b"):
        (site / part).mkdir(parents=True)
        article = " ".join(f"Paragraph {i} of page {part}: the harbour ferry returns on Monday." for i in range(8))
        (site / part / "index.html").write_text(
            f"<html><body><article><h1>Page {part}</h1><p>{article}</p></article></body></html>"
        )
    (site / "a" / "notes.txt").write_text("Notes: the ferry returns.")
    (site / "a" / "notes.md").write_text("Notes in Markdown: the ferry returns.")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    launcher = f"{sys.executable} {LAUNCHER} -m slow {' '.join(QUICK)} -o {tmp_path / 'out'}"
    shell = f"find {site}/a {site}/b -type f -print0 | sort -z | xargs -0 {launcher}"
    env = env_with(tiny_model, SLOW="generate", STALL_AFTER="1000", SUMMARIZE_CACHE_DIR=str(tmp_path / "c"))
    done = subprocess.run(["bash", "-c", shell], env=env, cwd=elsewhere, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written == [
        "a/index.html.summary.txt",
        "a/notes.md.summary.txt",
        "a/notes.txt.summary.txt",
        "b/index.html.summary.txt",
    ]


def test_output_folder_is_never_an_input_and_reruns_resume(tiny_model, tmp_path):
    for name in ("a.txt", "b.md"):
        (tmp_path / name).write_text(f"{name}: the harbour ferry returns on Monday, the council said.")
    first = fake(tiny_model, tmp_path, "-o", "summaries", ".", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = fake(tiny_model, tmp_path, "-o", "summaries", "--skip-existing", ".", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "Skipped 2 inputs whose summaries exist (--skip-existing)." in again.stderr
    assert sorted(p.name for p in (tmp_path / "summaries").iterdir()) == ["a.txt.summary.txt", "b.md.summary.txt"]


def test_dataset_rows_and_stdin_lines_resume_with_skip_existing(tiny_model, tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text(rows(3))
    out = tmp_path / "out"
    first = fake(tiny_model, tmp_path, str(data), "-o", str(out), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "data.jsonl/r0.summary.txt",
        "data.jsonl/r1.summary.txt",
        "data.jsonl/r2.summary.txt",
    ]
    data.write_text(rows(4))
    resumed = fake(tiny_model, tmp_path, str(data), "-o", str(out), "--skip-existing", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "Wrote 1 summary" in resumed.stderr and "Skipped 3 inputs whose summaries exist" in resumed.stderr

    piped = fake(tiny_model, tmp_path, "--stdin-format", "jsonl", "-o", str(out), stdin=rows(2), cwd=tmp_path)
    assert piped.returncode == 0, piped.stderr
    again = fake(
        tiny_model, tmp_path, "--stdin-format", "jsonl", "-o", str(out), "--skip-existing", stdin=rows(3), cwd=tmp_path
    )
    assert again.returncode == 0, again.stderr
    assert "Wrote 1 summary" in again.stderr and "Skipped 2 inputs whose summaries exist" in again.stderr


def test_two_runs_at_once_into_one_folder_both_finish(tiny_model, tmp_path, samples):
    env = env_with(tiny_model, SUMMARIZE_CACHE_DIR=str(tmp_path / "cache"))  # cold: both convert the model
    command = [sys.executable, "-m", "summarize_cli", str(samples), "-m", str(tiny_model), "-o", str(tmp_path / "o")]
    runs = [subprocess.Popen([*command, *QUICK], env=env, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for proc in runs:
        proc.wait(timeout=180)
        assert proc.returncode == 0, proc.stderr.read()
    files = sorted((tmp_path / "o").rglob("*.summary.txt"))
    assert len(files) == 6 and all(f.read_text(encoding="utf-8").strip() for f in files)
    assert not [p for p in (tmp_path / "o").rglob("*") if p.name.endswith(".tmp")]
    as_jsonl = [sys.executable, "-m", "summarize_cli", str(samples), "-m", str(tiny_model), "-f", "jsonl", *QUICK]
    third = subprocess.run(as_jsonl, env=env, capture_output=True, text=True, timeout=120)
    assert third.returncode == 0, third.stderr
    assert all(json.loads(line)["cached"] for line in third.stdout.splitlines())
    assert third.stderr == ""


# --- bounds -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-length", "100000", "--min-length", "2"], "--max-length 100000 is more than"),
        (["--seed", "-1"], "--seed must be between 0 and 4294967295 (got -1)"),
        (["--seed", "4294967296"], "--seed must be between 0 and 4294967295 (got 4294967296)"),
    ],
)
def test_out_of_range_lengths_and_seeds_are_usage_errors(tiny_model, samples, args, message):
    done = subprocess.run(
        [sys.executable, "-m", "summarize_cli", str(samples / "harbour-ferry.txt"), "-m", str(tiny_model), *args],
        env=env_with(tiny_model),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("Error: ") and message in done.stderr
    assert done.stdout == ""


# --- inputs and the cache -----------------------------------------------------------------------------------


def test_a_folder_reached_twice_is_summarised_once_and_only_a_real_cycle_is_a_loop(tiny_model, tmp_path):
    tree = tmp_path / "tree"
    (tree / "b").mkdir(parents=True)
    (tree / "b" / "story.txt").write_text("The harbour ferry returns on Monday, the council said.")
    (tree / "a_link").symlink_to(tree / "b", target_is_directory=True)
    (tree / "b" / "up").symlink_to(tree, target_is_directory=True)  # a real cycle
    done = fake(tiny_model, tmp_path, "-f", "jsonl", str(tree))
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["source"] for line in done.stdout.splitlines()] == [str(tree / "b" / "story.txt")]
    assert done.stderr.splitlines() == [
        f"Skipped {tree / 'b' / 'up'}: symbolic link loop (a link to a folder that contains it), not followed",
        "1 input skipped.",
    ]


def test_a_jsonl_stream_without_newlines_is_refused_in_bounded_memory():
    import io
    import tracemalloc

    from summarize_cli.documents import Problem
    from summarize_cli.inputs.sources import read_jsonl

    class Endless(io.RawIOBase):
        """50 MB of one JSON line that never ends, made as it is read."""

        def __init__(self):
            self.left = 50_000_000

        def readable(self):
            return True

        def readinto(self, buffer):
            n = min(len(buffer), self.left)
            buffer[:n] = b"x" * n
            self.left -= n
            return n

    tracemalloc.start()
    out = list(read_jsonl(io.BufferedReader(Endless()), 100_000))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert out == [Problem("<stdin>:1", "larger than --max-input-bytes (100,000 bytes)")]
    assert peak < 5_000_000, peak


def test_a_parquet_row_over_the_size_limit_fails_that_row(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from summarize_cli.documents import Document, Problem
    from summarize_cli.inputs.sources import discover, read_documents

    path = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pylist([{"id": "small", "text": "Short."}, {"id": "big", "text": "x" * 5000}]), path)
    out = list(read_documents(discover([str(path)]), max_input_bytes=1000))
    assert isinstance(out[0], Document) and out[0].source == "small"
    assert out[1] == Problem("big", "row 2: larger than --max-input-bytes (1,000 bytes)")


def test_cached_warnings_name_the_document_they_are_about(tiny_model, tmp_path, samples):
    long_text = (samples / "river-cleanup-long.txt").read_text(encoding="utf-8")
    (tmp_path / "first.txt").write_text(long_text, encoding="utf-8")
    (tmp_path / "second.txt").write_text(long_text, encoding="utf-8")
    args = ["--long", "truncate", "-f", "jsonl"]
    one = fake(tiny_model, tmp_path, str(tmp_path / "first.txt"), *args)
    two = fake(tiny_model, tmp_path, str(tmp_path / "second.txt"), *args)
    assert one.returncode == two.returncode == 0, one.stderr + two.stderr
    assert json.loads(two.stdout)["cached"] is True
    assert two.stderr.startswith(f"Warning: {tmp_path / 'second.txt'}: truncated from ")
    assert "first.txt" not in two.stderr


@pytest.mark.parametrize("blocker", ["cache-is-a-file", "model-cache-is-a-file"])
def test_an_unwritable_cache_folder_warns_and_the_run_goes_on(tiny_model, tmp_path, samples, blocker):
    cache = tmp_path / "cache"
    if blocker == "cache-is-a-file":
        cache.write_text("not a folder")
    else:
        cache.mkdir()
        (cache / "ctranslate2").write_text("not a folder")
    done = subprocess.run(
        [sys.executable, "-m", "summarize_cli", str(samples / "harbour-ferry.txt"), "-m", str(tiny_model), *QUICK],
        env=env_with(tiny_model, SUMMARIZE_CACHE_DIR=str(cache)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    lines = done.stderr.splitlines()
    assert lines and all(line.startswith("Warning: ") for line in lines), done.stderr
    assert any("converted" in line and "temporary folder for this run only" in line for line in lines)
    if blocker == "cache-is-a-file":
        assert any(line.startswith(f"Warning: the result cache at {cache}") for line in lines)


def test_ray_streams_stdin_jsonl_instead_of_reading_it_all_first(tiny_model, tmp_path):
    pytest.importorskip("ray", reason="the [ray] extra is not installed")
    import threading

    proc = subprocess.Popen(
        [sys.executable, "-m", "summarize_cli", "--stdin-format", "jsonl", "-f", "jsonl", "--ray", "--workers", "1"]
        + ["-m", str(tiny_model), "--batch-size", "1", *QUICK],
        env=env_with(tiny_model, SUMMARIZE_CACHE_DIR=str(tmp_path / "c"), RAY_ADDRESS=""),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first: list[str] = []
    reader = threading.Thread(target=lambda: first.append(proc.stdout.readline()), daemon=True)
    reader.start()
    proc.stdin.write(rows(3))
    proc.stdin.flush()
    reader.join(timeout=240)  # stdin is still open: a driver that read it all first would print nothing
    try:
        assert first and json.loads(first[0])["source"] == "r0", proc.stderr.read() if proc.poll() else "no output"
    finally:
        proc.stdin.write(rows(1, start=3))
        proc.stdin.close()
        rest = proc.stdout.read()
        proc.wait(timeout=60)
    assert proc.returncode == 0, proc.stderr.read()
    assert [json.loads(line)["source"] for line in rest.splitlines()] == ["r1", "r2", "r3"]


def test_two_signals_in_a_row_still_end_cleanly(tiny_model, tmp_path):
    out = tmp_path / "all.parquet"
    proc = slow_run_over_three_stories(tiny_model, tmp_path, "--output", str(out))
    wait_for((tmp_path / "stalled").exists, 120, proc)  # one done, the second stuck in the native call
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGTERM)  # Ctrl-C, then the supervisor's TERM
    returncode, took, stderr = stop_and_time(proc, signal.SIGTERM)
    assert returncode == 130, stderr
    assert took < 2.0
    assert "Error" not in stderr
    # one story was done when the stall began; on a busy machine the main thread may not have written it
    # yet: the count and the partial file agree either way, and nothing is counted twice
    last = stderr.strip().splitlines()[-1]
    done, left = (int(n) for n in re.fullmatch(r"Interrupted: (\d+) summarised, (\d+) left\.", last).groups())
    assert done + left == 3 and done in (0, 1), stderr
    partial = tmp_path / "all.partial.parquet"
    if done:
        import pyarrow.parquet as pq

        assert pq.read_metadata(partial).num_rows == done
    else:
        assert not partial.exists()


def test_a_signal_during_the_model_load_still_reports_the_counts(tiny_model, tmp_path, samples):
    proc = subprocess.Popen(
        [sys.executable, str(LAUNCHER), str(samples), "-m", str(tiny_model), *QUICK],
        env=env_with(
            tiny_model,
            SLOW="convert",
            STALL_MARK=str(tmp_path / "stalled"),
            SUMMARIZE_CACHE_DIR=str(tmp_path / "cache"),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for((tmp_path / "stalled").exists, 60, proc)  # inside the conversion's native call
    returncode, took, stderr = stop_and_time(proc, signal.SIGTERM)
    assert returncode == 143 and took < 2.0
    assert stderr.strip().splitlines()[-1] == "Terminated: 0 summarised, 6 left."


def blocked_writing(pid: int) -> bool:
    """The process's main thread sleeps in the kernel, writing to a full pipe (Linux's /proc)."""
    return Path(f"/proc/{pid}/wchan").read_text().endswith("pipe_write")


@pytest.mark.parametrize(
    ("sig", "code", "word"), [(signal.SIGTERM, 143, "Terminated"), (signal.SIGINT, 130, "Interrupted")]
)
def test_a_signal_while_stdout_is_not_being_read_stops_at_once(tiny_model, tmp_path, sig, code, word):
    """`summarize -f jsonl news/ | reader` whose reader has stopped reading: the write of a record blocks
    on the full pipe. The signal waited for the record to be written whole, which never happened, so
    the run hung until somebody read. Now it waits half a second, then stops: every record the reader
    gets is whole and counted, and the stop says the one in the pipe's way was not written whole."""
    folder = tmp_path / "news"
    folder.mkdir()
    story = "the harbour ferry returns on Monday after three years, the council said, and the crossings stay."
    for i in range(400):
        (folder / f"s{i:03d}.txt").write_text(f"{i}. {story}")
    proc = subprocess.Popen(
        [sys.executable, str(LAUNCHER), str(folder), "-m", "slow", "-f", "jsonl", *QUICK, "--max-length", "60"],
        env=env_with(
            tiny_model, SLOW="generate", STALL_AFTER="100000", SLOW_KEEP="40", SUMMARIZE_CACHE_DIR=str(tmp_path / "c")
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    wait_for(lambda: blocked_writing(proc.pid), 60, proc)  # 400 records are far more than a pipe holds
    returncode, took, stderr = stop_and_time(proc, sig)
    records = [json.loads(line) for line in proc.stdout.read().decode().splitlines()]
    assert (returncode, took < 3.0) == (code, True), (took, stderr)
    assert 0 < len(records) < 400
    assert [r["source"] for r in records] == [str(folder / f"s{i:03d}.txt") for i in range(len(records))]
    assert stderr.decode().splitlines() == [
        f"{word}: {len(records)} summarised, {400 - len(records)} left.",
        "The record being written to stdout was not written whole: its reader had stopped reading.",
    ]


def test_a_symlink_alias_to_a_tree_with_a_loop_reports_the_loop_once(tiny_model, tmp_path):
    root = tmp_path / "sl"
    (root / "real" / "sub").mkdir(parents=True)
    (root / "real" / "sub" / "x.txt").write_text("The harbour ferry returns on Monday, the council said.")
    (root / "real" / "sub" / "loop").symlink_to(Path("..") / "..", target_is_directory=True)
    (root / "alias").symlink_to("real", target_is_directory=True)
    done = fake(tiny_model, tmp_path, "-f", "jsonl", str(root / "alias"), str(root / "real"))
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["source"] for line in done.stdout.splitlines()] == [str(root / "alias/sub/x.txt")]
    loops = [line for line in done.stderr.splitlines() if "symbolic link loop" in line]
    assert loops == [
        f"Skipped {root / 'alias/sub/loop'}: symbolic link loop (a link to a folder that contains it), not followed"
    ]


def test_ray_takes_sigterm_like_a_local_run(tiny_model, tmp_path):
    pytest.importorskip("ray", reason="the [ray] extra is not installed")
    feed = "".join(json.dumps({"id": f"d{i}", "text": f"Article {i} about the harbour."}) + "\n" for i in range(300))
    proc = subprocess.Popen(
        [sys.executable, "-m", "summarize_cli", "--stdin-format", "jsonl", "-f", "jsonl", "--ray", "--workers", "1"]
        + ["-m", str(tiny_model), "--batch-size", "1", "--force", "--max-length", "40", "--min-length", "40", "-q"],
        env=env_with(tiny_model, SUMMARIZE_CACHE_DIR=str(tmp_path / "c"), RAY_ADDRESS=""),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.stdin.write(feed)
    proc.stdin.close()
    first = proc.stdout.readline()  # the actors are up and summarising
    assert json.loads(first)["source"] == "d0"
    returncode, took, stderr = stop_and_time(proc, signal.SIGTERM)
    records = [json.loads(line) for line in (first + proc.stdout.read()).splitlines()]
    assert returncode == 143, stderr
    assert took < 10.0, f"took {took:.1f} s to stop"
    assert [r["source"] for r in records] == [f"d{i}" for i in range(len(records))]
    # stdin: nothing counted ahead, and a record is written and counted as one (a signal waits for both)
    reported = int(stderr.strip().splitlines()[-1].removeprefix("Terminated: ").removesuffix(" summarised."))
    assert reported == len(records), stderr


def test_closing_the_cache_while_the_worker_stores_never_crashes(tmp_path):
    """Ctrl-C: the main thread closes the result cache while the worker thread may be storing a result.
    Closing an SQLite connection in use crashed the process (a segfault, losing the report)."""
    code = f"""
import threading
from pathlib import Path
from summarize_cli.run.cache import ResultCache
for round_ in range(30):
    cache = ResultCache(Path({str(tmp_path)!r}) / "results.sqlite3")
    started = threading.Event()
    def store():
        started.set()
        for i in range(20000):
            cache.put(f"k{{round_}}-{{i}}", {{"summary": "x" * 200}})
            cache.get(f"k{{round_}}-{{i}}")
    worker = threading.Thread(target=store, daemon=True)
    worker.start()
    started.wait()
    cache.close()
    worker.join()
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout) == (0, "ok\n"), done.stderr[-2000:]


@pytest.mark.parametrize("kind", ["jsonl", "parquet"])
def test_skip_existing_with_an_output_file_adds_only_what_is_missing(echo_model, tmp_path, monkeypatch, kind):
    """--skip-existing with --output: the records already in the file stay, first and unchanged; only the
    inputs it lacks are summarised and added after them."""
    import pyarrow.parquet as pq

    monkeypatch.chdir(tmp_path)
    rows = [{"id": f"r{i}", "text": f"Row {i}: the harbour ferry returns on Monday."} for i in range(7)]
    Path("rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:5]))
    first = run(["rows.jsonl", "--output", f"out.{kind}", *FAST])
    assert first.exit_code == 0, first.stderr
    Path("rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    again = run(["rows.jsonl", "--output", f"out.{kind}", "--skip-existing", *FAST])
    assert again.exit_code == 0, again.stderr
    assert again.stderr == (
        f"Wrote 2 summaries to out.{kind}.\nSkipped 5 inputs whose summaries exist (--skip-existing).\n"
    )
    if kind == "jsonl":
        records = [json.loads(line) for line in Path("out.jsonl").read_text().splitlines()]
    else:
        records = pq.read_table("out.parquet").to_pylist()
    assert [r["source"] for r in records] == [f"r{i}" for i in range(7)]
    assert [r["summary"] for r in records] == [echo_model.summary(r["text"]) for r in rows]
    done = run(["rows.jsonl", "--output", f"out.{kind}", "--skip-existing", *FAST])
    assert done.exit_code == 0 and "Skipped 7 inputs" in done.stderr, done.stderr
    assert len(pq.read_table("out.parquet") if kind == "parquet" else Path("out.jsonl").read_text().splitlines()) == 7


def test_skip_existing_counts_a_source_once_per_record_it_has(echo_model, tmp_path, monkeypatch):
    """Found by a black-box trial: two datasets with the same ids, the file holding the first one's records:
    a resume skipped both datasets' rows and never summarised the second."""
    monkeypatch.chdir(tmp_path)
    for name in ("a.jsonl", "b.jsonl"):
        Path(name).write_text("".join(json.dumps({"id": f"r{i}", "text": f"{name} row {i}."}) + "\n" for i in range(3)))
    first = run(["a.jsonl", "--output", "out.jsonl", *FAST])
    assert first.exit_code == 0, first.stderr
    again = run(["a.jsonl", "b.jsonl", "--output", "out.jsonl", "--skip-existing", *FAST])
    assert again.exit_code == 0, again.stderr
    records = [json.loads(line) for line in Path("out.jsonl").read_text().splitlines()]
    assert [r["summary"] for r in records] == [
        echo_model.summary(f"{n} row {i}.") for n in ("a.jsonl", "b.jsonl") for i in range(3)
    ]


def test_a_null_text_is_skipped_alike_in_jsonl_and_parquet(echo_model, tmp_path):
    """A row whose text is a missing value: JSONL's null failed the row (exit 1) where Parquet's null was
    read as an empty text and skipped. Both are now skipped, with the same line, and the run succeeds."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"id": "a", "text": "The harbour ferry returns on Monday, the council said."}, {"id": "b", "text": None}]
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    parquet = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    outcomes = []
    for path in (jsonl, parquet):
        result = run([str(path), "-f", "jsonl", *FAST])
        records = [json.loads(line) for line in result.stdout.splitlines()]
        outcomes.append((result.exit_code, [r["source"] for r in records], result.stderr.splitlines()))
    assert outcomes == [
        (0, ["a"], [f"Skipped b: {where} 2: no text (null)", "1 input skipped."]) for where in ("line", "row")
    ]
