"""The extractive method: summaries made only of whole sentences of their input, in input order, within the
budget, with no model; `--method auto` falls back to it only when the model cannot be had; routes, records,
cache, Ray and eval."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from conftest import CACHED, FAST, ROOT, SAMPLES, run, usage_error

from summarize_cli.inputs.formats import detect, extract
from summarize_cli.model.extractive import BUDGETS, RANKED, candidates_of, join, token_count, words
from summarize_cli.sentences import sentences

EXTRACTIVE = ["--method", "extractive", "-q", "--no-cache"]
OFFLINE_NOTE = (
    "Warning: model 't5-small' is not in the Hugging Face cache and offline mode is on, so these summaries are "
    "extractive (each document's own most central sentences; --method abstractive makes this an error). To get "
    "the model, download it once on a connected machine (`hf download t5-small`, or any run of summarize there) "
    "and copy the Hugging Face cache (~/.cache/huggingface) here, or pass a local model folder with -m PATH"
)


def records(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines()]


def text_of(path) -> str:
    """The text the CLI reads from a file (Markdown becomes prose first)."""
    return extract(path.read_bytes(), detect(path.name))


def positions(record: dict, text: str) -> list[int]:
    """Where each of the summary's sentences stands among its input's sentences (fails if one is not there)."""
    found = sentences(text, record["language"])
    assert sentences(record["summary"]) == record["sentences"]
    at, start = [], 0
    for sentence in record["sentences"]:
        assert sentence in found[start:], (sentence, found)
        start = found.index(sentence, start) + 1
        at.append(start - 1)
    return at


@pytest.mark.parametrize("length", ["short", "medium", "long"])
def test_samples_give_whole_sentences_of_their_input_in_order_within_the_budget(length):
    result = run([str(SAMPLES), "--length", length, "-f", "jsonl", *EXTRACTIVE])
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""  # no model, nothing to warn about
    got = records(result.stdout)
    assert [r["source"] for r in got] == [str(p) for p in sorted(SAMPLES.iterdir())]
    assert {r["language"] for r in got} == {"en", "zh"}
    most, tokens = BUDGETS[length]
    for record, path in zip(got, sorted(SAMPLES.iterdir()), strict=True):
        text = text_of(path)
        at = positions(record, text)
        assert at == sorted(set(at)) and at  # in input order, none repeated, never empty
        assert (record["method"], record["model"], record["backend"]) == ("extractive", "extractive", "sumy")
        assert record["settings"]["sentences"] == most and record["settings"]["max_tokens"] == tokens
        assert record["passthrough"] is False and record["chunks"] == 1
        assert len(at) <= most and token_count(record["summary"]) <= tokens
        assert len(at) < len(sentences(text, record["language"]))  # a summary, not the text again
        assert record["input_tokens"] == sum(token_count(s) for s in sentences(text, record["language"]))


def test_max_length_caps_the_token_budget_and_more_sentences_for_long():
    path = SAMPLES / "river-cleanup-long.txt"
    capped = records(run([str(path), "--max-length", "40", "-f", "jsonl", *EXTRACTIVE]).stdout)[0]
    assert capped["settings"]["max_tokens"] == 40 and token_count(capped["summary"]) <= 40
    long = records(run([str(path), "--length", "long", "-f", "jsonl", *EXTRACTIVE]).stdout)[0]
    short = records(run([str(path), "--length", "short", "-f", "jsonl", *EXTRACTIVE]).stdout)[0]
    assert len(long["sentences"]) == 6 and len(short["sentences"]) == 2
    assert positions(long, text_of(path)) and positions(short, text_of(path))


def test_single_sentence_and_unpunctuated_documents_pass_through():
    for text in ("The ferry runs again tonight.", "no punctuation at all here just words", "渡轮今晚恢复运行。"):
        result = run(["-f", "jsonl", *EXTRACTIVE], input=text)
        assert result.exit_code == 0, result.stderr
        record = records(result.stdout)[0]
        assert (record["summary"], record["passthrough"], record["chunks"]) == (text, True, 0)
        assert "1 document was already shorter than a summary" in result.stderr
    three = "One. Two. Three."  # within the budget (3 sentences): the text itself
    record = records(run(["-f", "jsonl", *EXTRACTIVE], input=three).stdout)[0]
    assert (record["summary"], record["passthrough"]) == (three, True)


def test_words_and_joins_for_chinese_and_english():
    assert words("Ferry RUNS, 2 nights") == ["ferry", "runs", "2", "nights"]
    assert words("城市绿地。A") == ["城市", "市绿", "绿地", "a"]
    assert token_count("城市绿地 and parks") == 6
    assert join(["城市绿地。", "报告显示。"]) == "城市绿地。报告显示。"
    assert join(["A heading", "A sentence.", "Another."]) == "A heading\nA sentence. Another."


def test_a_hundred_thousand_sentences_stay_in_bounded_time(tmp_path):
    lines = [f"Sentence {i} tells of the ferry {i % 13} and the council {i % 7}." for i in range(100_000)]
    path = tmp_path / "huge.txt"
    path.write_text(" ".join(lines), encoding="utf-8")
    assert path.stat().st_size > 1_800_000
    assert len(candidates_of(lines, RANKED)) == RANKED
    started = time.perf_counter()
    result = run([str(path), "-f", "jsonl", *EXTRACTIVE])
    elapsed = time.perf_counter() - started
    assert result.exit_code == 0, result.stderr
    record = records(result.stdout)[0]
    assert len(record["sentences"]) == 3 and all(s in lines for s in record["sentences"])
    assert elapsed < 60  # measured: about 2 s on 2 cores (LexRank alone on 100,000 sentences: hours)


def test_loads_no_model_and_imports_no_torch(tmp_path):
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from summarize_cli.cli.app import app\n"
        f"r = CliRunner().invoke(app, ['--method', 'extractive', '-q', '--no-cache', {str(SAMPLES)!r}])\n"
        "assert r.exit_code == 0, r.output\n"
        "print(sorted(m for m in ('torch', 'transformers', 'ctranslate2') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_bullets_output_dir_output_file_and_combine(tmp_path):
    path = SAMPLES / "harbour-ferry.txt"
    record = records(run([str(path), "-f", "jsonl", *EXTRACTIVE]).stdout)[0]
    bullets = run([str(path), "--bullets", *EXTRACTIVE])
    assert bullets.stdout == "".join(f"- {s}\n" for s in record["sentences"])
    out = tmp_path / "out"
    written = run([str(path), "-o", str(out), *EXTRACTIVE])
    assert written.exit_code == 0, written.stderr
    (summary_file,) = out.rglob("*.summary.txt")
    assert summary_file.read_text(encoding="utf-8") == record["summary"] + "\n"
    dataset = tmp_path / "all.jsonl"
    assert run([str(SAMPLES), "--output", str(dataset), *EXTRACTIVE]).exit_code == 0
    assert [r["method"] for r in records(dataset.read_text(encoding="utf-8"))] == ["extractive"] * 6
    english = [SAMPLES / n for n in ("harbour-ferry.txt", "solar-school.txt", "river-cleanup-long.txt")]
    combined = run([*map(str, english), "--combine", "-f", "jsonl", *EXTRACTIVE])
    assert combined.exit_code == 0, combined.stderr
    (one,) = records(combined.stdout)
    assert one["source"] == "combined" and one["sources"] == [str(p) for p in english]
    everything = [s for p in english for s in sentences(text_of(p))]
    assert one["sentences"] and all(s in everything for s in one["sentences"]) and len(one["sentences"]) <= 3
    assert [everything.index(s) for s in one["sentences"]] == sorted(everything.index(s) for s in one["sentences"])


def test_the_cache_is_keyed_by_method(echo_model):
    path = str(SAMPLES / "solar-school.txt")
    first = records(run([path, "--method", "extractive", "-f", "jsonl", *CACHED]).stdout)[0]
    again = records(run([path, "--method", "extractive", "-f", "jsonl", *CACHED]).stdout)[0]
    model = records(run([path, "--method", "abstractive", "-f", "jsonl", *CACHED]).stdout)[0]
    assert (first["cached"], again["cached"], again["summary"]) == (False, True, first["summary"])
    assert (again["method"], model["method"], model["model"]) == ("extractive", "abstractive", "echo")
    assert model["summary"] == echo_model.summary_of(SAMPLES / "solar-school.txt")
    assert model["summary"] != first["summary"]


def test_an_unknown_method_is_a_usage_error(tmp_path, monkeypatch):
    from summarize_cli.errors import UsageError
    from summarize_cli.specs import ModelSpec

    assert "'magic'" in run(["--method", "magic", "-"], input="x").stderr
    with pytest.raises(UsageError) as error:
        ModelSpec(method="magic")
    assert (error.value.option, error.value.message) == (
        "--method",
        "'magic': give one of auto, abstractive, extractive",
    )
    config = tmp_path / "config.toml"
    config.write_text('method = "magic"\n')
    monkeypatch.setenv("SUMMARIZE_CONFIG", str(config))
    assert "method" in usage_error(run(["-"], input="Some text."))


# --method auto: the model when it can be had, else the extractive method, said once


def test_auto_falls_back_when_the_model_is_not_cached_and_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # nothing cached; the tests run with HF_HUB_OFFLINE=1
    path = SAMPLES / "harbour-ferry.txt"
    result = run(["-m", "t5-small", str(path), "-f", "jsonl", "-q", "--no-cache"])
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines() == [
        OFFLINE_NOTE,
        "1 summary was made extractively (--method auto, without the model).",
    ]
    record = records(result.stdout)[0]
    assert (record["method"], record["model"]) == ("extractive", "extractive")
    assert positions(record, text_of(path))
    refused = run(["-m", "t5-small", "--method", "abstractive", str(path), "-q", "--no-cache"])
    assert refused.exit_code == 1 and refused.stdout == ""
    (line,) = refused.stderr.splitlines()
    assert line.startswith("Error: model 't5-small' is not in the Hugging Face cache and offline mode is on: ")


def test_auto_uses_the_model_when_it_can_be_had(env_model, echo_model):
    for model in (str(env_model), "echo"):
        result = run(["-m", model, str(SAMPLES / "harbour-ferry.txt"), "-f", "jsonl", *FAST])
        assert result.exit_code == 0 and result.stderr == ""
        assert records(result.stdout)[0]["method"] == "abstractive"


def test_auto_never_hides_a_missing_folder_or_a_model_that_exists_nowhere(tmp_path, monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError

    missing = run(["-m", str(tmp_path / "nope"), "-"], input="One. Two. Three. Four.")
    assert missing.exit_code == 1 and "does not exist" in missing.stderr and missing.stdout == ""

    def hub(name, local_files_only=False, **options):  # a reachable Hub that has no such model
        if local_files_only:
            raise LocalEntryNotFoundError("not cached")
        import httpx

        raise RepositoryNotFoundError("404", response=httpx.Response(404, request=httpx.Request("GET", "http://hub")))

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", hub)
    typo = run(["-m", "t5-smal", "-"], input="One. Two. Three. Four.")
    assert typo.exit_code == 1 and typo.stdout == ""
    assert typo.stderr == "Error: model 't5-smal' is neither a local folder nor a model on the Hugging Face Hub\n"


def test_auto_falls_back_when_the_hub_cannot_be_reached(tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_OFFLINE": "0",
        "HF_ENDPOINT": "http://127.0.0.1:9",  # connection refused: a machine without network
        "SUMMARIZE_CACHE_DIR": str(tmp_path / "cache"),
    }
    command = [sys.executable, "-m", "summarize_cli", "-m", "t5-small", str(SAMPLES / "城市绿地.txt")]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    note, count = done.stderr.splitlines()
    assert note.startswith("Warning: model 't5-small' is not in the Hugging Face cache and the Hub cannot be reached")
    assert "so these summaries are extractive" in note and "hf download t5-small" in note
    assert count == "1 summary was made extractively (--method auto, without the model)."
    summary = done.stdout.strip()
    found = sentences(text_of(SAMPLES / "城市绿地.txt"))
    assert sentences(summary) and all(s in found for s in sentences(summary))


# routes: a language to the extractive method, no download


def mixed_folder(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for name in ("harbour-ferry.txt", "城市绿地.txt", "solar-school.txt"):
        (folder / name).write_text((SAMPLES / name).read_text(encoding="utf-8"), encoding="utf-8")
    return folder


def check_routed(result, folder, model: str) -> None:
    assert result.exit_code == 0, result.stderr
    got = {os.path.basename(r["source"]): r for r in records(result.stdout)}
    assert {n: (r["language"], r["method"], r["model"]) for n, r in got.items()} == {
        "harbour-ferry.txt": ("en", "abstractive", model),
        "solar-school.txt": ("en", "abstractive", model),
        "城市绿地.txt": ("zh", "extractive", "extractive"),
    }
    assert positions(got["城市绿地.txt"], text_of(folder / "城市绿地.txt"))
    # a route's own choice is no fallback: nothing to say (it was counted as "made extractively (--method
    # auto, without the model)", though the model was there)
    assert result.stderr == ""


def test_model_for_routes_chinese_to_the_extractive_method(env_model, tmp_path):
    folder = mixed_folder(tmp_path)
    check_routed(run([str(folder), "--model-for", "zh=extractive", "-f", "jsonl", *FAST]), folder, str(env_model))


def test_the_config_models_table_routes_to_extractive(env_model, tmp_path, monkeypatch):
    folder = mixed_folder(tmp_path)
    config = tmp_path / "config.toml"
    config.write_text('[models]\nzh = "extractive"\n', encoding="utf-8")
    monkeypatch.setenv("SUMMARIZE_CONFIG", str(config))
    check_routed(run([str(folder), "-f", "jsonl", *FAST]), folder, str(env_model))


def test_the_unknown_token_warning_offers_the_extractive_route(env_model):
    korean = "서울시는 주말마다 시립 공원을 시민들에게 개방합니다. 시민들은 공원에서 산책과 운동을 할 수 있습니다. " * 3
    result = run(["-f", "jsonl", *FAST], input=korean)  # the tiny model's tokenizer has no Korean
    assert result.exit_code == 0
    assert result.stderr.endswith(
        "Send it to a model that reads its language: --model-for ko=csebuetnlp/mT5_multilingual_XLSum, or summarise "
        "it extractively, with nothing to download: --model-for ko=extractive.\n"
    )
    routed = run(["-f", "jsonl", "--model-for", "ko=extractive", *FAST], input=korean)
    assert routed.exit_code == 0 and "cannot read" not in routed.stderr
    assert records(routed.stdout)[0]["method"] == "extractive"


def test_extractive_on_ray_matches_the_local_run(local_ray):
    args = [str(SAMPLES), "-f", "jsonl", *EXTRACTIVE]
    local = run(args)
    on_ray = run([*args, "--ray", "--workers", "2"])
    assert on_ray.exit_code == local.exit_code == 0, on_ray.stderr
    strip = lambda out: [{k: v for k, v in r.items() if k != "seconds"} for r in records(out)]  # noqa: E731
    assert strip(on_ray.stdout) == strip(local.stdout)
    assert {r["method"] for r in records(on_ray.stdout)} == {"extractive"}


# eval: never falls back; --compare '--method extractive'; the extractive baseline beside Lead-3


def eval_data(tmp_path):
    data = tmp_path / "mixed.jsonl"
    rows = [
        {"id": "en1", "text": (SAMPLES / "harbour-ferry.txt").read_text(encoding="utf-8"), "summary": "Ferry back."},
        {"id": "zh1", "text": (SAMPLES / "城市绿地.txt").read_text(encoding="utf-8"), "summary": "城市绿地降温。"},
    ]
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return data


def test_eval_compares_the_extractive_method_and_scores_it_as_a_baseline(env_model, tmp_path):
    data = eval_data(tmp_path)
    result = run(["eval", str(data), "--compare", "--method extractive", "-f", "json", *CACHED])
    assert result.exit_code == 0, result.output
    systems = {s["system"]: s for s in json.loads(result.stdout)["systems"]}
    assert list(systems) == [f"{env_model.name} [ctranslate2]", "--method extractive [sumy]", "Lead-3",
                             "Extractive (LexRank) [sumy]"]  # fmt: skip
    for name in ("--method extractive [sumy]", "Extractive (LexRank) [sumy]"):
        assert sorted(systems[name]["by_language"]) == ["en", "zh"] and systems[name]["docs_per_second"] > 0
    compared, baseline = systems["--method extractive [sumy]"], systems["Extractive (LexRank) [sumy]"]
    assert {k: v for k, v in compared.items() if k not in ("system", "docs_per_second")} == {
        k: v for k, v in baseline.items() if k not in ("system", "docs_per_second")
    }
    table = run(["eval", str(data), "--compare", "--method extractive", *CACHED])
    assert "Extractive (LexRank)" in table.stdout and "zh (1 document)" in table.stdout


def test_eval_never_falls_back(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    result = run(["eval", str(eval_data(tmp_path)), "-m", "t5-small", "-q"])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("Error: model 't5-small' is not in the Hugging Face cache and offline mode is on")


def test_a_repeated_sentence_is_taken_once_and_an_endless_one_is_clipped(tmp_path):
    """Found by a black-box trial: a document of a sample's sentences four times over gave the same sentence
    three times; 3,000 words with no punctuation came back whole as 'already shorter than a summary'."""
    from summarize_cli.model.extractive import token_count
    from summarize_cli.sentences import sentences

    base = (SAMPLES / "harbour-ferry.txt").read_text()
    repeated = tmp_path / "repeated.txt"
    repeated.write_text("\n\n".join([base] * 4))
    result = run(["--method", "extractive", "-f", "jsonl", "--no-cache", "-q", str(repeated)])
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)["summary"]
    picked = [" ".join(s.casefold().split()) for s in sentences(summary)]
    assert len(picked) == len(set(picked)) > 1
    words = " ".join(f"word{i}" for i in range(3000))
    endless = tmp_path / "endless.txt"
    endless.write_text(words)
    clipped = run(["--method", "extractive", "-f", "jsonl", "--no-cache", "-q", str(endless)])
    assert clipped.exit_code == 0, clipped.stderr
    record = json.loads(clipped.stdout)
    assert record["summary"] == " ".join(f"word{i}" for i in range(120))
    assert record["passthrough"] is False and record["trimmed"] is True
    zh = tmp_path / "zh.txt"
    zh.write_text("城市绿地帮助居民度过炎热夏天" * 200)
    chinese = json.loads(run(["--method", "extractive", "-f", "jsonl", "--no-cache", "-q", str(zh)]).stdout)
    assert token_count(chinese["summary"]) == 120 and chinese["summary"] == ("城市绿地帮助居民度过炎热夏天" * 10)[:120]


def test_an_extractive_parquet_output_has_the_columns_types_a_models_has(tmp_path):
    """--output x.parquet from the extractive method typed `precision` as null (it has none), so its file
    could not be joined with a model's (string there)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "x.parquet"
    result = run([str(SAMPLES / "harbour-ferry.txt"), "--method", "extractive", "--output", str(out), "-q"])
    assert result.exit_code == 0, result.stderr
    schema = pq.read_schema(out)
    assert (schema.field("precision").type, pq.read_table(out).column("precision").to_pylist()) == (pa.string(), [""])
