"""Shaping the summary: length presets, trimming to a sentence, bullets, sections, passthrough, --combine,
and the config file."""

from __future__ import annotations

import json

import pytest
from conftest import FAST, run

from summarize_cli.inputs.language import Detector


def settings_of(args: list[str], text: str = "The harbour ferry returns on Monday, the council said. " * 40):
    result = run([*args, "-f", "jsonl", "-q", "--no-cache", "--force"], input=text)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["settings"]


@pytest.mark.parametrize(
    ("args", "bounds"),
    [
        ([], (30, 200)),  # the tiny model's own, as t5-small's: min 30, max 200
        (["--length", "medium"], (30, 200)),
        (["--length", "short"], (15, 100)),
        (["--length", "long"], (60, 400)),
        (["--length", "short", "--min-length", "5"], (5, 100)),
        (["--length", "long", "--max-length", "300"], (60, 300)),
        (["--length", "long", "--max-length", "20"], (20, 20)),  # the minimum follows a lower maximum down
    ],
)
def test_length_presets_and_explicit_bounds(echo_model, args, bounds):
    settings = settings_of(args)
    assert (settings["min_length"], settings["max_length"]) == bounds


def test_a_summary_cut_at_max_length_is_trimmed_to_its_last_sentence(echo_model):
    text = "The ferry returns. The council said the night service will run until two in the morning every day."
    cut = run(["--max-length", "12", "--min-length", "2", "-f", "jsonl", "-q", "--no-cache"], input=text)
    record = json.loads(cut.stdout)
    assert record["summary"] == "The ferry returns." and record["trimmed"] is True
    whole = run(["--max-length", "200", "--min-length", "2", "-f", "jsonl", "-q", "--no-cache"], input=text)
    record = json.loads(whole.stdout)
    assert record["trimmed"] is False and record["summary"] == echo_model.summary(text, 200)
    chinese = "渡轮周一恢复。市议会说夜间航班将每天运行到凌晨两点并且票价保持不变还会增加班次"
    cut = run(["--max-length", "10", "--min-length", "2", "-f", "jsonl", "-q", "--no-cache"], input=chinese)
    record = json.loads(cut.stdout)
    assert record["trimmed"] is True and record["summary"].endswith("。")


def test_bullets_in_every_format(echo_model, tmp_path):
    text = "The ferry returns. The council agreed. Tickets stay the same."
    args = ["--bullets", "--max-length", "200", "--min-length", "2", "-q", "--no-cache"]
    points = ["- The ferry returns.", "- The council agreed.", "- Tickets stay the same."]
    assert run(args, input=text).stdout.splitlines() == points
    assert run([*args, "-f", "markdown"], input=text).stdout.splitlines() == ["## <stdin>", "", *points]
    record = json.loads(run([*args, "-f", "jsonl"], input=text).stdout)
    assert record["summary"] == text and record["sentences"] == [p[2:] for p in points]
    assert json.loads(run([*args, "-f", "json"], input=text).stdout)[0]["sentences"] == record["sentences"]
    (tmp_path / "a.txt").write_text(text)
    assert run([str(tmp_path / "a.txt"), *args, "-o", str(tmp_path / "out")]).exit_code == 0
    assert (tmp_path / "out" / "a.txt.summary.txt").read_text().splitlines() == points


def test_a_chunked_document_has_its_sections_and_bullets_one_per_section(echo_model, samples):
    long = str(samples / "river-cleanup-long.txt")
    record = json.loads(run([long, "-f", "jsonl", *FAST]).stdout)
    assert record["chunks"] >= 2 and len(record["sections"]) == record["chunks"]
    assert all(section for section in record["sections"])
    bullets = run([long, "--bullets", *FAST]).stdout.splitlines()
    assert bullets == [f"- {section}" for section in record["sections"]]


def test_short_input_is_passed_through_and_force_summarises_it(echo_model):
    kept = run(["-f", "jsonl", "-q", "--no-cache"], input="Ferry.")  # the model's minimum is 30 tokens
    assert kept.exit_code == 0
    record = json.loads(kept.stdout)
    assert (record["summary"], record["passthrough"], record["chunks"]) == ("Ferry.", True, 0)
    assert (
        kept.stderr == "1 document was already shorter than a summary and was kept as it is (--force summarises it).\n"
    )
    forced = json.loads(run(["-f", "jsonl", "-q", "--no-cache", "--force", "--max-length", "3"], input="Ferry.").stdout)
    assert forced["passthrough"] is False and forced["chunks"] == 1
    assert forced["summary"] == echo_model.summary("Ferry.", 3)


