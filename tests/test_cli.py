"""The CLI in process with CliRunner: its plumbing on the fake `echo` engine, whose summaries are exact, and
a few runs end to end on the tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FAST, SAMPLES, run, usage_error

from summarize_cli.specs import usable_cpus


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_one_file_prints_the_bare_summary(echo_model, samples):
    result = run([str(samples / "harbour-ferry.txt"), *FAST])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].strip() and "==>" not in lines[0]
    assert result.stdout == echo_model.summary_of(samples / "harbour-ferry.txt") + "\n"
    assert result.stderr == ""


def test_stdin_is_read_when_no_inputs(echo_model, samples):
    text = (samples / "solar-school.txt").read_text(encoding="utf-8")
    piped = run(FAST, input=text)
    named = run([str(samples / "solar-school.txt"), *FAST])
    assert piped.exit_code == 0
    assert piped.stdout == named.stdout
    assert piped.stdout == echo_model.summary(text) + "\n"


def test_terminal_stdin_without_inputs_is_a_usage_error(echo_model, monkeypatch):
    monkeypatch.setattr("summarize_cli.cli.loop._stdin_is_terminal", lambda: True)
    result = run([])
    assert result.exit_code == 2
    assert "Usage: summarize" in result.stderr and result.stdout == ""
    assert "Give files or folders to summarise, or pipe text in: cat article.txt | summarize" in result.stderr


def test_folder_in_text_format_has_head_style_headers_in_sorted_order(echo_model, samples):
    result = run([str(samples), *FAST])
    assert result.exit_code == 0, result.stderr
    headers = [line for line in result.stdout.splitlines() if line.startswith("==> ")]
    expected = sorted(p.name for p in samples.iterdir() if p.suffix in (".txt", ".md"))
    assert [h[4:-4] for h in headers] == [str(samples / name) for name in expected]
    sections = [f"==> {samples / name} <==\n{echo_model.summary_of(samples / name)}\n" for name in expected]
    assert result.stdout == "\n".join(sections)


def test_jsonl_records_carry_the_run_details(env_model, samples, tiny_model):
    result = run([str(samples), "-f", "jsonl", *FAST])
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
        "method",
        "settings",
        "input_tokens",
        "chunks",
        "seconds",
    ):
        assert key in first
    assert first["model"] == str(tiny_model) and first["method"] == "abstractive"
    assert first["settings"]["num_beams"] == 2 and first["settings"]["max_length"] == 12
    assert first["settings"]["prefix"] == "summarize: " and first["settings"]["length_penalty"] == 2.0
    long = next(r for r in records if r["source"].endswith("river-cleanup-long.txt"))
    assert long["chunks"] >= 2 and long["input_tokens"] > 512
    assert all(r["chunks"] == 1 for r in records if r is not long)


def test_json_is_one_array_and_markdown_has_sections(echo_model, samples):
    files = [str(samples / "harbour-ferry.txt"), str(samples / "城市绿地.txt")]
    summaries = [echo_model.summary_of(Path(f)) for f in files]
    as_json = run([*files, "-f", "json", *FAST])
    assert as_json.exit_code == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert [d["source"] for d in data] == files
    assert [d["summary"] for d in data] == summaries
    as_md = run([*files, "-f", "markdown", *FAST])
    assert [line for line in as_md.stdout.splitlines() if line.startswith("## ")] == [f"## {f}" for f in files]
    assert as_md.exit_code == 0 and as_md.stdout == "\n".join(
        f"## {f}\n\n{summary}\n" for f, summary in zip(files, summaries, strict=True)
    )
    empty = run([str(samples / "missing.txt"), "-f", "json", *FAST])
    assert json.loads(empty.stdout) == [] and empty.exit_code == 1


def test_stdin_jsonl_streams_many_documents_with_ids(echo_model):
    texts = [f"Article {i} about the harbour ferry." for i in range(5)]
    lines = "\n".join(json.dumps({"id": f"n{i}", "text": text}) for i, text in enumerate(texts))
    result = run(["--stdin-format", "jsonl", "-f", "jsonl", *FAST], input=lines + "\nnot json\n")
    assert result.exit_code == 1
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["source"] for r in records] == [f"n{i}" for i in range(5)]
    assert [r["summary"] for r in records] == [echo_model.summary(text) for text in texts]
    assert "<stdin>:6" in result.stderr  # the bad line, by its number
    assert "Failed <stdin>:6: not valid JSON" in result.stderr


def test_output_dir_mirrors_the_tree_and_prints_nothing(echo_model, tmp_path, monkeypatch, samples):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "notes" / "a.txt", (samples / "harbour-ferry.txt").read_text(encoding="utf-8"))
    write(tmp_path / "notes" / "deep" / "b.md", (samples / "library-robots.md").read_text(encoding="utf-8"))
    result = run(["notes", "-o", "out", *FAST])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert (tmp_path / "out/notes/a.txt.summary.txt").read_text(encoding="utf-8").strip()
    assert (tmp_path / "out/notes/a.txt.summary.txt").read_text(encoding="utf-8") == (
        echo_model.summary_of(samples / "harbour-ferry.txt") + "\n"
    )
    assert (tmp_path / "out/notes/deep/b.md.summary.txt").is_file()
    assert (tmp_path / "out/notes/deep/b.md.summary.txt").read_text(encoding="utf-8") == (
        echo_model.summary_of(samples / "library-robots.md") + "\n"
    )
    assert "Wrote 2 summaries" in result.stderr
    as_json = run(["notes/a.txt", "-o", "out", "-f", "json", *FAST])
    written = json.loads((tmp_path / "out/notes/a.txt.summary.json").read_text(encoding="utf-8"))
    assert written["source"] == "notes/a.txt"
    assert as_json.exit_code == 0
    assert not list((tmp_path / "out").rglob("*.tmp"))


def test_output_dir_collisions_are_refused_before_loading(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # the whole source name is kept (a.txt -> a.txt.summary.txt): stdin and a file named `stdin` can meet
    write(tmp_path / "stdin", "A file named stdin.")
    result = run(["-", "stdin", "-o", "out", "-m", "no/such-model-anywhere"], input="Piped text.")
    assert result.exit_code == 2
    assert "would both be written" in result.stderr
    target = tmp_path.resolve() / "out" / "stdin.summary.txt"
    assert usage_error(result) == f"Invalid value for --output-dir: <stdin> and stdin would both be written to {target}"
    write(tmp_path / "x.txt.summary.txt", "I am an input")
    write(tmp_path / "x.txt", "Three.")
    result = run(["x.txt", "x.txt.summary.txt", "-o", ".", "-m", "no/such-model-anywhere"])
    assert result.exit_code == 2 and "would overwrite input" in result.stderr
    target = tmp_path.resolve() / "x.txt.summary.txt"
    assert usage_error(result) == f"Invalid value for --output-dir: the summary of x.txt would overwrite input {target}"


def test_same_seed_same_output_when_sampling(env_model, samples):
    args = [str(samples / "solar-school.txt"), "--do-sample", "--top-k", "20", "--temperature", "1.5", *FAST]
    a = run([*args, "--seed", "7"]).stdout
    b = run([*args, "--seed", "7"]).stdout
    c = run([*args, "--seed", "8"]).stdout
    assert a == b
    assert a != c


def test_options_change_the_generation(echo_model, samples):
    path = str(samples / "harbour-ferry.txt")
    short = run([path, "-f", "jsonl", "-q", "--max-length", "5", "--min-length", "5"])
    longer = run([path, "-f", "jsonl", "-q", "--max-length", "40", "--min-length", "40", "--prefix", ""])
    s, l_ = json.loads(short.stdout), json.loads(longer.stdout)
    assert s["settings"]["max_length"] == 5 and l_["settings"]["prefix"] == ""
    assert s["settings"]["prefix"] == "summarize: " and l_["settings"]["max_length"] == 40
    assert len(s["summary"]) < len(l_["summary"])
    # the backend got exactly these settings: the echo keeps max_length tokens of the text after the prefix
    assert s["summary"] == echo_model.summary_of(samples / "harbour-ferry.txt", 5)
    assert l_["summary"] == echo_model.summary_of(samples / "harbour-ferry.txt", 40)


@pytest.mark.parametrize(
    ("args", "message", "error"),
    [
        (
            ["--min-length", "50", "--max-length", "10"],
            "greater than",
            "--min-length (50) is greater than --max-length (10)",
        ),
        (["--temperature", "0"], "--temperature", "--temperature must be a finite number greater than 0 (got 0.0)"),
        (["--top-p", "1.5"], "--top-p", "--top-p must be in (0, 1] (got 1.5)"),
        (["--top-p", "0"], "--top-p", "--top-p must be in (0, 1] (got 0.0)"),
        (["--num-beams", "0"], "--num-beams", "--num-beams must be between 1 and 64 (got 0)"),
        (["--num-beams", "100000"], "--num-beams", "--num-beams must be between 1 and 64 (got 100000)"),
        (["--temperature", "inf"], "--temperature", "--temperature must be a finite number greater than 0 (got inf)"),
        (["--temperature", "nan"], "--temperature", "--temperature must be a finite number greater than 0 (got nan)"),
        (["--top-p", "nan"], "--top-p", "--top-p must be in (0, 1] (got nan)"),
        (["--length-penalty", "nan"], "--length-penalty", "--length-penalty must be a finite number (got nan)"),
        (["--length-penalty", "-inf"], "--length-penalty", "--length-penalty must be a finite number (got -inf)"),
    ],
)
def test_invalid_options_are_usage_errors_before_loading(args, message, error):
    result = run(["-m", "no/such-model-anywhere", "-", *args], input="text")
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stderr == f"Error: {error}\n"  # the option's own check, not Click's "No such option"
    assert "no/such-model" not in result.stderr  # reported before any model is looked up


BOUNDS = [
    (["--device", "gpu"], "Invalid value for --device: 'gpu': give auto, cpu, cuda, cuda:N (N a number) or mps"),
    (["--device", "xpu"], "Invalid value for --device: 'xpu': give auto, cpu, cuda, cuda:N (N a number) or mps"),
    (
        ["--device", "cuda:x"],
        "Invalid value for --device: 'cuda:x': give auto, cpu, cuda, cuda:N (N a number) or mps",
    ),
    (
        ["--threads", "100000"],
        f"Invalid value for --threads: must be between 1 and {usable_cpus()}, the CPUs here (got 100000)",
    ),
    (["--batch-size", "1000000"], "Invalid value for --batch-size: must be between 1 and 1024 (got 1000000)"),
    (["--timeout", "inf"], "Invalid value for --timeout: must be between 0.1 and 86400 seconds (got inf)"),
    (["--timeout", "nan"], "Invalid value for --timeout: must be between 0.1 and 86400 seconds (got nan)"),
]
EVAL = ["eval", str(SAMPLES / "harbour-ferry.txt")]


@pytest.mark.parametrize(
    ("command", "args", "error"),
    [([], a, e) for a, e in BOUNDS] + [(EVAL, a, e) for a, e in BOUNDS if a[0] != "--timeout"],  # eval reads no URLs
)
def test_option_bounds_are_usage_errors_before_loading(command, args, error):
    """Every model, device and input option out of its bounds is exit 2 naming it, before any model loads
    (--device gpu once said "use --backend torch", --threads 100000 crashed, --timeout nan was taken)."""
    result = run([*command, "-m", "no/such-model-anywhere", *args, *([] if command else ["-"])], input="text")
    assert usage_error(result) == error
    assert "no/such-model" not in result.stderr


@pytest.mark.parametrize("inputs", [[""], ["samples/harbour-ferry.txt", ""]])
def test_an_empty_input_name_is_a_usage_error(echo_model, inputs):
    """`summarize "$UNSET"` once summarised the whole current folder and exited 0."""
    result = run([*inputs, "-q"])
    message = "Invalid value for INPUTS: an input name is empty (an unset variable?); give . for the current folder"
    assert usage_error(result) == message
    assert result.stdout == ""


def test_help_gives_the_batch_size_default_the_engine_uses(monkeypatch, tiny_model):
    """--help once said 16 for CTranslate2 on CPU where the engine takes 4 per thread."""
    from summarize_cli.model.engine import load_engine

    monkeypatch.setenv("COLUMNS", "300")
    shown = " ".join(run(["--help"]).stdout.split())
    assert "(default: 4 per --threads for ctranslate2 on CPU, 8 for torch, 32 on CUDA)" in shown
    for threads in (1, 2):
        engine = load_engine(str(tiny_model), backend="ctranslate2", device="cpu", threads=threads)
        assert engine.default_batch_size == 4 * threads
    assert load_engine(str(tiny_model), backend="torch", device="cpu").default_batch_size == 8


def test_a_nul_list_without_null_and_a_bad_port_fail_alone(echo_model, samples, tmp_path):
    good = samples / "harbour-ferry.txt"
    listing = tmp_path / "list"
    listing.write_bytes(f"{good}\0{good}\0".encode())  # find -print0, read without -0
    result = run([str(good), "http://127.0.0.1:70000/x", "--files-from", str(listing), *FAST])
    assert result.exit_code == 1
    assert result.stdout == f"==> {good} <==\n{echo_model.summary_of(good)}\n"
    assert "http://127.0.0.1:70000/x: not a valid URL (Port out of range 0-65535)" in result.stderr
    assert f"{good}\\0{good}\\0: the name holds a NUL byte (a NUL-separated list needs -0)" in result.stderr


def test_missing_model_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    result = run(["-m", "t5-small", "--method", "abstractive", "-"], input="Some text to summarise.")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: model 't5-small' is not in the Hugging Face cache")
    assert "hf download t5-small" in lines[0] and "-m PATH" in lines[0]
    assert "Traceback" not in result.output


def test_missing_local_folder_and_bad_folder(tmp_path):
    result = run(["-m", str(tmp_path / "nope"), "-"], input="x")
    assert result.exit_code == 1 and "does not exist" in result.stderr
    (tmp_path / "empty").mkdir()
    result = run(["-m", str(tmp_path / "empty"), "-"], input="x")
    assert result.exit_code == 1 and "no config.json" in result.stderr


def test_float16_is_refused_for_t5(env_model):
    result = run(["--dtype", "float16", "--backend", "torch", "-"], input="Some text.")
    assert result.exit_code == 2
    assert "float16" in result.stderr and "overflow" in result.stderr
    assert result.stderr.startswith("Error: --dtype float16 ") and result.stdout == ""


def test_failed_and_skipped_inputs_set_the_exit_code(echo_model, tmp_path, samples):
    good = str(samples / "harbour-ferry.txt")
    summary = echo_model.summary_of(samples / "harbour-ferry.txt")
    empty = write(tmp_path / "empty.txt", "  \n")
    result = run([good, str(empty), *FAST])
    assert result.exit_code == 0
    assert "Skipped" in result.stderr and "empty.txt" in result.stderr
    assert f"Skipped {empty}: empty (only whitespace or control characters)" in result.stderr
    assert result.stdout == f"==> {good} <==\n{summary}\n"  # failures count as inputs, as with `head`
    result = run([good, str(tmp_path / "missing.txt"), *FAST])
    assert result.exit_code == 1
    assert "1 input failed:" in result.stderr and "missing.txt" in result.stderr
    assert result.stdout.count("==> ") == 1
    assert result.stdout == f"==> {good} <==\n{summary}\n"
    result = run([str(empty), *FAST])
    assert result.exit_code == 1 and "Nothing was summarised" in result.stderr
    assert result.stdout == ""


def test_verbose_reports_on_stderr_only(env_model, samples):
    result = run([str(samples / "harbour-ferry.txt"), "-v", *FAST])
    assert result.exit_code == 0, result.stderr
    assert "backend torch" in result.stderr or "backend ctranslate2" in result.stderr
    assert "num_beams=2" in result.stderr
    assert "backend" not in result.stdout
    quiet = run([str(samples / "harbour-ferry.txt"), *FAST])
    assert quiet.exit_code == 0 and quiet.stderr == ""
    assert result.stdout == quiet.stdout and len(result.stdout.splitlines()) == 1  # the summary and nothing else


def test_truncate_mode_warns_on_stderr(echo_model, samples):
    path = samples / "river-cleanup-long.txt"
    result = run([str(path), "--long", "truncate", "-f", "jsonl", *FAST])
    assert result.exit_code == 0
    record = json.loads(result.stdout)
    assert record["truncated"] is True
    assert "truncated" in result.stderr and "river-cleanup-long.txt" in result.stderr
    assert record["chunks"] == 1 and record["summary"] == echo_model.summary_of(path)
    tokenizer = echo_model.tokenizer
    tokens = tokenizer.count(path.read_text(encoding="utf-8"))
    limit = tokenizer.model_max_length - tokenizer.special_count - tokenizer.count("summarize: ")  # 512 - </s> - prefix
    assert record["input_tokens"] == tokens > limit
    assert result.stderr == f"Warning: {path}: truncated from {tokens} to {limit} tokens (--long truncate)\n"


def test_version_is_the_real_entry_points_fast_path():
    """`summarize --version` through the installed console script, as a user runs it: the exact line, and
    answered before the CLI (typer, rich) or a model library is imported."""
    from summarize_cli import __version__

    script = Path(sys.executable).parent / "summarize"
    assert script.is_file(), f"the console script is not installed next to {sys.executable}"
    done = subprocess.run(
        [sys.executable, "-X", "importtime", str(script), "--version"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"summarize-cli {__version__}\n"
    imported = {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines() if "|" in line}
    assert "summarize_cli" in imported
    assert not imported & {"typer", "click", "rich", "torch", "transformers", "ctranslate2", "numpy"}


def test_no_readable_input_reports_without_loading_a_model(tmp_path):
    result = run([str(tmp_path / "missing.txt"), "-m", "no/such-model-anywhere"])
    assert result.exit_code == 1
    assert "missing.txt: no such file or directory" in result.stderr
    assert "no/such-model" not in result.stderr


def test_folder_without_matching_files_is_one_clear_error(tmp_path):
    (tmp_path / "notes.rst").write_text("Not included by default.")
    result = run([str(tmp_path), "-m", "no/such-model-anywhere"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: no files to summarise in") and "--include" in result.stderr


def test_typer_shell_completion_is_offered_and_completes_the_default_commands_options(tmp_path):
    """`summarize --show-completion bash` prints the script `--install-completion` installs; the script's
    callback completes summarize's own options (`summarize --mo<TAB>`) and eval's."""
    script = Path(sys.executable).parent / "summarize"
    shown = subprocess.run([str(script), "--show-completion", "bash"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "complete -o default -F _summarize_completion summarize" in shown.stdout

    def complete(words: str) -> list[str]:
        env = {**os.environ, "_SUMMARIZE_COMPLETE": "complete_bash", "COMP_WORDS": words}
        env["COMP_CWORD"] = str(len(words.split()) - 1)
        done = subprocess.run([str(script)], capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert complete("summarize --mo") == ["--model", "--model-for"]
    assert complete("summarize a.txt --num-b") == ["--num-beams"]
    assert complete("summarize ev") == ["eval"]
    assert complete("summarize eval d.jsonl --refer") == ["--reference-field"]
