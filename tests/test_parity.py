"""The local run and --ray on a local Ray: the same inputs give the same records, warnings and exit code."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from summarize_cli.cli.app import app

FAST = ["--max-length", "10", "--min-length", "2", "--num-beams", "2", "-q", "--no-cache"]
TIMINGS = ("seconds",)  # the only fields allowed to differ: how long each summary took


def inputs(tmp_path, samples):
    folder = tmp_path / "news"
    folder.mkdir()
    for name in ("harbour-ferry.txt", "solar-school.txt", "城市绿地.txt"):
        (folder / name).write_bytes((samples / name).read_bytes())
    (folder / "blank.txt").write_text("  \n")
    long = tmp_path / "long.txt"
    long.write_text(" ".join(f"Sentence {i} tells of the harbour ferry and the council." for i in range(80)))
    dataset = tmp_path / "rows.jsonl"
    over_long = "The ferry. " * 600  # over --max-input-bytes below
    dataset.write_text(
        "\n".join(
            [
                json.dumps({"id": "first", "text": "The ferry returns to the harbour on Monday, the council said."}),
                json.dumps({"text": "A row without an id: the library opens a new reading room."}),
                "{not json",
                json.dumps({"id": "huge", "text": over_long}),
                json.dumps({"id": "last", "text": "   "}),
            ]
        )
        + "\n"
    )
    return [str(folder), str(long), str(dataset)]


def records(stdout: str) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in TIMINGS} for line in stdout.splitlines()]


@pytest.mark.parametrize("long_mode", ["truncate", "chunk"])
def test_local_and_ray_runs_agree(env_model, local_ray, tmp_path, samples, long_mode):
    args = [*inputs(tmp_path, samples), "-f", "jsonl", "--long", long_mode, "--max-input-bytes", "5000", *FAST]
    local = CliRunner().invoke(app, args, catch_exceptions=False)
    on_ray = CliRunner().invoke(app, [*args, "--ray", "--workers", "2"], catch_exceptions=False)

    assert local.exit_code == 1, local.stderr  # the bad line and the over-long row fail
    assert on_ray.exit_code == local.exit_code, on_ray.stderr
    assert records(on_ray.stdout) == records(local.stdout)
    assert on_ray.stderr == local.stderr

    names = [r["source"] for r in records(local.stdout)]
    assert names == [
        str(tmp_path / "news" / "harbour-ferry.txt"),
        str(tmp_path / "news" / "solar-school.txt"),
        str(tmp_path / "news" / "城市绿地.txt"),
        str(tmp_path / "long.txt"),
        "first",
        f"{tmp_path / 'rows.jsonl'}:2",
    ]
    long = records(local.stdout)[3]
    assert long["truncated"] is (long_mode == "truncate")
    assert (long["chunks"] == 1) is (long_mode == "truncate")
    expected_lines = [
        f"Skipped {tmp_path / 'news' / 'blank.txt'}: empty (only whitespace or control characters)",
        f"Failed {tmp_path / 'rows.jsonl'}:3: not valid JSON",
        f"Failed {tmp_path / 'rows.jsonl'}:4: larger than --max-input-bytes (5,000 bytes)",
        "Skipped last: line 5: empty (only whitespace or control characters)",
    ]
    if long_mode == "truncate":
        expected_lines.append(f"Warning: {tmp_path / 'long.txt'}: truncated from")
    for expected in expected_lines:
        assert expected in local.stderr, (expected, local.stderr)
