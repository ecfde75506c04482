"""`summarize eval`: exact ROUGE on hand-made cases, Lead-3, and an end-to-end run with the tiny model."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import CACHED, run, usage_error

from summarize_cli.errors import SummarizeError
from summarize_cli.quality.evaluate import Example, Rouge, is_chinese, lead, load_folder_pair, load_jsonl, score_system


@pytest.fixture(scope="module")
def rouge() -> Rouge:
    return Rouge()


def test_identical_and_disjoint_texts(rouge):
    assert rouge.score("The ferry runs at night.", "The ferry runs at night.") == {
        "rouge1": 100.0,
        "rouge2": 100.0,
        "rougeL": 100.0,
        "rougeLsum": 100.0,
    }
    assert rouge.score("Apples are red.", "The ferry runs at night.") == {
        "rouge1": 0.0,
        "rouge2": 0.0,
        "rougeL": 0.0,
        "rougeLsum": 0.0,
    }


def test_known_overlaps_in_english(rouge):
    # reference: the cat sat on the mat (6 tokens); prediction: the cat was on the mat (6 tokens)
    # unigrams shared 5 -> F1 5/6; bigrams: the-cat, on-the, the-mat shared of 5 -> 3/5; LCS 5 -> 5/6
    scores = rouge.score("the cat was on the mat", "the cat sat on the mat")
    assert scores["rouge1"] == pytest.approx(83.3333, abs=1e-3)
    assert scores["rouge2"] == pytest.approx(60.0, abs=1e-3)
    assert scores["rougeL"] == pytest.approx(83.3333, abs=1e-3)


def test_rouge_lsum_is_sentence_level_and_differs_from_rouge_l(rouge):
    reference = "The council voted. The ferry returns."
    prediction = "The ferry returns. The council voted."
    scores = rouge.score(prediction, reference)
    # as one sequence the LCS is 3 of 6 tokens; per sentence (union LCS) every token matches
    assert scores["rougeL"] == pytest.approx(50.0, abs=1e-3)
    assert scores["rougeLsum"] == pytest.approx(100.0, abs=1e-3)


def test_stemming_matches_word_forms(rouge):
    assert rouge.score("ferries running", "ferry runs")["rouge1"] == 100.0


def test_chinese_is_scored_by_characters(rouge):
    reference = "城市绿地降低气温。"
    assert rouge.tokenization(reference) == "characters" and is_chinese(reference)
    # 6 of 8 characters shared in order: F1 = 2 * (6/8 * 6/8) / (6/8 + 6/8) = 75
    scores = rouge.score("城市公园降低气温。", reference)
    assert scores["rouge1"] == pytest.approx(75.0, abs=1e-3)
    assert scores["rougeL"] == pytest.approx(75.0, abs=1e-3)
    assert rouge.tokenization("The ferry runs.") == "words"


def test_lead3_in_english_and_chinese():
    english = "One happened. Two followed! Three came? Four is left out. Five too."
    assert lead(english) == "One happened. Two followed! Three came?"
    chinese = "第一句。第二句！第三句？第四句。"
    assert lead(chinese) == "第一句。第二句！第三句？"
    assert lead("Only one sentence") == "Only one sentence"


def test_means_and_lengths(rouge):
    examples = [Example("a", "x", "the ferry runs"), Example("b", "y", "the council votes")]
    report = score_system("s", examples, ["the ferry runs", "nothing shared"], 2.0, rouge)
    assert report.means["rouge1"] == 50.0
    assert report.mean_length == 2.5
    assert report.docs_per_second == 1.0
    assert [d["id"] for d in report.per_document] == ["a", "b"]


def test_jsonl_and_folder_pair_loading(tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps({"article": "Doc.", "highlights": "Ref.", "id": "x"}) + "\n")
    [example] = load_jsonl(data, "article", "highlights")
    assert (example.id, example.text, example.reference) == ("x", "Doc.", "Ref.")
    with pytest.raises(SummarizeError, match="--text-field"):
        load_jsonl(data)
    docs, refs = tmp_path / "docs", tmp_path / "refs"
    docs.mkdir(), refs.mkdir()
    (docs / "a.txt").write_text("Doc A.")
    (refs / "a.md").write_text("Ref A.")
    (docs / "b.txt").write_text("Doc B.")
    with pytest.raises(SummarizeError, match="documents and references do not match one to one: b$"):
        load_folder_pair(docs, refs)
    (refs / "b.txt").write_text("Ref B.")
    assert [(e.id, e.reference) for e in load_folder_pair(docs, refs)] == [("a", "Ref A."), ("b", "Ref B.")]


def dataset(samples, tmp_path):
    path = tmp_path / "data.jsonl"
    rows = []
    for p in sorted(samples.iterdir()):
        text = p.read_text(encoding="utf-8")
        rows.append({"id": p.stem, "text": text, "summary": lead(text.split("\n", 1)[-1], 2)})
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_end_to_end_json_with_a_comparison(env_model, samples, tmp_path):
    path = dataset(samples, tmp_path)
    per_doc = tmp_path / "scores.jsonl"
    compare = ["--compare", "--num-beams 2 --max-length 6"]
    result = run(["eval", str(path), *CACHED, "-f", "json", *compare, "--per-document", str(per_doc)])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["documents"] == 6
    assert report["tokenization"] == {"characters": 2, "words": 4}
    names = [s["system"] for s in report["systems"]]
    assert names[1:] == ["--num-beams 2 --max-length 6 [ctranslate2]", "Lead-3", "Extractive (LexRank) [sumy]"]
    lead3 = report["systems"][2]
    assert lead3["rouge1"] > 50 and lead3["docs_per_second"] is None  # the reference is the lead
    model = report["systems"][0]
    assert model["rouge1"] < lead3["rouge1"] and model["docs_per_second"] > 0
    rows = [json.loads(line) for line in per_doc.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 24 and {"rouge1", "rougeLsum", "summary", "tokenization"} <= set(rows[0])


def test_table_on_stdout(echo_model, samples, tmp_path):
    result = run(["eval", str(dataset(samples, tmp_path)), *CACHED, "--no-lead3"])
    assert result.exit_code == 0
    assert "ROUGE-Lsum" in result.stdout and "Lead-3" not in result.stdout
    assert "echo [echo]" in result.stdout  # the model's row, named after it and its backend
    assert "tokenisation: characters for 2 documents, words for 4 documents" in result.stdout.replace("\n", " ")


def test_bad_compare_spec_is_a_usage_error(echo_model, samples, tmp_path):
    result = run(["eval", str(dataset(samples, tmp_path)), "--compare", "--num-beams zero"])
    assert result.exit_code == 2 and "--compare" in result.stderr
    assert usage_error(result) == "Invalid value for --compare: '--num-beams zero': 'zero' is not a valid int."
    result = run(["eval", str(dataset(samples, tmp_path)), "--compare", "--per-document x.jsonl"])
    message = "Invalid value for --compare: '--per-document x.jsonl': --per-document cannot be compared"
    assert usage_error(result) == message


def test_summarize_eval_dispatches_from_the_main_command(tiny_model, samples, tmp_path):
    path = dataset(samples, tmp_path)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "summarize_cli",
            "eval",
            str(path),
            "-m",
            str(tiny_model),
            *CACHED,
            "-f",
            "json",
            "--limit",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["documents"] == 2


def _mean_length(path, *options: str) -> float:
    result = run(["eval", str(path), "-q", "--no-lead3", "-f", "json", *options])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["systems"][0]["mean_length"]


def test_length_presets_reach_the_run(echo_model, samples, tmp_path):
    """--length scales the summary length in eval as in summarize (eval once ignored it: 65.3 for all)."""
    path = dataset(samples, tmp_path)
    short, medium, long = (_mean_length(path, "--length", name) for name in ("short", "medium", "long"))
    assert short < medium < long, (short, medium, long)


def test_force_reaches_the_run(tiny_model, tmp_path):
    """A document shorter than --min-length is kept whole, unless --force has the model summarise it."""
    path = tmp_path / "short.jsonl"
    path.write_text(json.dumps({"id": "a", "text": "The ferry runs.", "summary": "The ferry runs."}) + "\n")
    options = ["-m", str(tiny_model), "--min-length", "20", "--max-length", "20", "--num-beams", "1"]
    assert _mean_length(path, *options) == 3
    assert _mean_length(path, *options, "--force") > 10  # 20 tokens of the random model, in words
