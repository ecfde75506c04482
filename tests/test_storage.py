"""Object storage: folders, files and datasets on s3:// in, summaries to s3:// out, with and without Ray,
against a local S3-compatible server (moto in server mode) on 127.0.0.1, in the suite's loopback-only
network namespace."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import time

import pytest
from conftest import FAST, FAST_RAY, LOOPBACK_ONLY, run

pytest.importorskip("moto", reason="moto[server] is in the [test] extra")
pytest.importorskip("boto3")
pytestmark = pytest.mark.skipif(not LOOPBACK_ONLY, reason="network tests need the loopback-only namespace")


@pytest.fixture(scope="module")
def s3_server():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(10)


@pytest.fixture
def bucket(s3_server, monkeypatch):
    """A fresh bucket with a folder of articles, a Markdown file, a file to leave out and a dataset."""
    import boto3

    from summarize_cli import storage

    for name, value in {
        "AWS_ENDPOINT_URL": s3_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    storage._filesystem.cache_clear()
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    name = f"news-{time.monotonic_ns()}"
    client.create_bucket(Bucket=name)
    objects = {
        "in/harbour.txt": "The harbour ferry returns on Monday. The council said so on Friday.",
        "in/deep/robots.md": "# Robots\n\nThe library opened a reading room staffed by robots.",
        "in/deep/notes.log": "not an article",
        "in/.hidden.txt": "a hidden file",
        "rows.jsonl": "\n".join(
            json.dumps({"id": f"r{i}", "text": f"Row {i}: the ferry runs late."}) for i in range(3)
        ),
    }
    for key, body in objects.items():
        client.put_object(Bucket=name, Key=key, Body=body.encode())
    return name, client


def read_object(client, bucket: str, key: str) -> str:
    return client.get_object(Bucket=bucket, Key=key)["Body"].read().decode()


def keys(client, bucket: str, prefix: str) -> list[str]:
    listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return sorted(o["Key"] for o in listed)


def test_a_folder_on_s3_is_walked_and_mirrored_to_s3(echo_model, bucket):
    name, client = bucket
    result = run([f"s3://{name}/in/", "-o", f"s3://{name}/out/", *FAST])
    assert result.exit_code == 0, result.stderr
    assert keys(client, name, "out/") == [
        f"out/{name}/in/deep/robots.md.summary.txt",
        f"out/{name}/in/harbour.txt.summary.txt",
    ]
    harbour = "The harbour ferry returns on Monday. The council said so on Friday."
    assert read_object(client, name, f"out/{name}/in/harbour.txt.summary.txt") == echo_model.summary(harbour) + "\n"
    again = run([f"s3://{name}/in/", "-o", f"s3://{name}/out/", "--skip-existing", *FAST])
    assert again.exit_code == 0 and again.stderr == "Skipped 2 inputs whose summaries exist (--skip-existing).\n"


def test_include_and_exclude_apply_on_s3_and_a_missing_prefix_fails_alone(echo_model, bucket):
    name, _ = bucket
    result = run([f"s3://{name}/in/", f"s3://{name}/nothing/", "--include", "**/*.md", "-f", "jsonl", *FAST])
    assert result.exit_code == 1
    assert [json.loads(line)["source"] for line in result.stdout.splitlines()] == [f"s3://{name}/in/deep/robots.md"]
    assert f"Failed s3://{name}/nothing/: no such file or folder" in result.stderr


def test_a_dataset_on_s3_to_a_parquet_file_on_s3(echo_model, bucket):
    import pyarrow.parquet as pq

    name, client = bucket
    result = run([f"s3://{name}/rows.jsonl", "--output", f"s3://{name}/res/summaries.parquet", *FAST])
    assert result.exit_code == 0, result.stderr
    body = client.get_object(Bucket=name, Key="res/summaries.parquet")["Body"].read()
    table = pq.read_table(io.BytesIO(body))
    assert table.column("source").to_pylist() == ["r0", "r1", "r2"]
    assert table.column("summary").to_pylist() == [
        echo_model.summary(f"Row {i}: the ferry runs late.") for i in range(3)
    ]


def test_ray_reads_and_writes_s3_in_its_workers(env_model, local_ray, bucket):
    name, client = bucket
    local = run([f"s3://{name}/in/", f"s3://{name}/rows.jsonl", "-f", "jsonl", *FAST_RAY])
    assert local.exit_code == 0, local.stderr
    result = run([f"s3://{name}/in/", f"s3://{name}/rows.jsonl", "-o", f"s3://{name}/ray/", "--ray", *FAST_RAY])
    assert result.exit_code == 0, result.stderr
    assert keys(client, name, "ray/") == [
        f"ray/{name}/in/deep/robots.md.summary.txt",
        f"ray/{name}/in/harbour.txt.summary.txt",
        *(f"ray/{name}/rows.jsonl/r{i}.summary.txt" for i in range(3)),
    ]
    expected = {json.loads(line)["source"]: json.loads(line)["summary"] for line in local.stdout.splitlines()}
    assert read_object(client, name, f"ray/{name}/rows.jsonl/r1.summary.txt") == expected["r1"] + "\n"
    on_ray = run([f"s3://{name}/rows.jsonl", "--output", f"s3://{name}/ray.jsonl", "--ray", *FAST_RAY])
    assert on_ray.exit_code == 0, on_ray.stderr
    rows = [json.loads(line) for line in read_object(client, name, "ray.jsonl").splitlines()]
    assert [(r["source"], r["summary"]) for r in rows] == [(f"r{i}", expected[f"r{i}"]) for i in range(3)]
    assert keys(client, name, ".ray.jsonl.parts") == []


def test_an_output_folder_inside_the_walked_bucket_is_never_read(echo_model, bucket):
    name, client = bucket
    first = run([f"s3://{name}/in/", "-o", f"s3://{name}/in/out/", *FAST])
    assert first.exit_code == 0, first.stderr
    again = run([f"s3://{name}/in/", "-o", f"s3://{name}/in/out/", *FAST])  # out/ holds .txt files now
    assert again.exit_code == 0, again.stderr
    assert keys(client, name, "in/out/") == [
        f"in/out/{name}/in/deep/robots.md.summary.txt",
        f"in/out/{name}/in/harbour.txt.summary.txt",
    ]


def test_a_missing_bucket_is_one_short_line_as_input_and_as_output(echo_model, bucket, tmp_path):
    """pyarrow's AWS text (the operation, the key, a request id) shortened to what the user must fix."""
    missing = f"gone-{time.monotonic_ns()}"
    reason = f"bucket '{missing}': the specified bucket does not exist (NO_SUCH_BUCKET)"
    read = run([f"s3://{missing}/in/", *FAST])
    assert (read.exit_code, read.stderr.splitlines()) == (
        1,
        [
            f"Failed s3://{missing}/in/: cannot read ({reason})",
            "1 input failed:",
            f"  s3://{missing}/in/: cannot read ({reason})",
        ],
    )
    article = tmp_path / "a.txt"
    article.write_text("The harbour ferry returns on Monday, the council said on Friday.")
    for output in (["-o", f"s3://{missing}/out/"], ["--output", f"s3://{missing}/all.jsonl"]):
        written = run([str(article), *output, *FAST])
        target = f"s3://{missing}/out/a.txt.summary.txt" if output[0] == "-o" else output[1]
        assert (written.exit_code, written.stderr) == (1, f"Error: cannot write {target}: {reason}\n")
