"""A real cluster with real failures, each run as a whole `summarize` process: a worker killed with SIGKILL
mid-run, a node of a two-node loopback cluster removed mid-run, and a stale cluster record. Every input's
record comes out exactly once and the run exits 0; the report's counts are exact after the retry.

Like every Ray test, these run in the suite's loopback-only network namespace (see conftest.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from conftest import LOOPBACK_ONLY

pytestmark = [
    pytest.mark.skipif(not LOOPBACK_ONLY, reason="Ray tests need a loopback-only network namespace (root)"),
]
pytest.importorskip("ray.data", reason="the [ray] extra is not installed")

SLOW = [
    "--force",
    "--min-length",
    "24",
    "--max-length",
    "24",
    "--num-beams",
    "4",
    "--no-cache",
    "-q",
    "--batch-size",
    "2",
]
ACTORS = ("ray::SummarizeWorker", "ray::MapWorker(MapBatches(SummarizeBatches))")


def summarize_process(args, tiny_model, cwd, stdin=subprocess.DEVNULL, env_extra=None):
    env = {**os.environ, "SUMMARIZE_MODEL": str(tiny_model), "RAY_TMPDIR": tempfile.mkdtemp(prefix="ray-")}
    env.update(env_extra or {})
    return subprocess.Popen(
        [sys.executable, "-m", "summarize_cli", *args],
        cwd=cwd,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def actor_pids(driver) -> list[int]:
    """The actors of the Ray instance that `driver` (a summarize process) started: among its descendants
    only, so that no other test's cluster is touched."""
    import psutil

    found = []
    for process in psutil.Process(driver.pid).children(recursive=True):
        try:
            line = " ".join(process.cmdline())
        except psutil.Error:
            continue
        if any(line.startswith(name) for name in ACTORS):
            found.append(process.pid)
    return found


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def finish(process, timeout: float = 180) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out.decode(), err.decode()


def jsonl_feed(count: int) -> bytes:
    return "".join(
        json.dumps({"id": f"r{i:03}", "text": f"Record {i}: the harbour ferry runs late, the council said."}) + "\n"
        for i in range(count)
    ).encode()


def test_a_worker_killed_mid_stream_loses_and_doubles_no_record(tiny_model, tmp_path):
    """stdin jsonl on the driver's actor pool: the batch the dead actor held runs again on a live one."""
    process = summarize_process(
        ["--ray", "--workers", "2", "--stdin-format", "jsonl", "-f", "jsonl", *SLOW],
        tiny_model,
        tmp_path,
        stdin=subprocess.PIPE,
    )
    lines: list[str] = []

    def feed_and_read():
        process.stdin.write(jsonl_feed(300))
        process.stdin.close()

    threading.Thread(target=feed_and_read, daemon=True).start()
    reader_done = threading.Event()

    def read():
        for raw in process.stdout:
            lines.append(raw.decode())
        reader_done.set()

    threading.Thread(target=read, daemon=True).start()
    wait_for(lambda: len(lines) >= 32, 240, "32 records")
    victims = actor_pids(process)
    assert len(victims) == 2, victims
    os.kill(victims[0], signal.SIGKILL)
    process.wait(timeout=180)
    reader_done.wait(10)
    err = process.stderr.read().decode()
    assert process.returncode == 0, err
    assert err == ""  # nothing of Ray's on the terminal, no retry notice
    ids = [json.loads(line)["source"] for line in lines]
    assert ids == [f"r{i:03}" for i in range(300)]  # each once, in input order


def test_a_worker_killed_mid_folder_run_leaves_every_file_written_once(tiny_model, tmp_path):
    """A folder on Ray Data with -o: the workers write; Ray Data restarts the actor and retries its task."""
    news = tmp_path / "news"
    news.mkdir()
    for i in range(120):
        (news / f"story{i:03}.txt").write_text(f"Story {i}. The harbour ferry runs late again, the council said.")
    out = tmp_path / "out"
    process = summarize_process(
        ["news", "-o", "out", "--ray", "--workers", "2", *SLOW[:-2], "--batch-size", "2"], tiny_model, tmp_path
    )
    wait_for(lambda: len(list(out.rglob("*.summary.txt"))) >= 16, 240, "16 summaries written")
    victims = actor_pids(process)
    assert victims, "no Ray Data actor found"
    os.kill(victims[0], signal.SIGKILL)
    code, stdout, stderr = finish(process)
    assert code == 0, stderr
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == [f"news/story{i:03}.txt.summary.txt" for i in range(120)]  # no temporary file left
    assert stdout == "" and stderr == "Wrote 120 summaries to out.\n"  # exact counts; no Ray line on screen


def test_a_node_removed_mid_run_loses_and_doubles_no_row(tiny_model, tmp_path):
    """A parquet dataset to --output on a two-node loopback cluster; one node goes away mid-run."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from ray.cluster_utils import Cluster

    rows = [{"id": f"row{i:03}", "text": f"Row {i}: the harbour ferry returns, the council said."} for i in range(300)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "articles.parquet")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "node_ip_address": "127.0.0.1"})
    try:
        nodes = [cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1") for _ in range(2)]
        cluster.wait_for_nodes()
        process = summarize_process(
            ["articles.parquet", "--output", "out.parquet", "--ray", cluster.address, "--workers", "2", *SLOW],
            tiny_model,
            tmp_path,
        )
        parts = tmp_path / ".out.parquet.parts"
        wait_for(lambda: parts.is_dir() and len(list(parts.glob("*.parquet"))) >= 2, 240, "two parts written")
        cluster.remove_node(nodes[1])
        code, stdout, stderr = finish(process)
        assert code == 0, stderr
        assert stdout == "" and stderr == "Wrote 300 summaries to out.parquet.\n"
        table = pq.read_table(tmp_path / "out.parquet")
        assert table.column("source").to_pylist() == [r["id"] for r in rows]  # each once, in input order
        assert not parts.exists()
    finally:
        cluster.shutdown()


def test_a_stale_cluster_record_fails_in_seconds(tiny_model, tmp_path, samples):
    temp = Path(tempfile.mkdtemp(prefix="ray-"))
    (temp / "ray").mkdir()
    for folder in (temp, temp / "ray"):  # wherever this Ray version looks for `ray start`'s record
        (folder / "ray_current_cluster").write_text("127.0.0.1:9\n")
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "summarize_cli", str(samples), "--ray", "auto", "-q"],
        capture_output=True,
        text=True,
        env={**os.environ, "SUMMARIZE_MODEL": str(tiny_model), "RAY_TMPDIR": str(temp)},
        timeout=60,
    )
    assert time.monotonic() - started < 15
    assert result.returncode == 1
    assert result.stderr.startswith("Error: cannot join Ray at 127.0.0.1:9: nothing answers on 127.0.0.1:9")
    assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_auto_with_no_cluster_says_how_to_start_one(monkeypatch, tmp_path):
    """No RAY_ADDRESS, no record of a `ray start`, and (as Ray's own search says) no cluster running."""
    from ray._private import services

    from summarize_cli.errors import SummarizeError
    from summarize_cli.scale.cluster import resolve_address

    def nothing_runs(address, temp_dir=None):
        raise ConnectionError("Could not find any running Ray instance. Please specify ... --address flag")

    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(services, "canonicalize_bootstrap_address", nothing_runs)
    with pytest.raises(SummarizeError) as caught:
        resolve_address("auto")
    assert str(caught.value) == (
        "cannot join Ray at auto: no running cluster was found on this machine "
        "(start one with `ray start --head`, or give --ray HOST:PORT)"
    )
    assert resolve_address("10.0.0.5:6379") == "10.0.0.5:6379"
