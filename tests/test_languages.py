"""Every document to a model that speaks its language: detection, routing (local, Ray, eval) and
sentence splitting in many languages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SAMPLES, build_tiny_t5, run

QUICK = ["--max-length", "10", "--min-length", "2", "--num-beams", "2", "-q", "--no-cache"]
CHINESE = [
    "城市绿地在周末开放，市民可以在公园里散步、跑步和野餐。",
    "社区图书馆延长了开放时间，孩子们放学后可以来这里读书。",
    "渡轮周一恢复运行，市议会说夜间航班将每天运行到凌晨两点。",
    "新的公交线路连接了大学和火车站，早晚高峰每十分钟一班。",
]


@pytest.fixture(scope="session")
def chinese_model(tmp_path_factory):
    """A second tiny T5 whose tokenizer is trained on Chinese text only."""
    texts = [
        p.read_text(encoding="utf-8") for p in sorted(SAMPLES.iterdir()) if p.suffix == ".txt" and p.name[0] >= "\u4e00"
    ]
    return build_tiny_t5(tmp_path_factory.mktemp("models") / "tiny-zh", texts + CHINESE * 20, vocab_size=400)


@pytest.fixture
def mixed(tmp_path, samples):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a-en.txt").write_text((samples / "harbour-ferry.txt").read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "b-zh.txt").write_text((samples / "城市绿地.txt").read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "c-short.txt").write_text("Ok.", encoding="utf-8")
    (folder / "d-en.txt").write_text((samples / "solar-school.txt").read_text(encoding="utf-8"), encoding="utf-8")
    return folder


def test_a_mixed_folder_is_routed_by_language_in_input_order(env_model, chinese_model, mixed):
    result = run([str(mixed), "--model-for", f"zh={chinese_model}", "-f", "jsonl", *QUICK])
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["source"] for r in records] == [
        str(mixed / n) for n in ("a-en.txt", "b-zh.txt", "c-short.txt", "d-en.txt")
    ]
    assert [r["language"] for r in records[:2] + records[3:]] == ["en", "zh", "en"]
    assert all(0 <= r["language_confidence"] <= 1 for r in records)
    assert [r["model"] for r in records] == [str(env_model), str(chinese_model), str(env_model), str(env_model)]
    assert records[1]["unknown_token_share"] < 0.1  # the Chinese model reads it
    assert "cannot read" not in result.stderr


GERMAN = (
    "Die Stadt öffnet am Samstag den neuen Park am Fluss. Der Bürgermeister sagte, die Bürger hätten "
    "lange darauf gewartet. Am Wochenende gibt es Musik, Spiele für Kinder und einen Markt."
)
UNSURE = "城市绿地 park open Saturday morning"  # detected as zh, but below the 0.5 confidence routes need


def test_two_routes_and_a_low_confidence_document_each_go_where_the_readme_says(env_model, chinese_model, mixed):
    """Two routes at once (zh to a model, de to the extractive method), and a document whose detected
    language has a route but whose confidence is under 0.5: it goes to the default model."""
    (mixed / "e-de.txt").write_text(GERMAN, encoding="utf-8")
    (mixed / "f-unsure.txt").write_text(UNSURE, encoding="utf-8")
    routes = ["--model-for", f"zh={chinese_model}", "--model-for", "de=extractive"]
    result = run([str(mixed), *routes, "-f", "jsonl", *QUICK])
    assert result.exit_code == 0, result.stderr
    records = {Path(r["source"]).name: r for r in map(json.loads, result.stdout.splitlines())}
    assert list(records) == ["a-en.txt", "b-zh.txt", "c-short.txt", "d-en.txt", "e-de.txt", "f-unsure.txt"]
    took = {name: (r["language"], r["model"], r["method"]) for name, r in records.items()}
    assert took == {
        "a-en.txt": ("en", str(env_model), "abstractive"),
        "b-zh.txt": ("zh", str(chinese_model), "abstractive"),
        "c-short.txt": (records["c-short.txt"]["language"], str(env_model), "abstractive"),
        "d-en.txt": ("en", str(env_model), "abstractive"),
        "e-de.txt": ("de", "extractive", "extractive"),
        "f-unsure.txt": ("zh", str(env_model), "abstractive"),
    }
    assert records["f-unsure.txt"]["language_confidence"] < 0.5 <= records["b-zh.txt"]["language_confidence"]
    assert records["e-de.txt"]["summary"] in GERMAN  # its own sentences, whole


def test_an_english_only_run_never_loads_the_chinese_model(env_model, tmp_path, samples):
    result = run([str(samples / "harbour-ferry.txt"), "--model-for", "zh=/no/such/model", "-f", "jsonl", *QUICK])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["language"] == "en"


def test_language_declared_skips_detection(env_model, chinese_model, samples):
    text = (samples / "城市绿地.txt").read_text(encoding="utf-8")
    declared = run(["--language", "en", "--model-for", f"zh={chinese_model}", "-f", "jsonl", *QUICK], input=text)
    assert declared.exit_code == 0, declared.stderr
    record = json.loads(declared.stdout)
    assert (record["language"], record["language_confidence"], record["model"]) == ("en", 1.0, str(env_model))


def test_the_unreadable_warning_names_the_declared_language_not_the_detected_one(chinese_model, samples):
    """The Chinese-only model cannot read English, so the warning appears; its advice follows --language."""
    english = (samples / "harbour-ferry.txt").read_text(encoding="utf-8")
    detected = run(["-m", str(chinese_model), "-f", "jsonl", *QUICK], input=english)
    assert detected.exit_code == 0, detected.stderr
    assert json.loads(detected.stdout)["unknown_token_share"] > 0.1
    assert "--model-for en=csebuetnlp/mT5_multilingual_XLSum" in detected.stderr
    declared = run(["--language", "fr", "-m", str(chinese_model), "-f", "jsonl", *QUICK], input=english)
    assert declared.exit_code == 0, declared.stderr
    assert "language: --model-for fr=csebuetnlp/mT5_multilingual_XLSum, or " in declared.stderr
    assert "--model-for en=" not in declared.stderr


def test_languages_are_detected_only_where_a_record_or_a_warning_shows_them(chinese_model, samples, monkeypatch):
    """Detection takes CPU the model's replicas would have had: text and Markdown, which show no language,
    detect only a document the model cannot read (its warning names the language for a route)."""
    from summarize_cli.cli.options import run_spec
    from summarize_cli.inputs.language import Detector

    detected: list[str] = []
    real = Detector.detect
    monkeypatch.setattr(Detector, "detect", staticmethod(lambda text: detected.append(text[:9]) or real(text)))
    english = (samples / "harbour-ferry.txt").read_text(encoding="utf-8")
    chinese = (samples / "城市绿地.txt").read_text(encoding="utf-8")
    shown = {}
    for fmt in ("text", "markdown", "json", "jsonl"):
        for name, text in (("english", english), ("chinese", chinese)):
            detected.clear()
            result = run(["-m", str(chinese_model), "-f", fmt, *QUICK], input=text)
            assert result.exit_code == 0, result.stderr
            shown[fmt, name] = (len(detected), "--model-for en=" in result.stderr)
    assert shown == {
        ("text", "english"): (1, True),  # unreadable: detected, and its language advised
        ("text", "chinese"): (0, False),
        ("markdown", "english"): (1, True),
        ("markdown", "chinese"): (0, False),
        ("json", "english"): (1, True),
        ("json", "chinese"): (1, False),
        ("jsonl", "english"): (1, True),
        ("jsonl", "chinese"): (1, False),
    }
    # an --output dataset holds records, whatever -f says
    assert run_spec({"fmt": "text", "output": Path("out.parquet")}, use_cache=False).languages
    assert not run_spec({"fmt": "text", "output": None}, use_cache=False).languages


def test_a_document_routed_to_its_own_model_is_not_warned_of_as_the_default_models(env_model, chinese_model, samples):
    """The unreadable warning is about the default model: a document given a route went elsewhere."""
    english = (samples / "harbour-ferry.txt").read_text(encoding="utf-8")
    routed = run(["--model-for", f"en={chinese_model}", "-f", "jsonl", *QUICK], input=english)
    assert routed.exit_code == 0, routed.stderr
    record = json.loads(routed.stdout)
    assert record["model"] == str(chinese_model) and record["unknown_token_share"] > 0.1
    assert "cannot read" not in routed.stderr


def test_a_result_crossing_from_a_ray_actor_keeps_whether_its_language_routes():
    """Ray's transport carries a result whole: the unreadable warning's advice reads `routable`."""
    from summarize_cli.documents import Document, Result
    from summarize_cli.outputs.records import from_row, to_row

    for routable in (True, False):
        document = Document("a", "text", language="zh", language_confidence=0.99, routable=routable)
        back = from_row(to_row(Result(document=document, summary="s", input_tokens=3, chunks=1, seconds=0.1)))
        language = back.document
        assert (language.language, language.language_confidence, language.routable) == ("zh", 0.99, routable)


def test_an_unmapped_unreadable_language_names_the_option_to_add(env_model):
    korean = "서울시는 주말마다 시립 공원을 시민들에게 개방합니다. 시민들은 공원에서 산책과 운동을 할 수 있습니다. " * 3
    result = run(["-f", "jsonl", *QUICK], input=korean)
    assert result.exit_code == 0
    assert json.loads(result.stdout)["language"] == "ko"
    assert "Send it to a model that reads its language: --model-for ko=csebuetnlp/mT5_multilingual_XLSum, or " in (
        result.stderr
    )


def test_the_config_models_table_routes_too(env_model, chinese_model, mixed, tmp_path, monkeypatch):
    config = tmp_path / "config.toml"
    config.write_text(f'[models]\nzh = "{chinese_model}"\n')
    monkeypatch.setenv("SUMMARIZE_CONFIG", str(config))
    result = run([str(mixed / "b-zh.txt"), "-f", "jsonl", *QUICK])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["model"] == str(chinese_model)


def test_routing_under_ray_matches_the_local_run(env_model, chinese_model, mixed, local_ray):
    args = [str(mixed), "--model-for", f"zh={chinese_model}", "-f", "jsonl", *QUICK]
    local = run(args)
    on_ray = run([*args, "--ray", "--workers", "2"])
    assert on_ray.exit_code == local.exit_code == 0, on_ray.stderr
    strip = lambda out: [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in out.splitlines()]  # noqa: E731
    assert strip(on_ray.stdout) == strip(local.stdout)


def test_the_unreadable_advice_on_rays_actor_pool_matches_the_local_run(chinese_model, samples, local_ray):
    """stdin runs on an actor pool: its results cross back to the driver, whose warning must still know
    that the English document could be routed by its language."""
    english = (samples / "harbour-ferry.txt").read_text(encoding="utf-8")
    feed = json.dumps({"id": "en-1", "text": english}) + "\n"
    args = ["-m", str(chinese_model), "--stdin-format", "jsonl", "-f", "jsonl", *QUICK]
    local = run(args, input=feed)
    on_ray = run([*args, "--ray", "--workers", "1"], input=feed)
    assert on_ray.exit_code == local.exit_code == 0, on_ray.stderr
    warned = [line for line in local.stderr.splitlines() if "cannot read" in line]
    assert len(warned) == 1 and "--model-for en=csebuetnlp/mT5_multilingual_XLSum, or " in warned[0]
    assert [line for line in on_ray.stderr.splitlines() if "cannot read" in line] == warned


def test_eval_breaks_rouge_down_by_language(env_model, chinese_model, tmp_path, samples):
    data = tmp_path / "mixed.jsonl"
    rows = [
        {
            "id": "en1",
            "text": (samples / "harbour-ferry.txt").read_text(encoding="utf-8"),
            "summary": "The ferry returns.",
        },
        {"id": "zh1", "text": (samples / "城市绿地.txt").read_text(encoding="utf-8"), "summary": "城市绿地开放。"},
        {
            "id": "en2",
            "text": (samples / "solar-school.txt").read_text(encoding="utf-8"),
            "summary": "A school goes solar.",
        },
    ]
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    result = run(["eval", str(data), "--model-for", f"zh={chinese_model}", "-f", "json", *QUICK[:6], "-q"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    for system in report["systems"]:
        assert sorted(system["by_language"]) == ["en", "zh"]
        assert system["by_language"]["en"]["documents"] == 2 and system["by_language"]["zh"]["documents"] == 1
    table = run(["eval", str(data), "--model-for", f"zh={chinese_model}", *QUICK[:6], "-q"])
    assert table.exit_code == 0, table.output
    assert "en (2 documents)" in table.stdout and "zh (1 document)" in table.stdout


def test_sentences_keep_abbreviations_and_split_chinese():
    from summarize_cli.quality.evaluate import lead
    from summarize_cli.sentences import sentences

    assert sentences("Dr. Smith met U.S. officials. The rate was 3.5 percent. E.g. this stays.") == [
        "Dr. Smith met U.S. officials.",
        "The rate was 3.5 percent.",
        "E.g. this stays.",
    ]
    assert sentences("渡轮周一恢复。市议会说！真的吗？是的") == ["渡轮周一恢复。", "市议会说！", "真的吗？", "是的"]
    assert lead("Dr. Smith met U.S. officials. They talked. They left. They came back.") == (
        "Dr. Smith met U.S. officials. They talked. They left."
    )


def test_the_plain_detector_agrees_with_py3langid_and_never_imports_numpy(tmp_path, samples):
    """Detection reads the cached model without numpy (whose import cost a one-off more than detecting);
    on every sample, on slices of them and on short, mixed, shouted and empty texts it picks py3langid's
    language with py3langid's confidence (to four decimals)."""
    import subprocess
    import sys

    from py3langid import langid

    from summarize_cli.inputs.language import LANGUAGES, PlainIdentifier, _cached_model_folder, _load

    texts = [p.read_text(encoding="utf-8")[:2000] for p in sorted(samples.iterdir())]
    texts += [t[i : i + n] for t in texts for i, n in ((0, 40), (100, 12), (300, 200))]
    texts += [
        GERMAN,
        UNSURE,
        "Ok.",
        "",
        "THE FERRY RETURNS ON MONDAY",
        "Привет, как дела? Сегодня хорошая погода.",
        *CHINESE,
    ]
    _load()  # the cached arrays, made once
    plain = PlainIdentifier(_cached_model_folder())
    full = langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE, norm_probs=True)
    full.set_languages(LANGUAGES)
    for text in texts:
        language, confidence = full.classify(text)
        mine = plain.classify(text)
        assert (mine[0], round(mine[1], 4)) == (language, round(confidence, 4)), text
    probe = "from summarize_cli.inputs.language import Detector; import sys; "
    probe += "print(Detector.detect('Die Stadt öffnet am Samstag den neuen Park.').language, 'numpy' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "de False\n"), done.stderr


def test_the_unreadable_warning_never_advises_a_route_that_cannot_apply(env_model):
    """A text too short to route by language (under a dozen letters) goes to the default model whatever
    --model-for says: advising `--model-for ko=...` (here already given) cannot help, so the advice is
    -m or --method. A text kept as it is (already shorter than a summary) has no summary to be poor."""
    short = "서울 공원 ok."
    forced = run(["--force", "--model-for", "ko=extractive", *QUICK], input=short)
    assert forced.exit_code == 0, forced.stderr
    assert forced.stderr.splitlines() == [
        f"Warning: 1 document is mostly text that {env_model} cannot read (share of unknown-token text: "
        "<stdin> (57%)); its summary will be poor. Send it to a model that reads its language: "
        "-m csebuetnlp/mT5_multilingual_XLSum, or summarise it extractively, with nothing to download: "
        "--method extractive."
    ]
    kept = run(["--model-for", "ko=extractive", *QUICK, "--min-length", "8"], input=short)  # 3 words: kept
    assert (kept.exit_code, kept.stdout, kept.stderr.splitlines()) == (
        0,
        short + "\n",
        ["1 document was already shorter than a summary and was kept as it is (--force summarises it)."],
    )
