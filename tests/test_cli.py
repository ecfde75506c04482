"""The CLI end to end against the tiny model, in process with CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from summarize_cli import cli
from summarize_cli.cli import app

FAST = ["--max-length", "12", "--min-length", "2", "--num-beams", "2", "-q", "--no-cache"]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def run(runner, args, input=None):
    return runner.invoke(app, args, input=input, catch_exceptions=False)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_one_file_prints_the_bare_summary(runner, env_model, samples):
    result = run(runner, [str(samples / "harbour-ferry.txt"), *FAST])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].strip() and "==>" not in lines[0]
    assert result.stderr == ""


def test_stdin_is_read_when_no_inputs(runner, env_model, samples):
    text = (samples / "solar-school.txt").read_text(encoding="utf-8")
    piped = run(runner, FAST, input=text)
    named = run(runner, [str(samples / "solar-school.txt"), *FAST])
    assert piped.exit_code == 0
    assert piped.stdout == named.stdout


def test_terminal_stdin_without_inputs_is_a_usage_error(runner, env_model, monkeypatch):
    monkeypatch.setattr(cli, "_stdin_is_terminal", lambda: True)
    result = run(runner, [])
    assert result.exit_code == 2
    assert "Usage: summarize" in result.stderr and result.stdout == ""


def test_folder_in_text_format_has_head_style_headers_in_sorted_order(runner, env_model, samples):
    result = run(runner, [str(samples), *FAST])
    assert result.exit_code == 0, result.stderr
    headers = [line for line in result.stdout.splitlines() if line.startswith("==> ")]
    expected = sorted(p.name for p in samples.iterdir() if p.suffix in (".txt", ".md"))
    assert [h[4:-4] for h in headers] == [str(samples / name) for name in expected]


def test_jsonl_records_carry_the_run_details(runner, env_model, samples, tiny_model):
    result = run(runner, [str(samples), "-f", "jsonl", *FAST])
    assert result.exit_code == 0
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 6
    first = records[0]
    for key in (
        "source",
        "summary",
        "model",
        "device",
        "backend",
        "precision",
        "settings",
        "input_tokens",
        "chunks",
        "seconds",
    ):
        assert key in first
    assert first["model"] == str(tiny_model)
    assert first["settings"]["num_beams"] == 2 and first["settings"]["max_length"] == 12
    assert first["settings"]["prefix"] == "summarize: " and first["settings"]["length_penalty"] == 2.0
    long = next(r for r in records if r["source"].endswith("river-cleanup-long.txt"))
    assert long["chunks"] >= 2 and long["input_tokens"] > 512
    assert all(r["chunks"] == 1 for r in records if r is not long)


def test_json_is_one_array_and_markdown_has_sections(runner, env_model, samples):
    files = [str(samples / "harbour-ferry.txt"), str(samples / "城市绿地.txt")]
    as_json = run(runner, [*files, "-f", "json", *FAST])
    data = json.loads(as_json.stdout)
    assert [d["source"] for d in data] == files
    as_md = run(runner, [*files, "-f", "markdown", *FAST])
    assert [line for line in as_md.stdout.splitlines() if line.startswith("## ")] == [f"## {f}" for f in files]
    empty = run(runner, [str(samples / "missing.txt"), "-f", "json", *FAST])
    assert json.loads(empty.stdout) == [] and empty.exit_code == 1


def test_stdin_jsonl_streams_many_documents_with_ids(runner, env_model):
    lines = "\n".join(json.dumps({"id": f"n{i}", "text": f"Article {i} about the harbour ferry."}) for i in range(5))
    result = run(runner, ["--stdin-format", "jsonl", "-f", "jsonl", *FAST], input=lines + "\nnot json\n")
    assert result.exit_code == 1
    assert [json.loads(line)["source"] for line in result.stdout.splitlines()] == [f"n{i}" for i in range(5)]
    assert "line 6" in result.stderr


def test_output_dir_mirrors_the_tree_and_prints_nothing(runner, env_model, tmp_path, monkeypatch, samples):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "notes" / "a.txt", (samples / "harbour-ferry.txt").read_text(encoding="utf-8"))
    write(tmp_path / "notes" / "deep" / "b.md", (samples / "library-robots.md").read_text(encoding="utf-8"))
    result = run(runner, ["notes", "-o", "out", *FAST])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert (tmp_path / "out/notes/a.summary.txt").read_text(encoding="utf-8").strip()
    assert (tmp_path / "out/notes/deep/b.summary.txt").is_file()
    assert "Wrote 2 summaries" in result.stderr
    as_json = run(runner, ["notes/a.txt", "-o", "out", "-f", "json", *FAST])
    assert json.loads((tmp_path / "out/notes/a.summary.json").read_text(encoding="utf-8"))["source"] == "notes/a.txt"
    assert as_json.exit_code == 0
    assert not list((tmp_path / "out").rglob("*.tmp"))


def test_output_dir_collisions_are_refused_before_loading(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "d" / "a.txt", "One.")
    write(tmp_path / "d" / "a.md", "Two.")
    result = run(runner, ["d", "-o", "out", "-m", "no/such-model-anywhere"])
    assert result.exit_code == 2
    assert "would both be written" in result.stderr
    write(tmp_path / "x.summary.txt", "I am an input")
    write(tmp_path / "x.txt", "Three.")
    result = run(runner, ["x.txt", "x.summary.txt", "-o", ".", "-m", "no/such-model-anywhere"])
    assert result.exit_code == 2 and "would overwrite input" in result.stderr


def test_same_seed_same_output_when_sampling(runner, env_model, samples):
    args = [str(samples / "solar-school.txt"), "--do-sample", "--top-k", "20", "--temperature", "1.5", *FAST]
    a = run(runner, [*args, "--seed", "7"]).stdout
    b = run(runner, [*args, "--seed", "7"]).stdout
    c = run(runner, [*args, "--seed", "8"]).stdout
    assert a == b
    assert a != c


def test_options_change_the_generation(runner, env_model, samples):
    path = str(samples / "harbour-ferry.txt")
    short = run(runner, [path, "-f", "jsonl", "-q", "--max-length", "5", "--min-length", "5"])
    longer = run(runner, [path, "-f", "jsonl", "-q", "--max-length", "40", "--min-length", "40", "--prefix", ""])
    s, l_ = json.loads(short.stdout), json.loads(longer.stdout)
    assert s["settings"]["max_length"] == 5 and l_["settings"]["prefix"] == ""
    assert len(s["summary"]) < len(l_["summary"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--min-length", "50", "--max-length", "10"], "greater than"),
        (["--temperature", "0"], "--temperature"),
        (["--top-p", "1.5"], "--top-p"),
        (["--top-p", "0"], "--top-p"),
        (["--num-beams", "0"], "--num-beams"),
    ],
)
def test_invalid_options_are_usage_errors_before_loading(runner, args, message):
    result = run(runner, ["-m", "no/such-model-anywhere", "-", *args], input="text")
    assert result.exit_code == 2
    assert message in result.stderr
    assert "no/such-model" not in result.stderr  # reported before any model is looked up


def test_missing_model_is_one_clear_line(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    result = run(runner, ["-m", "t5-small", "-"], input="Some text to summarise.")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: model 't5-small' is not in the Hugging Face cache")
    assert "hf download t5-small" in lines[0] and "-m PATH" in lines[0]
    assert "Traceback" not in result.output


def test_missing_local_folder_and_bad_folder(runner, tmp_path):
    result = run(runner, ["-m", str(tmp_path / "nope"), "-"], input="x")
    assert result.exit_code == 1 and "does not exist" in result.stderr
    (tmp_path / "empty").mkdir()
    result = run(runner, ["-m", str(tmp_path / "empty"), "-"], input="x")
    assert result.exit_code == 1 and "no config.json" in result.stderr


def test_float16_is_refused_for_t5(runner, env_model):
    result = run(runner, ["--dtype", "float16", "--backend", "torch", "-"], input="Some text.")
    assert result.exit_code == 2
    assert "float16" in result.stderr and "overflow" in result.stderr


def test_failed_and_skipped_inputs_set_the_exit_code(runner, env_model, tmp_path, samples):
    good = str(samples / "harbour-ferry.txt")
    empty = write(tmp_path / "empty.txt", "  \n")
    result = run(runner, [good, str(empty), *FAST])
    assert result.exit_code == 0
    assert "Skipped" in result.stderr and "empty.txt" in result.stderr
    result = run(runner, [good, str(tmp_path / "missing.txt"), *FAST])
    assert result.exit_code == 1
    assert "1 input(s) failed" in result.stderr and "missing.txt" in result.stderr
    assert result.stdout.count("==> ") == 1
    result = run(runner, [str(empty), *FAST])
    assert result.exit_code == 1 and "Nothing was summarised" in result.stderr


def test_verbose_reports_on_stderr_only(runner, env_model, samples):
    result = run(runner, [str(samples / "harbour-ferry.txt"), "-v", *FAST])
    assert "backend torch" in result.stderr or "backend ctranslate2" in result.stderr
    assert "num_beams=2" in result.stderr
    assert "backend" not in result.stdout


def test_truncate_mode_warns_on_stderr(runner, env_model, samples):
    result = run(runner, [str(samples / "river-cleanup-long.txt"), "--long", "truncate", "-f", "jsonl", *FAST])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["truncated"] is True
    assert "truncated" in result.stderr and "river-cleanup-long.txt" in result.stderr


def test_version(runner):
    result = run(runner, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("summarize-cli ")


def test_no_readable_input_reports_without_loading_a_model(runner, tmp_path):
    result = run(runner, [str(tmp_path / "missing.txt"), "-m", "no/such-model-anywhere"])
    assert result.exit_code == 1
    assert "missing.txt: no such file or directory" in result.stderr
    assert "no/such-model" not in result.stderr


def test_folder_without_matching_files_is_one_clear_error(runner, tmp_path):
    (tmp_path / "notes.rst").write_text("Not included by default.")
    result = run(runner, [str(tmp_path), "-m", "no/such-model-anywhere"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: no files to summarise in") and "--include" in result.stderr
