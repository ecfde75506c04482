"""The torch and CTranslate2 backends: faithfulness, the conversion cache, lazy imports, options."""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import subprocess
import sys
import types
from pathlib import Path

import pytest
from conftest import FAST, run

from summarize_cli.errors import ModelLoadError, SettingsError
from summarize_cli.model.backends import ct2_backend
from summarize_cli.model.engine import load_engine
from summarize_cli.model.settings import GenerationSettings, resolve
from summarize_cli.model.source import resolve_model
from summarize_cli.specs import usable_cpus


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
    # on the CPU, where both run in float32 (auto would be bfloat16 for torch on a CUDA machine)
    torch_engine = load_engine(str(tiny_model), backend="torch", device="cpu")
    ct2_engine = load_engine(str(tiny_model), backend="ctranslate2", device="cpu", compute_type="float32")
    assert (torch_engine.backend.precision, ct2_engine.backend.precision) == ("float32", "float32")
    gen = GenerationSettings(**settings)
    inputs = sample_inputs(torch_engine, samples)
    assert sample_inputs(ct2_engine, samples) == inputs
    from_torch = torch_engine.backend.generate(inputs, gen)
    from_ct2 = ct2_engine.backend.generate(inputs, gen)
    assert all(len(ids) >= settings["min_length"] for ids in from_torch)
    assert from_ct2 == from_torch
    assert ct2_engine.backend.submit(inputs, gen)() == from_torch  # queued on the replicas: the same tokens
    folder = ct2_backend.converted_dir(ct2_engine.source, "float32")  # read as a token per line: the same
    assert sorted(p.name for p in folder.glob("*vocabulary*")) == ["shared_vocabulary.txt"]