def test_combine_a_folder_with_one_bad_file(echo_model, tmp_path):
    folder = tmp_path / "news"
    folder.mkdir()
    texts = [f"Story {i}: the harbour ferry returns on Monday, the council said." for i in range(3)]
    for i, text in enumerate(texts):
        (folder / f"s{i}.txt").write_text(text)
    (folder / "broken.txt").write_bytes(b"\x00\x01\x02binary\xff" * 20)
    result = run([str(folder), "--combine", "-f", "jsonl", "--max-length", "200", "--min-length", "2", "-q"])
    assert result.exit_code == 0, result.stderr  # a binary file is skipped, as without --combine
    [record] = [json.loads(line) for line in result.stdout.splitlines()]
    assert record["source"] == "combined"
    assert record["sources"] == [str(folder / f"s{i}.txt") for i in range(3)]
    assert record["summary"] == echo_model.summary("\n\n".join(echo_model.summary(t, 200) for t in texts), 200)
    assert f"Skipped {folder / 'broken.txt'}" in result.stderr
    missing = run([str(folder), str(tmp_path / "missing.txt"), "--combine", "-q", *FAST[:4]])
    assert missing.exit_code == 1 and missing.stdout.strip()  # made from the rest, the failure reported
    assert f"Failed {tmp_path / 'missing.txt'}: no such file or directory" in missing.stderr


def test_combine_refuses_an_output_folder(tmp_path):
    result = run([str(tmp_path), "--combine", "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "Error: Invalid value for --combine: makes one summary: redirect stdout" in result.stderr


# --- the config file ---------------------------------------------------------------------------------------


@pytest.fixture
def config(tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    monkeypatch.setenv("SUMMARIZE_CONFIG", str(path))
    return path


def test_config_precedence_command_line_then_environment_then_file_then_model(echo_model, config, monkeypatch):
    config.write_text('num-beams = 2\nlength = "short"\nmodel = "from-the-file"\n[eval]\nlead3 = false\n')
    settings = settings_of([])
    assert (settings["num_beams"], settings["min_length"], settings["max_length"]) == (2, 15, 100)
    assert settings_of(["--num-beams", "3"])["num_beams"] == 3  # the command line wins
    # SUMMARIZE_MODEL (set by echo_model) beats the file's model; without it the file's is used
    shown = run(["config"])
    assert shown.exit_code == 0
    assert "num-beams = 2  # config file" in shown.stdout
    assert 'model = "echo"  # env SUMMARIZE_MODEL' in shown.stdout
    assert "lead3 = false  # config file" in shown.stdout.split("[eval]")[1]
    assert "# temperature: the model's own" in shown.stdout
    monkeypatch.delenv("SUMMARIZE_MODEL")
    assert 'model = "from-the-file"  # config file' in run(["config"]).stdout


def test_config_output_pasted_back_loads_for_summarize_and_eval(echo_model, config, samples, tmp_path):
    """`summarize config` prints TOML that can be pasted back, as the README says: its top-level
    `format = "text"` once failed as eval's (`'text' is not one of 'table', 'json'`)."""
    import re

    shown = run(["config"])
    assert shown.exit_code == 0
    pasted = re.sub(r'(?m)^format = "text"', 'format = "jsonl"', shown.stdout)  # summarize's -f, not eval's
    config.write_text(pasted)
    again = run(["config"])
    assert again.exit_code == 0, again.stderr
    values = lambda text: re.sub(r"  # .*|\A# config file.*", "", text)  # noqa: E731 - the values, not where from
    assert values(again.stdout) == values(pasted)
    assert 'format = "jsonl"  # config file' in again.stdout.split("[eval]")[0]
    assert 'format = "table"  # config file' in again.stdout.split("[eval]")[1]
    summary = run([str(samples / "harbour-ferry.txt"), "-q", "--no-cache"])
    assert summary.exit_code == 0, summary.stderr
    assert json.loads(summary.stdout)["source"] == str(samples / "harbour-ferry.txt")  # the file's jsonl
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps({"id": "a", "text": "The ferry runs at night.", "summary": "A ferry."}) + "\n")
    scored = run(["eval", str(data), "-q"])
    assert scored.exit_code == 0, scored.stderr
    assert "ROUGE-Lsum" in scored.stdout  # eval's table, from its [eval] table


def test_config_says_what_an_unset_default_means(config):
    shown = run(["config"]).stdout.split("[eval]")[0]
    assert "# length: not set (medium: the model's own lengths)" in shown
    assert "# seed: not set (a new random seed each run)" in shown
    assert "# threads: not set (the physical cores)" in shown
    assert "# batch-size: not set (4 per thread for ctranslate2 on CPU, 8 for torch on CPU, 32 on CUDA)" in shown
    assert "# num-beams: the model's own" in shown


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("nmu-beams = 2\n", "unknown key 'nmu-beams' (known keys: backend, batch-size,"),
        ('num-beams = "two"\n', "'num-beams' takes a whole number, not str 'two'"),
        ("num-beams = 2.5\n", "'num-beams' takes a whole number, not float 2.5"),
        ("num-beams = 0\n", "--num-beams must be between 1 and 64 (got 0)"),
        ('length = "tiny"\n', "'length': 'tiny' is not one of 'short', 'medium', 'long'."),
        ('include = "*.txt"\n', "'include' takes a list, e.g. include = [\"...\"]"),
        ("[eval]\nnum-bems = 1\n", "unknown key 'num-bems'"),
        ("num-beams = \n", "is not valid TOML"),
    ],
)
def test_each_config_error_names_the_file_and_the_key(config, content, message):
    config.write_text(content)
    result = run(["x.txt"])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: the config file {config}") and message in result.stderr


