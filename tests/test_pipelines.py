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
    assert [s["system"].split(" [")[0] for s in report["systems"]] == [env_model.name, "Lead-3"]