@pytest.mark.parametrize("odd", ["a\nb", " d", "d ", "x\r", "", None, "\u2028y"])
def test_a_vocabulary_with_a_token_that_cannot_stand_on_a_line_stays_json(tmp_path, odd):
    kept = json.dumps(["<pad>", odd, "c"])
    (tmp_path / "source_vocabulary.json").write_text(kept)
    (tmp_path / "target_vocabulary.json").write_text(json.dumps(["<pad>", "▁e", "f"]))
    ct2_backend._plain_vocabularies(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source_vocabulary.json", "target_vocabulary.txt"]
    assert (tmp_path / "source_vocabulary.json").read_text() == kept
    assert (tmp_path / "target_vocabulary.txt").read_bytes() == "<pad>\n▁e\nf\n".encode()


def test_a_damaged_conversion_is_one_error_or_with_auto_the_torch_backend(tiny_model, tmp_path, monkeypatch):
    """The model loads in a thread of its own: its failure still reaches the caller as one ModelLoadError,
    and --backend auto still falls back to torch, saying why."""
    monkeypatch.setenv("SUMMARIZE_CACHE_DIR", str(tmp_path))
    load_engine(str(tiny_model), backend="ctranslate2", compute_type="int8")
    target = ct2_backend.converted_dir(resolve_model(str(tiny_model)), "int8")
    (target / "model.bin").write_bytes(b"damaged after its conversion")
    with pytest.raises(ModelLoadError, match=f"cannot load the converted model in {target}: "):
        load_engine(str(tiny_model), backend="ctranslate2", compute_type="int8")
    fallback = load_engine(str(tiny_model), compute_type="int8")
    assert fallback.backend.name == "torch"
    assert any(f"cannot load the converted model in {target}" in note for note in fallback.backend.notes)


def test_conversion_happens_once_and_is_keyed_by_compute_type(tiny_model):
    statuses: list[str] = []
    load_engine(str(tiny_model), backend="ctranslate2", compute_type="int8_float32", on_status=statuses.append)
    load_engine(str(tiny_model), backend="ctranslate2", compute_type="int8_float32", on_status=statuses.append)
    assert sum("Converting" in s for s in statuses) == 1
    source = resolve_model(str(tiny_model))
    assert ct2_backend.is_converted(ct2_backend.converted_dir(source, "int8_float32"))
    assert ct2_backend.converted_dir(source, "int8") != ct2_backend.converted_dir(source, "int8_float32")


def test_one_folder_named_three_ways_is_converted_once(tiny_model, tmp_path, monkeypatch):
    """`-m model`, `-m ./model/` and `-m /abs/model` are one folder: one conversion, found by each."""
    import shutil

    monkeypatch.setenv("SUMMARIZE_CACHE_DIR", str(tmp_path / "cache"))
    shutil.copytree(tiny_model, tmp_path / "work" / "model")
    monkeypatch.chdir(tmp_path / "work")
    statuses: list[str] = []
    for name in ("model", "./model/", str(tmp_path / "work" / "model")):
        engine = load_engine(name, backend="ctranslate2", compute_type="int8", on_status=statuses.append)
        assert engine.source.name == name  # records still name the model as it was given
    assert sum("Converting" in s for s in statuses) == 1
    assert len(list((tmp_path / "cache" / "ctranslate2").glob("*-int8"))) == 1


def test_half_finished_conversion_is_never_used(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("SUMMARIZE_CACHE_DIR", str(tmp_path))
    source = resolve_model(str(tiny_model))
    target = ct2_backend.converted_dir(source, "int8")
    target.mkdir(parents=True)
    (target / "model.bin").write_bytes(b"truncated")  # what an interrupted copy would leave
    assert not ct2_backend.is_converted(target)
    statuses: list[str] = []
    engine = load_engine(
        str(tiny_model), backend="ctranslate2", device="cpu", compute_type="int8", on_status=statuses.append
    )
    assert any("Converting" in s for s in statuses)  # not taken for a conversion: converted again
    assert ct2_backend.is_converted(target) and (target / "model.bin").read_bytes() != b"truncated"
    assert (engine.backend.name, engine.backend.precision) == ("ctranslate2", "int8")
    ids = [engine.tokenizer.wrap([], engine.tokenizer.encode("The harbour ferry runs at night.").ids)]
    assert len(engine.backend.generate(ids, GenerationSettings(num_beams=1, min_length=3, max_length=6))[0]) >= 3
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
    engine = load_engine(str(tiny_model), device="cpu")
    assert engine.backend.name == "ctranslate2" and engine.backend.precision == "int8"
    assert engine.backend.device == "cpu"


def test_auto_device_is_a_gpu_when_ctranslate2_sees_one(tiny_model):
    import ctranslate2

    engine = load_engine(str(tiny_model))
    assert engine.backend.name == "ctranslate2"
    if ctranslate2.get_cuda_device_count() > 0:
        bf16 = "bfloat16" in ctranslate2.get_supported_compute_types("cuda")
        assert engine.backend.device == "cuda:0"
        assert engine.backend.precision == ("bfloat16" if bf16 else "int8_float32")
    else:
        assert (engine.backend.device, engine.backend.precision) == ("cpu", "int8")


def test_float16_compute_type_is_refused_for_t5(tiny_model):
    with pytest.raises(SettingsError, match="float16"):
        ct2_backend.pick_compute_type("float16", "cuda", "t5")


def test_unhonoured_options_are_said(tiny_model, samples, monkeypatch):
    monkeypatch.setenv("SUMMARIZE_MODEL", str(tiny_model))
    result = run(
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
    import torch

    monkeypatch.setenv("SUMMARIZE_MODEL", str(tiny_model))
    path = str(samples / "harbour-ferry.txt")
    for backend, precision in (("torch", "float32"), ("ctranslate2", "int8")):
        result = run([path, "-f", "jsonl", "--backend", backend, "--device", "cpu", *FAST])
        assert result.exit_code == 0, result.stderr
        record = json.loads(result.stdout)
        assert (record["backend"], record["precision"], record["device"]) == (backend, precision, "cpu")
    # without --device: the GPU when torch sees one, in bfloat16 where it can
    record = json.loads(run([path, "-f", "jsonl", "--backend", "torch", *FAST]).stdout)
    if torch.cuda.is_available():
        bf16 = torch.cuda.is_bf16_supported()
        assert (record["device"], record["precision"]) == ("cuda", "bfloat16" if bf16 else "float32")
    elif torch.backends.mps.is_available():
        assert (record["device"], record["precision"]) == ("mps", "float32")
    else:
        assert (record["device"], record["precision"]) == ("cpu", "float32")


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
        "import sys\nfrom summarize_cli.cli.app import run\n"
        f"sys.argv = ['summarize', '-m', {str(tiny_model)!r}, {str(samples / 'solar-school.txt')!r}, '-q',"
        " '--max-length', '8', '--backend', 'ctranslate2']\n"
        "assert run() == 0\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip()
    assert done.stderr.strip().splitlines()[-1] == "[]"


def test_a_ctranslate2_run_never_imports_asyncio_and_ctranslate2_still_reaches_it(tiny_model, samples):
    """ctranslate2 imports asyncio (20 ms) for a method we never call: a whole run goes without it, and
    ctranslate2's own reference still reaches the real module, imported when first used."""
    load_engine(str(tiny_model), backend="ctranslate2")
    code = (
        "import sys\nfrom summarize_cli.cli.app import run\n"
        f"sys.argv = ['summarize', '-m', {str(tiny_model)!r}, {str(samples / 'solar-school.txt')!r}, '-q',"
        " '--max-length', '8', '--backend', 'ctranslate2']\n"
        "assert run() == 0\n"
        "import ctranslate2.extensions as extensions\n"
        "print('ctranslate2' in sys.modules, 'asyncio' in sys.modules, extensions.asyncio.__doc__[:34],"
        " file=sys.stderr)\n"
        "queue = extensions.asyncio.Queue\n"
        "import asyncio\n"
        "print(queue is asyncio.Queue, hasattr(asyncio, '__file__'), asyncio.run(asyncio.sleep(0, 7)),"
        " file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-2:] == ["True False asyncio, imported at its first use", "True True 7"]


def test_a_cpu_model_load_keeps_freed_memory(tiny_model):
    """The engine's own load sets malloc up (what the faults test below measures), before the model loads."""
    code = (
        "from summarize_cli.model import backends\nfrom summarize_cli.model.engine import load_engine\n"
        f"assert backends._kept is None\nload_engine({str(tiny_model)!r}, backend='ctranslate2', device='cpu')\n"
        "print(backends._kept)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "LD_PRELOAD") and "MALLOC_" not in k}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ("True" if sys.platform.startswith("linux") else "False")


_FAULTS = """
import resource, sys
from summarize_cli.model.backends import keep_freed_memory
kept = keep_freed_memory()
size = 40 * 1024 * 1024  # above the largest threshold glibc reaches by itself (32 MiB): mapped apart each time
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(8):
    block = b"x" * size  # written, so every page is touched
    del block
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
@pytest.mark.parametrize(
    ("variable", "kept"),
    [
        (None, True),
        ("GLIBC_TUNABLES=glibc.malloc.trim_threshold=131072", False),
        ("MALLOC_ARENA_MAX=2", False),
        ("MALLOC_MMAP_THRESHOLD_=1048576", False),
        ("MALLOC_TRIM_THRESHOLD_=1048576", False),
        ("MALLOC_TOP_PAD_=1048576", False),
        ("LD_PRELOAD=/nonexistent/libjemalloc.so.2", False),  # another allocator (the loader skips this one)
    ],
)
def test_freed_blocks_are_kept_for_reuse_unless_the_user_set_malloc(variable, kept):
    """A model's buffers, freed and allocated again at every decoding step, are reused rather than handed
    back to the kernel and faulted in again page by page; the user's own malloc settings win."""
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "LD_PRELOAD") and "MALLOC_" not in k}
    if variable is not None:
        name, _, value = variable.partition("=")
        env[name] = value
    done = subprocess.run([sys.executable, "-c", _FAULTS], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    said, faults = done.stdout.split()
    pages = 40 * 1024 * 1024 // resource.getpagesize()
    assert said == str(kept)
    if kept:
        assert int(faults) < 2 * pages  # the first block's pages, then the same ones again
    else:
        assert int(faults) > 6 * pages  # every block mapped and faulted in anew


@pytest.mark.parametrize(
    "settings",
    [
        {"num_beams": 4, "length_penalty": 2.0, "no_repeat_ngram_size": 3, "min_length": 10, "max_length": 30},
        {"num_beams": 1, "no_repeat_ngram_size": 0, "min_length": 5, "max_length": 30},
    ],
)
def test_bart_and_pegasus_give_the_same_tokens_on_both_backends(bart_family_model, samples, settings):
    torch_engine = load_engine(str(bart_family_model), backend="torch", device="cpu")  # float32 on both
    ct2_engine = load_engine(str(bart_family_model), backend="ctranslate2", device="cpu", compute_type="float32")
    tokenizer = torch_engine.tokenizer
    inputs = [
        tokenizer.wrap([], tokenizer.encode(p.read_text(encoding="utf-8")).ids[:400]) for p in sorted(samples.iterdir())
    ]
    gen = GenerationSettings(**settings)
    from_torch = torch_engine.backend.generate(inputs, gen)
    assert all(len(ids) == settings["max_length"] for ids in from_torch)  # forced <s>/</s> do not count
    assert ct2_engine.backend.generate(inputs, gen) == from_torch
    assert ct2_engine.backend.submit(inputs, gen)() == from_torch  # queued: forced <s> dropped all the same


def test_model_without_summarisation_parameters_gets_defaults_and_no_prefix(bart_family_model, samples):
    result = run([str(samples / "harbour-ferry.txt"), "-m", str(bart_family_model), "-f", "jsonl", "-q", "--no-cache"])
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
    with pytest.raises(ModelLoadError, match="CTranslate2 cannot convert"):
        load_engine(str(copy), backend="ctranslate2")


@pytest.mark.parametrize(
    ("policy", "spins", "seen", "one_off"),
    [
        (None, None, (None, ct2_backend.SHORT_SPIN), "free"),  # ours: a short spin, then sleep
        ("", None, (None, ct2_backend.SHORT_SPIN), "free"),  # blank: libgomp would warn, then spin long
        (None, " ", (None, ct2_backend.SHORT_SPIN), "free"),
        ("PASSIVE", None, ("PASSIVE", None), "one"),  # threads sleep at every barrier: no barriers
        (" passive ", None, (" passive ", None), "one"),
        ("ACTIVE", None, ("ACTIVE", None), "every"),  # the user's machine: every core, spinning
        (" active ", None, (" active ", None), "every"),
        ("ACTIVE", "0", ("ACTIVE", "0"), "one"),  # libgomp: the spin count wins, so threads sleep
        ("garbage", None, ("garbage", None), "one"),  # libgomp rejects it (and spins 300,000 times)
        (None, "2000", (None, "2000"), "free"),  # the user's own spin count
        (None, "0", (None, "0"), "one"),  # a spin count of 0 is waiting passively
        (None, "00", (None, "00"), "one"),
        (None, "many", (None, "many"), "one"),  # rejected by libgomp: its long default, never ours
        (None, "1" * 21, (None, "1" * 21), "one"),  # past strtoull's range: rejected too
        (None, "10k", (None, "10k"), "free"),
        ("ACTIVE", " ", ("ACTIVE", None), "every"),  # a blank count beside the user's policy: not ours
        ("", "2000", (None, "2000"), "free"),
    ],
)
def test_ctranslate2_threads_spin_briefly_unless_the_user_says_otherwise(tiny_model, policy, spins, seen, one_off):
    """libgomp reads OMP_WAIT_POLICY and GOMP_SPINCOUNT once, when CTranslate2 loads it: its default spin
    makes a one-off many times slower whenever another process holds a core. Ours must be set before
    that and never over the user's, and the user's choice decides how a one-off may use the cores."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    for name, value in (("OMP_WAIT_POLICY", policy), ("GOMP_SPINCOUNT", spins)):
        if value is not None:
            env[name] = value
    code = (
        "import os, sys\nseen = []\n"
        "class Spy:  # asked first for every module not yet imported, however it is imported\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'ctranslate2':  # what libgomp will read, as it loads\n"
        "            seen.append((os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT')))\n"
        "sys.meta_path.insert(0, Spy())\n"
        "from summarize_cli.model.engine import load_engine\n"
        f"load_engine({str(tiny_model)!r}, backend='ctranslate2')\n"
        "from summarize_cli.model.backends import ct2_backend\n"
        "print(repr(seen), ct2_backend.ONE_OFF_CORES)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{[seen]!r} {one_off}"
    rejected = (policy or "").strip().upper() not in ("", "ACTIVE", "PASSIVE") or spins in ("many", "1" * 21)
    assert ("libgomp: Invalid value" in done.stderr) == rejected, done.stderr  # blank values never reach it


@pytest.mark.parametrize(
    ("device", "one_document", "one_off", "free", "intra", "inter"),
    [
        ("cpu", False, "free", 3, 1, 3),  # many inputs: a replica of one thread per core
        ("cpu", False, "every", 3, 1, 3),  # whatever the policy
        ("cpu", True, "free", 3, 3, 1),  # a one-off on an idle machine: one replica of every core
        ("cpu", True, "free", 2, 2, 1),  # ... of the cores no other process is running on
        ("cpu", True, "free", 1, 1, 3),  # no two free: replicas of one thread, as for a batch
        ("cpu", True, "every", 1, 3, 1),  # the user's ACTIVE: every core, busy or not
        ("cpu", True, "one", 3, 1, 3),  # threads that sleep at every barrier: replicas of one thread
        ("cuda", True, "free", 3, 0, 1),  # the GPU: one replica, CTranslate2's own threads
    ],
)
def test_ctranslate2_lays_replicas_over_the_cores(
    monkeypatch, tmp_path, device, one_document, one_off, free, intra, inter
):
    """What ctranslate2.Translator is asked for, and what the backend says (-v) it has."""
    import ctranslate2

    asked = {}

    def translator(folder, **kwargs):
        asked.update(kwargs)
        return object()

    monkeypatch.setattr(ctranslate2, "Translator", translator)
    monkeypatch.setattr(ct2_backend, "ONE_OFF_CORES", one_off)
    looked = []  # free_cores sleeps between its looks: only a one-off that may spread over cores pays that
    monkeypatch.setattr(ct2_backend, "free_cores", lambda wanted: looked.append(wanted) or min(wanted, free))
    monkeypatch.setattr(ct2_backend, "keep_freed_memory", lambda: True)  # not this test process's malloc
    made = ct2_backend.Translator(tmp_path, device, 0, "int8", 3, one_document)
    made.loaded()
    assert looked == ([3] if (device, one_document, one_off) == ("cpu", True, "free") else [])
    assert (asked["device"], asked["device_index"], asked["compute_type"]) == (device, 0, "int8")
    assert (asked["intra_threads"], asked["inter_threads"]) == (intra, inter)
    assert (made.replicas, made.replica_threads) == (inter, intra or None)


@pytest.mark.parametrize(
    ("value", "count"),
    [("0", 0), ("00", 0), (" 7 ", 7), ("+5", 5), ("10k", 10_000), ("1 k", 1000), ("2M", 2_000_000)]
    + [("1g", 10**9), ("2T", 2 * 10**12), ("infinite", 2**64 - 1), ("INFINITY", 2**64 - 1)]
    + [("-1", 2**64 - 1), ("18446744073709551615", 2**64 - 1), ("99999999999999T", 2**64 - 1)]
    + [("18446744073709551616", None), ("many", None), ("10x", None), ("1.5", None), ("\u0661\u0660", None)],
)
def test_spin_counts_are_read_as_libgomp_reads_them(value, count):
    assert ct2_backend.spin_count(value) == count


def test_free_cores_looks_again_past_a_passing_thread(monkeypatch):
    """A thread that is runnable for a moment (a kernel thread, this process's own between two states) must
    not cost an idle machine its cores; a process that holds a core is in every snapshot."""
    import time

    from summarize_cli import model

    slept = []
    monkeypatch.setattr(time, "sleep", slept.append)
    seen = iter([1, 1, 0, 1])
    monkeypatch.setattr(model.backends, "_other_runnable", lambda loadavg, tasks: next(seen))
    assert model.backends.free_cores(2, cpus=2) == 2
    assert slept == [0.0005, 0.0005]
    looks, slept[:] = [], []
    monkeypatch.setattr(model.backends, "_other_runnable", lambda loadavg, tasks: looks.append(1) or 1)
    assert model.backends.free_cores(2, cpus=2) == 1
    assert (len(looks), slept) == (8, [0.0005] * 7)
    seen = iter([1, None])  # /proc stopped answering: every thread counts as free
    monkeypatch.setattr(model.backends, "_other_runnable", lambda loadavg, tasks: next(seen))
    assert model.backends.free_cores(2, cpus=2) == 2


def _fake_proc(tmp_path: Path, runnable: int, own_states: str) -> tuple[Path, Path]:
    loadavg = tmp_path / "loadavg"
    loadavg.write_text(f"0.52 0.58 0.59 {runnable}/85 4321\n")
    tasks = tmp_path / "task"
    for number, state in enumerate(own_states):
        (tasks / str(100 + number)).mkdir(parents=True)
        if state != "-":  # "-": a thread gone, its folder listed but its stat unreadable
            (tasks / str(100 + number) / "stat").write_text(f"{100 + number} (a (b) c) {state} 1 2 3\n")
    return loadavg, tasks


@pytest.mark.parametrize(
    ("runnable", "own_states", "wanted", "cpus", "free"),
    [
        (1, "RS", 4, 4, 4),  # only this thread runs
        (2, "RR", 4, 4, 4),  # both runnable threads are ours
        (3, "RS", 4, 4, 2),  # two other threads run somewhere
        (9, "R", 4, 4, 1),  # a busy machine: at least one
        (1, "SS", 2, 2, 2),  # the reading thread is counted as ours even if it read itself as sleeping
        (2, "R", 2, 16, 2),  # --threads 2 on 16 CPUs beside one busy process: 15 are free
        (15, "R", 4, 16, 2),  # 14 busy of 16
        (1, "R-", 2, 2, 2),  # a thread that ended between the listing and the read
    ],
)
def test_free_cores_counts_what_other_processes_run(tmp_path, runnable, own_states, wanted, cpus, free):
    from summarize_cli.model.backends import free_cores

    loadavg, tasks = _fake_proc(tmp_path, runnable, own_states)
    assert free_cores(wanted, cpus, loadavg, tasks) == free


def test_free_cores_without_proc_counts_every_thread(tmp_path):
    from summarize_cli.model.backends import free_cores

    loadavg, tasks = _fake_proc(tmp_path, 1, "R")
    assert free_cores(6, 2, tmp_path / "absent", tasks) == 6
    assert free_cores(6, 2, loadavg, tmp_path / "absent") == 6
    loadavg.write_text("garbage\n")
    assert free_cores(6, 2, loadavg, tasks) == 6


class _BusyMachine:
    """Processes that hold every CPU but one, each started once it spins (so Linux counts it runnable)."""

    def __enter__(self):
        self.spinning = []
        for _ in range((os.cpu_count() or 2) - 1):
            self.spinning.append(
                subprocess.Popen(
                    [sys.executable, "-c", "print('spinning', flush=True)\nwhile True: pass"],
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
            assert self.spinning[-1].stdout.readline() == "spinning\n"
        return self

    def __exit__(self, *exc):
        for process in self.spinning:
            process.kill()
            process.communicate()  # reaps it and closes its pipe


# the busy tests hold all CPUs but one: only where that is a few processes
FEW_CPUS = pytest.mark.skipif(not 2 <= (os.cpu_count() or 1) <= 4, reason="needs 2 to 4 CPUs")


@pytest.mark.skipif(usable_cpus() < 2, reason="needs two CPUs for two replicas")
@FEW_CPUS
def test_a_one_off_beside_a_busy_process_loads_a_replica_per_core(tiny_model, monkeypatch):
    """The real translator behind a one-off while other processes hold the cores: as many replicas as
    threads (a partner thread would be descheduled at every barrier), as the backend (and -v) says."""
    monkeypatch.setattr(ct2_backend, "ONE_OFF_CORES", "free")  # whatever this test process's environment says
    with _BusyMachine():
        engine = load_engine(str(tiny_model), backend="ctranslate2", threads=2, one_document=True)
    assert engine.backend.translator.num_translators == engine.backend.replicas == 2
    assert engine.backend.replica_threads == 1


# The child patches free_cores to "every core free" where the test needs an idle machine, so a stray
# process on the test machine cannot change the layout; a busy process is started for real.
_CLI_WITH_FREE_CORES = (
    "import sys\nfrom summarize_cli.model.backends import ct2_backend\n"
    "if sys.argv[1] == 'idle':\n    ct2_backend.free_cores = lambda wanted: wanted\n"
    "from summarize_cli.cli.app import main\nsys.argv = ['summarize', *sys.argv[2:]]\nmain()\n"
)


@pytest.mark.parametrize(
    ("settings", "machine", "inputs", "layout"),
    [
        ({}, "idle", 1, "1 replica of 2 threads"),
        ({}, "busy", 1, "2 replicas of 1 thread"),
        ({}, "idle", 2, "2 replicas of 1 thread"),
        ({"OMP_WAIT_POLICY": "PASSIVE"}, "idle", 1, "2 replicas of 1 thread"),
        ({"GOMP_SPINCOUNT": "0"}, "idle", 1, "2 replicas of 1 thread"),
        ({"GOMP_SPINCOUNT": "5k"}, "idle", 1, "1 replica of 2 threads"),
        ({"OMP_WAIT_POLICY": "ACTIVE"}, "busy", 1, "1 replica of 2 threads"),
        ({"OMP_WAIT_POLICY": "ACTIVE"}, "idle", 2, "2 replicas of 1 thread"),
        ({"CT2_FORCE_CPU_ISA": "AVX2"}, "idle", 2, "2 replicas of 1 thread"),  # the user's kernels, named
    ],
)
@pytest.mark.skipif(usable_cpus() < 2, reason="needs two CPUs for --threads 2")
def test_verbose_says_how_a_run_uses_the_cores(tiny_model, samples, settings, machine, inputs, layout):
    """A real process, as the user starts it: the wait policy is read when ctranslate2 is first imported."""
    if machine == "busy" and not 2 <= (os.cpu_count() or 1) <= 4:
        pytest.skip("needs 2 to 4 CPUs to hold all but one")
    ours = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "CT2_FORCE_CPU_ISA")  # what the run decides, unless told
    env = {k: v for k, v in os.environ.items() if k not in ours} | settings
    files = sorted(samples.glob("*.txt"))[:inputs]
    with _BusyMachine() if machine == "busy" else contextlib.nullcontext():
        done = subprocess.run(
            [sys.executable, "-c", _CLI_WITH_FREE_CORES, machine, "-m", str(tiny_model), "--backend", "ctranslate2"]
            + ["--threads", "2", "-v", "--no-cache", "--long", "truncate", *FAST, *map(str, files)],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
    assert done.returncode == 0, done.stderr
    described = next(line for line in done.stderr.splitlines() if line.startswith("model "))
    isa = env.get("CT2_FORCE_CPU_ISA", "").strip() or ("AVX512" if _has_avx512() else None)
    kernels = f", {isa} kernels" if isa else ""  # CTranslate2's own pick (AVX2) is not ours to name
    assert f"precision int8, {layout}{kernels}, batch size" in described, described


def test_verbose_names_no_layout_for_torch(tiny_model, samples):
    """Torch has no replicas: its -v line goes from the precision straight to the batch size."""
    done = subprocess.run(
        [sys.executable, "-m", "summarize_cli", "-m", str(tiny_model), "--backend", "torch", "-v", *FAST]
        + [str(sorted(samples.glob("*.txt"))[0])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    described = next(line for line in done.stderr.splitlines() if line.startswith("model "))
    assert "precision float32, batch size" in described, described


def test_two_conversions_at_once_convert_once_without_fcntl(tiny_model, tmp_path, monkeypatch):
    """The conversion lock is filelock's, not fcntl.flock (which Windows lacks: the first conversion
    crashed there): with fcntl unimportable, two loads at once still wait for one conversion."""
    import threading

    monkeypatch.setitem(sys.modules, "fcntl", None)  # `import fcntl` raises, as on Windows
    monkeypatch.setenv("SUMMARIZE_CACHE_DIR", str(tmp_path))
    real = ct2_backend._convert_into
    conversions = []

    def counted(*args, **kwargs):
        conversions.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(ct2_backend, "_convert_into", counted)
    engines, errors = [], []

    def load():
        try:
            engines.append(load_engine(str(tiny_model), backend="ctranslate2", device="cpu", compute_type="int8"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == [] and len(engines) == 2
    assert len(conversions) == 1
    assert [e.backend.name for e in engines] == ["ctranslate2", "ctranslate2"]


# a Hub id from the Hugging Face cache, read off the cache's layout: huggingface_hub stays unimported


def hub_layout(cache: Path, name: str, model: Path, commit: str = "0123abcd" * 5) -> Path:
    """`model` cached as huggingface_hub caches it: blobs, a snapshot of links to them, refs/main."""
    repo = cache / f"models--{name.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    for path in sorted(model.iterdir()):
        if path.is_file():
            blob = repo / "blobs" / f"blob-{path.name}"
            blob.write_bytes(path.read_bytes())
            (snapshot / path.name).symlink_to(os.path.relpath(blob, snapshot))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return snapshot


HUB_CACHE_SETTINGS = [
    {},
    {"HF_HOME": "{tmp}/home"},
    {"XDG_CACHE_HOME": "{tmp}/xdg"},
    {"HF_HOME": "{tmp}/home", "XDG_CACHE_HOME": "{tmp}/xdg"},
    {"HUGGINGFACE_HUB_CACHE": "{tmp}/legacy", "HF_HOME": "{tmp}/home"},
    {"HF_HUB_CACHE": "{tmp}/new", "HUGGINGFACE_HUB_CACHE": "{tmp}/legacy"},
    {"HF_HUB_CACHE": "~/hub-in-home"},
    {"HF_HOME": "$SOME_ROOT/hf", "SOME_ROOT": "{tmp}/root"},
]


@pytest.mark.parametrize("settings", HUB_CACHE_SETTINGS, ids=lambda s: "+".join(s) or "defaults")
def test_the_hub_cache_is_found_where_huggingface_hub_finds_it(settings, tmp_path, monkeypatch):
    from summarize_cli.model.source import hub_cache

    names = ("HF_HOME", "XDG_CACHE_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "SOME_ROOT")
    env = {k: v for k, v in os.environ.items() if k not in names}
    env.update({k: v.format(tmp=tmp_path) for k, v in settings.items()})
    env["HOME"] = str(tmp_path / "user")
    asked = "from huggingface_hub import constants; print(constants.HF_HUB_CACHE)"
    theirs = subprocess.run([sys.executable, "-c", asked], env=env, capture_output=True, text=True, check=True)
    for name in names:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert str(hub_cache()) == theirs.stdout.strip()
    assert str(hub_cache()).startswith(str(tmp_path))


def test_a_cached_hub_model_is_its_snapshot_without_importing_huggingface_hub(
    tiny_model, tmp_path, samples, monkeypatch
):
    from huggingface_hub import snapshot_download

    cache = tmp_path / "hf" / "hub"
    snapshot = hub_layout(cache, "someone/tiny-t5", tiny_model)
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    # the folder huggingface_hub names, and its commit as the revision that keys the conversion
    source = resolve_model("someone/tiny-t5", offline=True)
    theirs = snapshot_download("someone/tiny-t5", local_files_only=True, cache_dir=str(cache))
    assert source.path == snapshot == Path(theirs)
    assert source.revision == snapshot.name
    # a whole run, as users make it: the model by its Hub id, and no huggingface_hub in the process
    script = (  # main() exits through the exit handlers, without the interpreter's teardown
        "import atexit, sys\nfrom summarize_cli.cli.app import main\nsys.argv = ['summarize', *sys.argv[1:]]\n"
        "atexit.register(lambda: print('huggingface_hub' in sys.modules, file=sys.stderr))\nmain()\n"
    )
    article = str(samples / "harbour-ferry.txt")
    command = [sys.executable, "-c", script, "-m", "someone/tiny-t5", article, "-f", "jsonl", *FAST]
    env = {**os.environ, "SUMMARIZE_CACHE_DIR": str(tmp_path / "cache")}
    converting = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert (converting.returncode, converting.stderr) == (0, "True\n")  # converting takes transformers
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stderr) == (0, "False\n")
    record = json.loads(done.stdout)
    assert {**json.loads(converting.stdout), "seconds": 0} == {**record, "seconds": 0}
    assert (record["model"], record["method"]) == ("someone/tiny-t5", "abstractive") and record["summary"]


@pytest.mark.parametrize("broken", ["no weights", "no ref", "ref to a missing snapshot", "empty ref"])
def test_a_cache_entry_that_does_not_answer_goes_to_huggingface_hub(broken, tiny_model, tmp_path, monkeypatch):
    """What the layout cannot answer is asked of huggingface_hub, which says why in its own words."""
    import huggingface_hub

    snapshot = hub_layout(tmp_path / "hub", "someone/tiny-t5", tiny_model)
    repo = snapshot.parent.parent
    if broken == "no weights":
        (snapshot / "model.safetensors").unlink()
    elif broken == "no ref":
        (repo / "refs" / "main").unlink()
    elif broken == "ref to a missing snapshot":
        (repo / "refs" / "main").write_text("f" * 40)
    else:
        (repo / "refs" / "main").write_text("")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))  # read at its import
    asked = []
    real = huggingface_hub.snapshot_download
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda *a, **k: asked.append(a) or real(*a, **k))
    with pytest.raises(ModelLoadError) as failure:
        resolve_model("someone/tiny-t5", offline=True)
    assert asked == [("someone/tiny-t5",)]
    no_weights = "model 'someone/tiny-t5' has no PyTorch or safetensors weights in "
    expected = {
        "no weights": f"{no_weights}{snapshot}",
        "empty ref": f"{no_weights}{snapshot.parent}",  # huggingface_hub's own answer: snapshots/ itself
    }
    offline = "model 'someone/tiny-t5' is not in the Hugging Face cache and offline mode is on: download it"
    assert str(failure.value) == expected[broken] if broken in expected else str(failure.value).startswith(offline)


_CPUINFO = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu sse sse2 avx avx2 {}\nbugs\t\t:\n\n"
_ALL_AVX512 = "avx512f avx512dq avx512cd avx512bw avx512vl avx512_vnni"


@pytest.mark.parametrize(
    ("flags", "user", "machine", "chosen", "left"),
    [
        (_ALL_AVX512, None, "x86_64", "AVX512", "AVX512"),
        ("avx512f avx512dq avx512cd avx512vl", None, "x86_64", None, None),  # no avx512bw: CTranslate2 refuses
        ("", None, "x86_64", None, None),  # AVX2 only: CTranslate2's own choice
        (_ALL_AVX512, "AVX2", "x86_64", None, "AVX2"),  # the user's value wins
        (_ALL_AVX512, "GENERIC", "x86_64", None, "GENERIC"),
        (_ALL_AVX512, " ", "x86_64", "AVX512", "AVX512"),  # blank: CTranslate2 would reject " " as an ISA
        ("", " ", "x86_64", None, None),  # ... so it is removed, even where ours is not set
        (_ALL_AVX512, None, "aarch64", None, None),  # another architecture: nothing to force
    ],
)
def test_ctranslate2_runs_its_own_kernels_in_avx512_where_the_cpu_has_it(
    monkeypatch, tmp_path, flags, user, machine, chosen, left
):
    from summarize_cli.model import backends

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(_CPUINFO.format(flags) * 2, encoding="ascii")
    monkeypatch.setattr(backends, "_isa", None)
    monkeypatch.delenv("CT2_FORCE_CPU_ISA", raising=False)
    if user is not None:
        monkeypatch.setenv("CT2_FORCE_CPU_ISA", user)
    monkeypatch.setattr(backends.os, "uname", lambda: types.SimpleNamespace(machine=machine))
    assert backends.widest_kernels(cpuinfo) == chosen
    assert os.environ.get("CT2_FORCE_CPU_ISA") == left
    assert backends.widest_kernels(cpuinfo) == chosen  # decided once


def test_no_cpuinfo_leaves_ctranslate2_its_own_choice(monkeypatch, tmp_path):
    from summarize_cli.model import backends

    monkeypatch.setattr(backends, "_isa", None)
    monkeypatch.delenv("CT2_FORCE_CPU_ISA", raising=False)
    assert backends.widest_kernels(tmp_path / "missing") is None
    assert "CT2_FORCE_CPU_ISA" not in os.environ


def _has_avx512() -> bool:
    from summarize_cli.model.backends import _AVX512_FLAGS

    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return os.uname().machine == "x86_64" and _AVX512_FLAGS.issubset(flags)


@pytest.mark.parametrize("user", [None, "AVX2", "", " "])
def test_the_engine_selects_the_kernels_we_chose(tiny_model, user):
    """What CTranslate2 itself says it selected, when the real backend loads a model in a fresh process:
    AVX-512 on a CPU with it (AVX2 on one without), the user's own choice over ours; a blank value, which
    CTranslate2 would reject as an ISA (" "), counts as unset."""
    env = {k: v for k, v in os.environ.items() if k != "CT2_FORCE_CPU_ISA"} | {"CT2_VERBOSE": "1"}
    if user is not None:
        env["CT2_FORCE_CPU_ISA"] = user
    code = (
        "from summarize_cli.model.engine import load_engine\n"
        "from summarize_cli.model.settings import GenerationSettings\n"
        f"engine = load_engine({str(tiny_model)!r}, backend='ctranslate2', device='cpu')\n"
        "settings = GenerationSettings(num_beams=1, min_length=1, max_length=4)\n"
        "print(len(engine.backend.generate([[5, 6, 7, 1]], settings)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert (done.returncode, done.stdout) == (0, "1\n"), done.stderr
    selected = re.findall(r"Selected ISA: (\w+)", done.stderr)
    assert selected == ["AVX2" if user == "AVX2" or not _has_avx512() else "AVX512"], done.stderr
