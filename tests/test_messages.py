"""Messages that say what happened: each names what the user did, not what the tool assumed."""

from __future__ import annotations

import re

import pytest
from conftest import GENERATE, SAMPLES, run

from summarize_cli.inputs.formats import DEFAULT_INCLUDE

ARTICLE = "The council met on Tuesday. It voted to build a park. Residents welcomed the plan. Work starts soon.\n"


def test_do_sample_warns_only_about_num_beams_the_user_gave(env_model, tmp_path, monkeypatch):
    """t5's own config asks for 4 beams; --do-sample alone must not warn about a --num-beams never typed."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.txt").write_text(ARTICLE, encoding="utf-8")
    alone = run(["-q", "--backend", "ctranslate2", "--do-sample", "--seed", "1", "a.txt"])
    assert alone.exit_code == 0, alone.stderr
    assert "--num-beams" not in alone.stderr
    given = run(["-q", "--backend", "ctranslate2", "--do-sample", "--num-beams", "3", "--seed", "1", "a.txt"])
    assert given.exit_code == 0, given.stderr
    assert given.stderr.splitlines()[0] == (
        "Warning: the ctranslate2 backend samples with one beam; --num-beams 3 is not used with --do-sample "
        "(use --backend torch for beam sampling)"
    )


def test_an_html_skip_says_why_without_the_extractors_own_log(echo_model, tmp_path, monkeypatch):
    """trafilatura logs "discarding data: None" for a page with no article: its step, not the user's news."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "e.html").write_text("<html><head><script>var a = 1;</script></head><body></body></html>")
    result = run(["-q", "e.html"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "Skipped e.html: no article text found in the HTML",
        "Nothing was summarised.",
    ]


def test_an_output_folder_over_the_inputs_is_named_as_left_out(echo_model, tmp_path, monkeypatch):
    """`-o . .`: every file is under the output folder, which is never read; "no files" alone misleads."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.txt").write_text(ARTICLE, encoding="utf-8")
    result = run(["-q", "-o", ".", "."])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: no files to summarise in . (looked for {', '.join(DEFAULT_INCLUDE)}; see --include); "
        "the output folder . is never read (summaries are written there): give -o a folder apart from the inputs"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_extract_that_finds_nothing_says_nothing_was_extracted(tmp_path, monkeypatch):
    """--extract summarises nothing by design: its closing line is about texts."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty.txt").write_text("  \n", encoding="utf-8")
    result = run(["--extract", "empty.txt"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "Skipped empty.txt: empty (only whitespace or control characters)",
        "Nothing was extracted.",
    ]


def test_verbose_truncate_reports_the_tokens_that_went_to_the_model(echo_model, tmp_path, monkeypatch):
    """-v promises the tokens that went to the model: with --long truncate, the budget, not the whole text."""
    monkeypatch.chdir(tmp_path)
    text = " ".join(p.read_text(encoding="utf-8") for p in sorted(SAMPLES.glob("*.txt")) if p.name.isascii())
    (tmp_path / "long.txt").write_text(text * 3, encoding="utf-8")
    result = run(["-q", "-v", "--long", "truncate", "long.txt"])
    assert result.exit_code == 0, result.stderr
    [(whole, budget)] = re.findall(r"truncated from (\d+) to (\d+) tokens \(--long truncate\)", result.stderr)
    assert int(whole) > int(budget)
    [line] = [line for line in result.stderr.splitlines() if line.startswith("long.txt: ")]
    assert re.fullmatch(rf"long\.txt: {budget} tokens to the model \(of {whole}\), 1 chunk, truncated, in \S+ s", line)


def test_an_unexpected_os_error_is_one_line_and_with_summarize_debug_its_traceback(monkeypatch, capsys):
    """The console script's own run: an OSError nobody foresaw is `Error: unexpected ...`, exit 1; with
    SUMMARIZE_DEBUG=1 it is raised for its traceback, never reported as standard output failing."""
    from summarize_cli.cli import app, loop

    def vanished(*args, **kwargs):
        raise FileNotFoundError(2, "No such file or directory", "/gone")

    monkeypatch.setattr(loop, "run_job", vanished)
    monkeypatch.setattr("sys.argv", ["summarize", str(SAMPLES / "harbour-ferry.txt"), "-q"])
    monkeypatch.delenv("SUMMARIZE_DEBUG", raising=False)
    assert app.run() == 1
    assert capsys.readouterr().err == (
        "Error: unexpected FileNotFoundError: [Errno 2] No such file or directory: '/gone' "
        "(run with SUMMARIZE_DEBUG=1 for the traceback)\n"
    )
    monkeypatch.setenv("SUMMARIZE_DEBUG", "1")
    with pytest.raises(FileNotFoundError):
        app.run()
    assert capsys.readouterr().err == ""


def test_verbose_says_the_loading_steps_as_lines_without_a_display(tiny_model, tmp_path, monkeypatch):
    """A first run's conversion takes seconds: with stderr not a terminal (no spinner), -v says each step
    once, as a line, before the run's own lines; without -v, nothing."""
    monkeypatch.setenv("SUMMARIZE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.txt").write_text(ARTICLE * 3, encoding="utf-8")
    model = str(tiny_model)
    loud = run(["-m", model, "--backend", "ctranslate2", "-v", *GENERATE, "--no-cache", "a.txt"])
    assert loud.exit_code == 0, loud.stderr
    assert loud.stderr.splitlines()[:3] == [
        f"Loading {model} ...",
        f"Converting {model} for CTranslate2 (int8), once ...",
        f"Loading {model} ...",
    ]
    again = run(["-m", model, "--backend", "ctranslate2", "-v", *GENERATE, "--no-cache", "a.txt"])
    assert again.exit_code == 0, again.stderr
    assert again.stderr.splitlines()[0] == f"Loading {model} ..."
    assert "Converting" not in again.stderr
    quiet = run(["-m", model, "--backend", "ctranslate2", *GENERATE, "--no-cache", "a.txt"])
    assert quiet.exit_code == 0 and "Loading" not in quiet.stderr