def test_a_missing_config_is_fine_and_an_unreadable_one_is_an_error(echo_model, config):
    assert settings_of([])["num_beams"] == 4  # no file: the model's own
    config.mkdir()
    result = run(["x.txt"])
    assert result.exit_code == 1
    assert result.stderr == f"Error: cannot read the config file {config}: Is a directory\n"


def test_combine_of_one_document_is_its_own_summary(echo_model, samples):
    path = str(samples / "harbour-ferry.txt")
    alone = json.loads(run([path, "-f", "jsonl", *FAST]).stdout)
    combined = json.loads(run([path, "--combine", "-f", "jsonl", *FAST]).stdout)
    assert (combined["source"], combined["sources"]) == ("combined", [path])
    assert combined["summary"] == alone["summary"]
    assert (combined["language"], combined["language_confidence"]) == (alone["language"], alone["language_confidence"])


def test_a_combined_record_has_the_declared_or_the_inputs_language(echo_model, samples):
    """--combine's one record: --language when given, else the inputs' own when they agree; the echo
    model's joined summaries are the inputs' starts, so their detected language agrees."""
    english = [str(samples / "harbour-ferry.txt"), str(samples / "solar-school.txt")]
    each = [json.loads(line) for line in run([*english, "-f", "jsonl", *FAST]).stdout.splitlines()]
    both = json.loads(run([*english, "--combine", "-f", "jsonl", *FAST]).stdout)
    assert both["language"] == "en" and both["language_confidence"] == min(r["language_confidence"] for r in each)
    declared = run([*english, "--combine", "--language", "fr", "-f", "jsonl", *FAST])
    assert declared.exit_code == 0, declared.stderr
    assert (json.loads(declared.stdout)["language"], json.loads(declared.stdout)["language_confidence"]) == ("fr", 1.0)
    mixed = [english[0], str(samples / "城市绿地.txt")]
    apart = [json.loads(line) for line in run([*mixed, "-f", "jsonl", *FAST]).stdout.splitlines()]
    assert [r["language"] for r in apart] == ["en", "zh"]
    joined = json.loads(run([*mixed, "--combine", "-f", "jsonl", *FAST]).stdout)  # detected from the joined text
    found = Detector.detect("\n\n".join(r["summary"] for r in apart))
    assert (joined["language"], joined["language_confidence"]) == (found.language, found.confidence)


def test_long_text_the_tokenizer_cannot_read_is_never_passed_through_as_short(echo_model):
    """7,800 characters of Chinese with no punctuation, in characters the tokenizer does not know, encode
    to a couple of tokens (one unknown token for the whole run): passthrough looks at the text too, so it
    is summarised, not kept whole as 'already shorter than a summary'."""
    text = "".join(chr(0x3400 + (i * 7919) % 6000) for i in range(7800))  # CJK Extension A: unknown to it
    encoded = echo_model.tokenizer.encode(text)
    assert len(encoded.ids) < 30  # what made it look short
    result = run(["-f", "jsonl", "-q", "--no-cache", "--language", "zh"], input=text)
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert (record["passthrough"], record["chunks"]) == (False, 1)
    assert record["summary"] != text and len(record["summary"]) < 1000
    assert "already shorter than a summary" not in result.stderr
