"""Ray: the same pipeline on a local Ray instance gives the single-process results, in order."""

from __future__ import annotations

import json
import os
import sys

import pytest
from conftest import FAST_RAY, run, usage_error

from summarize_cli.specs import usable_cpus


def corpus(tmp_path, count=24):
    folder = tmp_path / "news"
    for i in range(count):
        sub = folder / ("a" if i % 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"story{i:02}.txt").write_text(
            f"Story {i}. The harbour ferry will run " + "late at night " * (i % 7 + 1) + "the council said."
        )
    (folder / "empty.txt").write_text("   ")
    return folder


def summaries(output: str) -> list[tuple[str, str]]:
    return [(r["source"], r["summary"]) for r in map(json.loads, output.splitlines())]


def test_ray_gives_the_single_process_results_in_order(env_model, local_ray, tmp_path):
    folder = corpus(tmp_path)
    single = run([str(folder), "-f", "jsonl", *FAST_RAY])
    on_ray = run([str(folder), "-f", "jsonl", "--ray", "--workers", "2", *FAST_RAY])
    assert on_ray.exit_code == single.exit_code == 0, on_ray.stderr
    assert summaries(on_ray.stdout) == summaries(single.stdout)
    assert len(summaries(on_ray.stdout)) == 24
    assert "empty.txt" in on_ray.stderr and "Skipped" in on_ray.stderr
    record = json.loads(on_ray.stdout.splitlines()[0])
    assert record["backend"] == "ctranslate2" and record["settings"]["max_length"] == 10


def test_ray_mirrors_files_under_the_output_dir(env_model, local_ray, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    corpus(tmp_path, count=4)
    result = run(["news", "-o", "out", "--ray", *FAST_RAY])
    assert result.exit_code == 0, result.stderr
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.txt")) == [
        "news/a/story01.txt.summary.txt",
        "news/a/story03.txt.summary.txt",
        "news/b/story00.txt.summary.txt",
        "news/b/story02.txt.summary.txt",
    ]


@pytest.mark.parametrize("kind", ["parquet", "jsonl"])
def test_datasets_with_a_text_column_to_an_output_file(env_model, local_ray, tmp_path, kind):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"key": f"row{i}", "body": f"Row {i}: the harbour ferry returns, the council said."} for i in range(30)]
    data = tmp_path / f"articles.{kind}"
    if kind == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), data)
    else:
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    options = ["--text-column", "body", "--id-column", "key", *FAST_RAY]
    single = run([str(data), "-f", "jsonl", *options])
    assert single.exit_code == 0, single.stderr
    out = tmp_path / f"summaries.{kind}"
    on_ray = run([str(data), "--ray", "--output", str(out), *options])
    assert on_ray.exit_code == 0, on_ray.stderr
    if kind == "parquet":
        written = pq.read_table(out).to_pylist()
    else:
        written = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["source"], r["summary"]) for r in written] == summaries(single.stdout)
    assert [r["source"] for r in written] == [f"row{i}" for i in range(30)]


def test_output_file_works_without_ray_and_refuses_other_extensions(echo_model, samples, tmp_path):
    out = tmp_path / "all.jsonl"
    result = run([str(samples), "--output", str(out), *FAST_RAY])
    assert result.exit_code == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) == 6 and result.stdout == ""
    written = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    files = sorted(samples.iterdir())
    assert [(r["source"], r["summary"]) for r in written] == [
        (str(p), echo_model.summary_of(p, max_length=10)) for p in files
    ]
    bad = run([str(samples), "--output", str(tmp_path / "all.csv"), *FAST_RAY])
    assert bad.exit_code == 2 and "must end in .jsonl or .parquet" in bad.stderr  # a usage error, before any work
    assert usage_error(bad) == f"Invalid value for --output: must end in .jsonl or .parquet: {tmp_path / 'all.csv'}"
    assert not (tmp_path / "all.csv").exists()


def test_ray_options_need_ray_and_the_extra(echo_model, samples, monkeypatch):
    workers = run([str(samples), "--workers", "2"])
    assert workers.exit_code == 2
    assert usage_error(workers) == "Invalid value for --workers: needs --ray"
    assert usage_error(run([str(samples), "--ray-address", "auto"])) == "Invalid value for --ray-address: needs --ray"
    monkeypatch.setitem(sys.modules, "ray", None)
    result = run([str(samples), "--ray", *FAST_RAY])
    assert result.exit_code == 2
    assert "pip install 'summarize-cli[ray]'" in result.stderr
    assert result.stderr == "Error: --ray needs Ray: pip install 'summarize-cli[ray]'\n" and result.stdout == ""


