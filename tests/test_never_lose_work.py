"""Never lose work, round 2: signals during native calls, --output safety, output paths, bounds, caches."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

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


def stop_and_time(proc, sig) -> tuple[int, float, str]:
    sent = time.monotonic()
    proc.send_signal(sig)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("the run did not stop within 20 s of the signal") from None
    return proc.returncode, time.monotonic() - sent, proc.stderr.read()


@pytest.mark.parametrize(
    ("sig", "code", "word"), [(signal.SIGTERM, 143, "Terminated"), (signal.SIGINT, 130, "Interrupted")]
)
def test_signal_during_a_native_generate_stops_at_once_and_keeps_finished_work(tiny_model, tmp_path, sig, code, word):
    folder = tmp_path / "news"
    folder.mkdir()
    for i in range(3):
        (folder / f"s{i}.txt").write_text(f"Story {i}: the harbour ferry returns on Monday, the council said.")
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, str(LAUNCHER), str(folder), "-m", "slow", "-o", str(out), "--batch-size", "1", *QUICK],
        env=env_with(tiny_model, SLOW="generate", SUMMARIZE_CACHE_DIR=str(tmp_path / "cache")),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = out / "news" / "s0.txt.summary.txt"
    wait_for(first.is_file, 60, proc)
    time.sleep(0.5)  # the second batch is now inside the native call
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
    assert "Terminated." in stderr
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
