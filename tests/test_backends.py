"""The torch and CTranslate2 backends: faithfulness, the conversion cache, lazy imports, options."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from summarize_cli.backends import ct2_backend
from summarize_cli.cli import app
from summarize_cli.engine import load_engine
from summarize_cli.errors import SettingsError
from summarize_cli.model_source import resolve_model
from summarize_cli.settings import GenerationSettings, resolve

FAST = ["--max-length", "12", "--min-length", "2", "--num-beams", "2", "-q", "--no-cache"]


def sample_inputs(engine, samples: Path) -> list[list[int]]:
    tokenizer = engine.tokenizer
    prefix = tokenizer.encode("summarize: ").ids
    texts = [p.read_text(encoding="utf-8") for p in sorted(samples.iterdir())]
    return [tokenizer.wrap(prefix, tokenizer.encode(t).ids[:500]) for t in texts]


@pytest.mark.parametrize(
    "settings",
    [
        {"num_beams": 4, "length_penalty": 2.0, "no_repeat_ngram_size": 3, "min_length": 30, "max_length": 60},
        {"num_beams": 2, "length_penalty": 1.0, "no_repeat_ngram_size": 0, "min_length": 0, "max_length": 40},
        {"num_beams": 1, "no_repeat_ngram_size": 2, "min_length": 5, "max_length": 40},
    ],
)
def test_ctranslate2_float32_gives_the_same_tokens_as_torch(tiny_model, samples, settings):
    torch_engine = load_engine(str(tiny_model), backend="torch")
    ct2_engine = load_engine(str(tiny_model), backend="ctranslate2", compute_type="float32")
    gen = GenerationSettings(**settings)
    inputs = sample_inputs(torch_engine, samples)
    assert sample_inputs(ct2_engine, samples) == inputs
    from_torch = torch_engine.backend.generate(inputs, gen)
    from_ct2 = ct2_engine.backend.generate(inputs, gen)
    assert all(len(ids) >= settings["min_length"] for ids in from_torch)
    assert from_ct2 == from_torch


def test_conversion_happens_once_and_is_keyed_by_compute_type(tiny_model):
    statuses: list[str] = []
    load_engine(str(tiny_model), backend="ctranslate2", compute_type="int8_float32", on_status=statuses.append)
    load_engine(str(tiny_model), backend="ctranslate2", compute_type="int8_float32", on_status=statuses.append)
    assert sum("Converting" in s for s in statuses) == 1
    source = resolve_model(str(tiny_model))
    assert ct2_backend.is_converted(ct2_backend.converted_dir(source, "int8_float32"))
    assert ct2_backend.converted_dir(source, "int8") != ct2_backend.converted_dir(source, "int8_float32")


def test_half_finished_conversion_is_never_used(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("SUMMARIZE_CACHE_DIR", str(tmp_path))
    source = resolve_model(str(tiny_model))
    target = ct2_backend.converted_dir(source, "int8")
    target.mkdir(parents=True)
    (target / "model.bin").write_bytes(b"truncated")  # what an interrupted copy would leave
    assert not ct2_backend.is_converted(target)
    statuses: list[str] = []
    with pytest.raises(Exception):  # noqa: B017 - the rename onto a non-empty folder must not pass silently
        load_engine(str(tiny_model), backend="ctranslate2", compute_type="int8", on_status=statuses.append)
    assert any("Converting" in s for s in statuses)
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]  # the temporary folder is gone


def test_model_revision_change_gets_a_new_conversion(tiny_model, tmp_path):
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(tiny_model, copy)
    first = resolve_model(str(copy))
    config = json.loads((copy / "config.json").read_text())
    config["task_specific_params"]["summarization"]["num_beams"] = 3
    (copy / "config.json").write_text(json.dumps(config))
    assert resolve_model(str(copy)).revision != first.revision


def test_auto_picks_ctranslate2_for_t5_on_cpu(tiny_model):
    engine = load_engine(str(tiny_model))
    assert engine.backend.name == "ctranslate2" and engine.backend.precision == "int8"
    assert engine.backend.device == "cpu"


def test_float16_compute_type_is_refused_for_t5(tiny_model):
    with pytest.raises(SettingsError, match="float16"):
        ct2_backend.pick_compute_type("float16", "cuda", "t5")


def test_unhonoured_options_are_said(tiny_model, samples, monkeypatch):
    monkeypatch.setenv("SUMMARIZE_MODEL", str(tiny_model))
    result = CliRunner().invoke(
        app,
        [
            str(samples / "harbour-ferry.txt"),
            "--backend",
            "ctranslate2",
            "--do-sample",
            "--seed",
            "1",
            "--num-beams",
            "3",
            "--max-length",
            "8",
            "-q",
        ],
    )
    assert result.exit_code == 0
    assert "Warning: the ctranslate2 backend samples with one beam" in result.stderr


def test_json_records_name_backend_and_precision(tiny_model, samples, monkeypatch):
    monkeypatch.setenv("SUMMARIZE_MODEL", str(tiny_model))
    path = str(samples / "harbour-ferry.txt")
    for backend, precision in (("torch", "float32"), ("ctranslate2", "int8")):
        result = CliRunner().invoke(app, [path, "-f", "jsonl", "--backend", backend, *FAST])
        record = json.loads(result.stdout)
        assert (record["backend"], record["precision"], record["device"]) == (backend, precision, "cpu")


def test_seeded_sampling_is_repeatable_on_ctranslate2(tiny_model):
    def sample(seed: int) -> list[list[int]]:
        engine = load_engine(str(tiny_model), backend="ctranslate2")  # a fresh run, as each CLI call is
        settings = resolve(tiny_model, {"do_sample": True, "num_beams": 1, "seed": seed, "max_length": 20})
        ids = [engine.tokenizer.wrap([], engine.tokenizer.encode("The harbour ferry runs at night.").ids)]
        return engine.backend.generate(ids, settings)

    assert sample(5) == sample(5)
    assert sample(5) != sample(6)


def test_cached_ctranslate2_run_imports_neither_torch_nor_transformers(tiny_model, samples):
    load_engine(str(tiny_model), backend="ctranslate2")  # make sure the conversion is cached
    code = (
        "import sys\nfrom summarize_cli.cli import main\n"
        f"sys.argv = ['summarize', '-m', {str(tiny_model)!r}, {str(samples / 'solar-school.txt')!r}, '-q',"
        " '--max-length', '8', '--backend', 'ctranslate2']\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip()
    assert done.stderr.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    "settings",
    [
        {"num_beams": 4, "length_penalty": 2.0, "no_repeat_ngram_size": 3, "min_length": 10, "max_length": 30},
        {"num_beams": 1, "no_repeat_ngram_size": 0, "min_length": 5, "max_length": 30},
    ],
)
def test_bart_and_pegasus_give_the_same_tokens_on_both_backends(bart_family_model, samples, settings):
    torch_engine = load_engine(str(bart_family_model), backend="torch")
    ct2_engine = load_engine(str(bart_family_model), backend="ctranslate2", compute_type="float32")
    tokenizer = torch_engine.tokenizer
    inputs = [
        tokenizer.wrap([], tokenizer.encode(p.read_text(encoding="utf-8")).ids[:400]) for p in sorted(samples.iterdir())
    ]
    gen = GenerationSettings(**settings)
    from_torch = torch_engine.backend.generate(inputs, gen)
    assert all(len(ids) == settings["max_length"] for ids in from_torch)  # forced <s>/</s> do not count
    assert ct2_engine.backend.generate(inputs, gen) == from_torch


def test_model_without_summarisation_parameters_gets_defaults_and_no_prefix(bart_family_model, samples):
    result = CliRunner().invoke(
        app, [str(samples / "harbour-ferry.txt"), "-m", str(bart_family_model), "-f", "jsonl", "-q", "--no-cache"]
    )
    assert result.exit_code == 0, result.stderr
    settings = json.loads(result.stdout)["settings"]
    assert settings["prefix"] == "" and settings["num_beams"] == 4
    assert (settings["min_length"], settings["max_length"]) == (10, 128)


def test_auto_falls_back_to_torch_when_conversion_fails_and_remembers(tiny_model, tmp_path, monkeypatch):
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(tiny_model, copy)
    monkeypatch.setenv("SUMMARIZE_CACHE_DIR", str(tmp_path / "cache"))
    calls = []

    def broken_converter(*args, **kwargs):
        calls.append(1)
        raise AttributeError("'T5Config' object has no attribute 'something_new'")

    import ctranslate2.converters

    monkeypatch.setattr(ctranslate2.converters, "TransformersConverter", broken_converter)
    engine = load_engine(str(copy))
    assert engine.backend.name == "torch"
    assert (
        "CTranslate2 cannot convert" in engine.backend.notes[0] and "using the torch backend" in engine.backend.notes[0]
    )
    again = load_engine(str(copy))
    assert again.backend.name == "torch" and len(calls) == 1  # the failure was remembered
    with pytest.raises(Exception, match="CTranslate2 cannot convert"):
        load_engine(str(copy), backend="ctranslate2")