def test_ray_takes_an_optional_address_after_it(tmp_path, monkeypatch):
    from summarize_cli.cli.app import ray_address_argument

    monkeypatch.chdir(tmp_path)
    (tmp_path / "news").mkdir()
    assert ray_address_argument(["--ray", "auto", "news"]) == ["--ray", "--ray-address", "auto", "news"]
    assert ray_address_argument(["--ray", "ray://head:10001", "x"]) == [
        "--ray",
        "--ray-address",
        "ray://head:10001",
        "x",
    ]
    assert ray_address_argument(["--ray", "10.0.0.5:6379"]) == ["--ray", "--ray-address", "10.0.0.5:6379"]
    assert ray_address_argument(["--ray", "head:6379", "news"]) == ["--ray", "--ray-address", "head:6379", "news"]
    assert ray_address_argument(["--ray", "news"]) == ["--ray", "news"]  # an input, not an address
    for uri in ("s3://news/data.parquet", "gs://corpus/in/", "hdfs://name/x.jsonl"):  # object storage: inputs
        assert ray_address_argument(["--ray", uri, "-o", "out"]) == ["--ray", uri, "-o", "out"]
    (tmp_path / "auto").write_text("a file named auto")
    assert ray_address_argument(["--ray", "auto"]) == ["--ray", "auto"]


def test_ray_resumes_an_output_dataset_and_an_output_folder(env_model, local_ray, tmp_path, monkeypatch):
    """--skip-existing at scale: rows whose file (-o) is there are left out by the workers, rows whose
    record the --output file holds by the driver (in input order); the earlier records stay first."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    monkeypatch.chdir(tmp_path)
    rows = [{"id": f"r{i}", "text": f"Row {i}: the harbour ferry returns, the council said."} for i in range(9)]
    pq.write_table(pa.Table.from_pylist(rows[:6]), "rows.parquet")
    first = run(["rows.parquet", "--output", "out.parquet", "--ray", *FAST_RAY])
    folder = run(["rows.parquet", "-o", "out", "--ray", *FAST_RAY])
    assert first.exit_code == folder.exit_code == 0, first.stderr + folder.stderr
    earlier = pq.read_table("out.parquet").to_pylist()
    pq.write_table(pa.Table.from_pylist(rows), "rows.parquet")
    again = run(["rows.parquet", "--output", "out.parquet", "--ray", "--skip-existing", *FAST_RAY])
    assert again.exit_code == 0, again.stderr
    assert (
        again.stderr == "Wrote 3 summaries to out.parquet.\nSkipped 6 inputs whose summaries exist (--skip-existing).\n"
    )
    records = pq.read_table("out.parquet").to_pylist()
    assert [r["source"] for r in records] == [f"r{i}" for i in range(9)]
    assert [r["summary"] for r in records[:6]] == [r["summary"] for r in earlier]
    resumed = run(["rows.parquet", "-o", "out", "--ray", "--skip-existing", *FAST_RAY])
    assert resumed.exit_code == 0, resumed.stderr
    assert resumed.stderr == "Wrote 3 summaries to out.\nSkipped 6 inputs whose summaries exist (--skip-existing).\n"
    assert sorted(p.name for p in (tmp_path / "out" / "rows.parquet").iterdir()) == [
        f"r{i}.summary.txt" for i in range(9)
    ]


@pytest.mark.parametrize("output", [["-o", "out"], ["--output", "out.jsonl"]])
def test_ray_in_a_terminal_shows_one_display_and_leaves_only_the_report(tmp_path, output):
    """With the progress display on (stderr a terminal), the workers write and the driver only counts:
    one display, gone at the end, and nothing of Ray's on the screen."""
    from conftest import LOOPBACK_ONLY
    from test_terminal import Terminal

    if not LOOPBACK_ONLY:
        pytest.skip("Ray tests run only in a loopback-only network namespace")
    folder = tmp_path / "news"
    folder.mkdir()
    for i in range(3):
        (folder / f"s{i}.txt").write_text(f"Story {i}. The harbour ferry returns. The council said so on Monday.")
    env = {**os.environ, "SUMMARIZE_CACHE_DIR": str(tmp_path / "cache")}
    args = [sys.executable, "-m", "summarize_cli", "news", *output, "--ray", "--method", "extractive"]
    term = Terminal(args, env, cols=100, cwd=tmp_path)
    assert term.finish(180) == 0, "\n".join(term.lines())
    assert term.lines() == [
        "3 documents were already shorter than a summary and were kept as they are (--force summarises them).",
        f"Wrote 3 summaries to {output[1]}.",
    ]


def test_threads_are_bounded_by_the_cluster_s_nodes_not_by_the_driver(env_model, local_ray, samples):
    """On Ray, --threads is each worker's: the driver's own CPU count refused a value meant for larger
    nodes. Past the largest node it is one line at once (Ray would have waited for a node forever)."""
    import ray

    largest = int(max(n["Resources"].get("CPU", 0) for n in ray.nodes() if n["Alive"]))
    local = run([str(samples / "harbour-ferry.txt"), "--threads", str(usable_cpus() + 1), *FAST_RAY])
    assert local.exit_code == 2 and "the CPUs here" in local.stderr
    too_many = run([str(samples / "harbour-ferry.txt"), "--ray", "--threads", str(largest + 1), *FAST_RAY])
    assert (too_many.exit_code, too_many.stderr) == (
        1,
        f"Error: --threads {largest + 1}: no node of the Ray cluster has that many CPUs (the largest has {largest})\n",
    )
    fits = run([str(samples / "harbour-ferry.txt"), "--ray", "--threads", str(largest), *FAST_RAY])
    assert (fits.exit_code, len(fits.stdout.splitlines())) == (0, 1), fits.stderr
