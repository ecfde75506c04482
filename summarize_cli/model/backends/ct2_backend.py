"""The CTranslate2 backend: the model converted once into a cache, then run without torch or transformers."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

from summarize_cli.errors import ModelLoadError, SettingsError
from summarize_cli.model.backends import (
    free_cores,
    keep_freed_memory,
    physical_cores,
    strip_special,
    widest_kernels,
)
from summarize_cli.model.settings import GenerationSettings
from summarize_cli.model.source import T5_FAMILY, ModelSource

# CTranslate2's OpenMP (libgomp in the Linux wheels, configured when ctranslate2 is first imported) spins
# a waiting thread up to 300,000 times at every barrier, and a replica of several threads meets at one
# after every operation of every decoding step. When other processes hold the cores, the partner thread
# is descheduled and the spinning one burns its slices (three one-offs side by side took up to 8 s each
# instead of 1); waiting passively instead puts a thread to sleep at every barrier, which cost a lone
# one-off more than its second core gave (1.23 s on two threads, 0.70 s on one). So, unless the user set
# either, a waiting thread spins briefly and then sleeps, and a one-off takes only the cores no other
# process is running on (see Translator); batches keep replicas of one thread, which never wait.
SHORT_SPIN = "10000"  # about a few microseconds to a fraction of a millisecond, with the CPU's pause


_SPACE = "[ \t\n\v\f\r]*"  # C's isspace, not Unicode's
_SPIN_COUNT = re.compile(
    f"{_SPACE}(?:(infinite|infinity)|([+-]?)([0-9]+){_SPACE}([kmgt])?){_SPACE}", re.IGNORECASE | re.ASCII
)
_ALL_SPINS = 2**64 - 1  # libgomp's ~0ULL: spin for ever


def spin_count(value: str) -> int | None:
    """GOMP_SPINCOUNT as libgomp reads it (strtoull's number, with an optional k, M, G or T, or
    "infinite"), or None for a value it rejects (it warns, and spins as long as its default)."""
    found = _SPIN_COUNT.fullmatch(value)
    if found is None:
        return None
    if found[1]:
        return _ALL_SPINS
    number = int(found[3])
    if number > _ALL_SPINS:  # strtoull: out of range
        return None
    if found[2] == "-":  # strtoull negates in unsigned arithmetic: -1 is every spin there is
        number = (_ALL_SPINS + 1 - number) & _ALL_SPINS
    return min(_ALL_SPINS, number * 1000 ** ("_kmgt".index(found[4].lower()) if found[4] else 0))


def one_off_cores(policy: str, spins: str) -> str:
    """How a one-off may spread over the cores, by the user's OpenMP settings (blank: unset): "every"
    (ACTIVE: one replica of every core), "free" (threads that spin briefly: one replica of the cores free
    when it starts) or "one" (threads that sleep at every barrier, PASSIVE or a spin count of 0, or a
    value libgomp rejects, which spins as long as its default: replicas of one thread)."""
    policy, count = policy.strip().upper(), spin_count(spins) if spins.strip() else int(SHORT_SPIN)
    if count is None or count == 0 or policy not in ("", "ACTIVE"):
        return "one"
    return "every" if policy == "ACTIVE" else "free"


for _name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
    if not os.environ.get(_name, "x").strip():  # blank: libgomp warns that it is invalid, then ignores it
        del os.environ[_name]
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:  # libgomp: 300,000 spins
    os.environ["GOMP_SPINCOUNT"] = SHORT_SPIN
ONE_OFF_CORES = one_off_cores(os.environ.get("OMP_WAIT_POLICY", ""), os.environ.get("GOMP_SPINCOUNT", ""))
widest_kernels()  # before ctranslate2 reads CT2_FORCE_CPU_ISA

# model_type values whose encoder-decoder CTranslate2's Transformers converter handles
SUPPORTED_MODEL_TYPES = {"t5", "mt5", "umt5", "bart", "mbart", "pegasus", "marian", "m2m_100"}
_DONE = "summarize-cli.json"


def available() -> bool:
    try:
        _import_engine()
    except ImportError:
        return False
    return True


def _import_engine() -> None:
    """Import ctranslate2 without importing asyncio. ctranslate2 imports asyncio at its top for a generator
    method this tool never calls, and asyncio (with ssl and socket) was 20 ms of every run's start. While
    ctranslate2 is imported, a stand-in answers for asyncio; it is gone from sys.modules afterwards, and
    ctranslate2's own reference forwards every attribute to the real module, imported at its first use.
    (importlib's LazyLoader cannot do this: the next `import asyncio` statement would load it.)"""
    if "ctranslate2" in sys.modules or "asyncio" in sys.modules:
        import ctranslate2  # noqa: F401

        return
    import types

    stand_in = types.ModuleType("asyncio", "asyncio, imported at its first use (see ct2_backend)")
    stand_in.__getattr__ = _real_asyncio  # PEP 562: only names the stand-in lacks come here
    sys.modules["asyncio"] = stand_in
    try:
        import ctranslate2  # noqa: F401
    finally:
        if sys.modules.get("asyncio") is stand_in:
            del sys.modules["asyncio"]


def _real_asyncio(name: str):
    import importlib

    return getattr(importlib.import_module("asyncio"), name)


def supports(source: ModelSource) -> bool:
    return source.model_type in SUPPORTED_MODEL_TYPES


def cuda_devices() -> int:
    import ctranslate2

    try:
        return ctranslate2.get_cuda_device_count()
    except RuntimeError:
        return 0


def pick_device(requested: str) -> tuple[str, int]:
    """auto: CUDA when CTranslate2 sees a GPU, else CPU. Returns (device, index)."""
    if requested == "auto":
        return ("cuda", 0) if cuda_devices() else ("cpu", 0)
    if requested == "cpu":
        return "cpu", 0
    if requested.startswith("cuda"):
        index = int(requested.partition(":")[2] or 0)
        if index >= cuda_devices():
            raise SettingsError(f"--device {requested}: CTranslate2 sees {cuda_devices()} CUDA device(s) here")
        return "cuda", index
    raise SettingsError(f"--device {requested} is not supported by the ctranslate2 backend (use --backend torch)")


def pick_compute_type(requested: str, device: str, model_type: str) -> str:
    """auto: int8 on CPU; bfloat16 on CUDA when supported, else int8_float32. Never float16 for T5."""
    import ctranslate2

    if "float16" in requested and "bfloat16" not in requested and model_type in T5_FAMILY:
        raise SettingsError(f"--compute-type {requested} is refused for {model_type}: T5 overflows float16")
    supported = ctranslate2.get_supported_compute_types(device)
    if requested == "auto":
        if device == "cpu":
            return "int8" if "int8" in supported else "float32"
        return "bfloat16" if "bfloat16" in supported else "int8_float32"
    if requested not in supported:
        raise SettingsError(
            f"--compute-type {requested} is not supported on {device} here (supported: {', '.join(sorted(supported))})"
        )
    return requested


def cache_root() -> Path:
    from summarize_cli.dirs import cache_dir

    return cache_dir() / "ctranslate2"


def converted_dir(source: ModelSource, compute_type: str) -> Path:
    """The conversion's folder in the cache: named by the Hub id, or by a local folder's own path, so that
    `-m model`, `-m ./model` and `-m /abs/model` share one conversion."""
    label = str(source.path) if source.local else source.name
    slug = re.sub(r"[^A-Za-z0-9._-]+", "--", label.strip("/"))[-80:]
    return cache_root() / f"{slug}-{source.revision[:16]}-{compute_type}"


def convert(source: ModelSource, compute_type: str, target: Path) -> None:
    """Convert into a temporary folder beside `target`, then rename: a half-done conversion is never used.

    A lock file serialises processes converting the same model (two runs at once wait for one conversion);
    whoever holds it removes what an interrupted conversion left. OSError: the folder cannot be written.
    Only a genuine failure of the converter marks the model unsupported; a signal (a BaseException) never.
    """
    import shutil
    import tempfile

    from summarize_cli import worker

    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / f"{target.name}.lock"):
        if is_converted(target):  # another process converted it while this one waited
            return
        for leftover in target.parent.glob(f".{target.name}.*"):
            if leftover.is_dir():  # an interrupted conversion's temporary folder: nobody else is converting
                shutil.rmtree(leftover, ignore_errors=True)
        if target.exists() and not is_converted(target):
            shutil.rmtree(target, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        worker.leave_behind_nothing(work)
        try:
            _convert_into(source, compute_type, work / "model")
            os.rename(work / "model", target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
            worker.done_with(work)


def _convert_into(source: ModelSource, compute_type: str, output: Path) -> None:
    from summarize_cli.quiet import silence_transformers

    silence_transformers()
    try:
        from ctranslate2.converters import TransformersConverter

        _restore_removed_config_fields()
        TransformersConverter(str(source.path), low_cpu_mem_usage=True).convert(
            str(output), quantization=compute_type, force=True
        )
        _plain_vocabularies(output)
        if not (source.path / "tokenizer.json").is_file():
            from summarize_cli.model.tokenizer import TextTokenizer

            TextTokenizer.from_dir(source.path, source.config).save(output)
    except OSError:
        raise
    except Exception as exc:  # noqa: BLE001 - the converter fails in many ways on models it cannot handle
        if type(exc).__name__ == "SafetensorError":  # the file is damaged, not the model unconvertible
            raise ModelLoadError(
                f"cannot read the weights of '{source.name}': {exc} (copy or download the model again)"
            ) from None
        message = f"CTranslate2 cannot convert '{source.name}': {type(exc).__name__}: {exc}"
        raise ConversionFailed(message) from None
    (output / _DONE).write_text(
        json.dumps({"model": source.name, "revision": source.revision, "compute_type": compute_type})
    )


def _plain_vocabularies(folder: Path) -> None:
    """Each vocabulary the converter wrote as JSON, rewritten as CTranslate2's other format, a token per
    line, which it loads in half the time (17 ms less for t5-small's 32,000 tokens, at every run's start).
    Kept as JSON when a token could not stand on a line of its own: empty, or with a line break or
    whitespace at either end."""
    for path in folder.glob("*vocabulary.json"):
        tokens = json.loads(path.read_text(encoding="utf-8"))
        if not all(isinstance(t, str) and t and t == t.strip() and "\n" not in t and "\r" not in t for t in tokens):
            continue
        plain = path.with_suffix(".txt")
        plain.write_text("".join(f"{token}\n" for token in tokens), encoding="utf-8", newline="\n")
        path.unlink()


class ConversionFailed(ModelLoadError):
    """The converter itself cannot handle this model: worth remembering, so later runs skip it."""


@contextlib.contextmanager
def _locked(path: Path):
    """filelock, not fcntl.flock: the same lock on Windows (huggingface_hub already depends on it)."""
    from filelock import FileLock

    with FileLock(path, thread_local=False):
        yield


def _restore_removed_config_fields() -> None:
    """transformers 5 dropped `normalize_before` and `normalize_embedding` from the BART family's configs;
    CTranslate2's converter still reads them. BART is post-norm; mBART and Pegasus are pre-norm, and Pegasus
    has no embedding layer norm (as their torch modules are built)."""
    import transformers

    fields = (
        ("BartConfig", "normalize_before", False),
        ("MBartConfig", "normalize_before", True),
        ("PegasusConfig", "normalize_before", True),
        ("PegasusConfig", "normalize_embedding", False),
    )
    for name, field, value in fields:
        config_class = getattr(transformers, name, None)
        if config_class is not None and not hasattr(config_class, field):
            setattr(config_class, field, value)


def unsupported_marker(target: Path) -> Path:
    import ctranslate2

    return target.with_name(f"{target.name}.unsupported-ct2-{ctranslate2.__version__}")


def is_converted(folder: Path) -> bool:
    return (folder / _DONE).is_file() and (folder / "model.bin").is_file()


class Translator:
    """A ctranslate2.Translator, loading from when it is made, and how it is laid out on the device; made
    apart from the backend so it loads (native code, without the GIL) while the tokenizer loads.

    Everything in Python happens here, in the caller's thread, before the load starts: a loading thread
    that still had Python to run waited for the GIL while the tokenizer's load held it (50 ms, in one
    native call), and the two loads ran one after the other (110 ms where they take 50 side by side)."""

    def __init__(
        self, folder: Path, device: str, device_index: int, compute_type: str, threads: int | None, one_document: bool
    ):
        import functools

        import ctranslate2

        from summarize_cli import worker

        self.folder = folder
        self.device = device if device == "cpu" else f"cuda:{device_index}"
        self.precision = compute_type
        self.threads = threads or physical_cores()
        # On CPU a batch runs a replica of one thread per core: its sub-batches side by side, no barriers.
        # A one-off (its chunks, then the reduce pass) runs one replica over the cores no other process is
        # running on, its threads spinning briefly at each barrier: the truncated article took 0.45 s on
        # two such threads against 0.70 s on one. With another process on the cores, the partner thread
        # is descheduled at every barrier, so a one-off that finds no two cores free, or whose threads
        # must sleep at barriers (ONE_OFF_CORES "one"), takes replicas of one thread like a batch.
        replica_cores = 1
        if device == "cpu" and one_document and ONE_OFF_CORES != "one":
            replica_cores = self.threads if ONE_OFF_CORES == "every" else free_cores(self.threads)
        self.replicas = self.threads if device == "cpu" and replica_cores == 1 else 1
        intra = replica_cores if device == "cpu" else 0
        self.replica_threads = intra or None  # None: the device's own
        if device == "cpu":
            keep_freed_memory()
        self._loading = worker.in_background(
            functools.partial(
                ctranslate2.Translator,
                str(folder),
                device=device,
                device_index=device_index,
                compute_type=compute_type,
                intra_threads=intra,
                inter_threads=self.replicas,
            )
        )

    def loaded(self):
        """The ctranslate2.Translator, once its load is done."""
        try:
            return self._loading()
        except (RuntimeError, ValueError) as exc:
            raise ModelLoadError(f"cannot load the converted model in {self.folder}: {exc}") from None


class CTranslate2Backend:
    """Runs a converted model with ctranslate2.Translator; generate() takes and returns id lists."""

    name = "ctranslate2"

    def __init__(
        self,
        translator: Translator,
        id_to_token: Callable[[int], str],
        token_to_id: Callable[[str], int | None],
        eos_id: int | None,
        pad_id: int,
        forced_bos_id: int | None = None,
    ):
        import ctranslate2

        self._ct2 = ctranslate2
        self.translator = translator.loaded()
        self.device, self.precision = translator.device, translator.precision
        self.threads, self.replicas, self.replica_threads = (
            translator.threads,
            translator.replicas,
            translator.replica_threads,
        )
        # the kernels CTranslate2 was told to run (CT2_FORCE_CPU_ISA, ours or the user's); unsaid, its own pick
        self.kernels = os.environ.get("CT2_FORCE_CPU_ISA", "").strip() or None if self.device == "cpu" else None
        self.notes: list[str] = []
        self._id_to_token = id_to_token
        self._token_to_id = token_to_id
        self.eos_id, self.pad_id = eos_id, pad_id
        self.forced_bos_id = forced_bos_id  # BART-style: every summary starts with <s>, as transformers forces

    def check(self, settings: GenerationSettings) -> list[str]:
        """What this backend cannot honour, said instead of silently ignored."""
        notes = []
        if settings.do_sample and settings.num_beams > 1:
            notes.append(
                f"the ctranslate2 backend samples with one beam; --num-beams {settings.num_beams} "
                "is not used with --do-sample (use --backend torch for beam sampling)"
            )
        if not settings.early_stopping and settings.num_beams > 1:
            notes.append(
                "the ctranslate2 backend always stops beam search once all beams are finished (early_stopping=True)"
            )
        return notes

    def generate(self, inputs: list[list[int]], settings: GenerationSettings) -> list[list[int]]:
        source, options, skip = self._request(inputs, settings)
        if settings.seed is not None:
            self._ct2.set_random_seed(settings.seed)
        return [self._summary_ids(r, skip) for r in self.translator.translate_batch(source, **options)]

    def submit(self, inputs: list[list[int]], settings: GenerationSettings) -> Callable[[], list[list[int]]]:
        """Queue the batch on the replicas and return a call that waits for it. Sampling runs at once, a
        batch at a time: the random stream is then consumed in one order, so a seed repeats its summaries."""
        if settings.do_sample:
            outputs = self.generate(inputs, settings)
            return lambda: outputs
        source, options, skip = self._request(inputs, settings)
        pending = self.translator.translate_batch(source, asynchronous=True, **options)
        return lambda: [self._summary_ids(r.result(), skip) for r in pending]

    def _request(self, inputs: list[list[int]], settings: GenerationSettings) -> tuple[list, dict, int]:
        """The batch as tokens, translate_batch's options, and how many forced tokens lead each output."""
        source = [[self._id_to_token(i) for i in ids] for ids in inputs]
        options = {
            "beam_size": 1 if settings.do_sample else settings.num_beams,
            "length_penalty": settings.length_penalty,
            "no_repeat_ngram_size": settings.no_repeat_ngram_size,
            "min_decoding_length": settings.min_length,
            "max_decoding_length": settings.max_length,
            "max_input_length": 0,
            "max_batch_size": -(-len(inputs) // self.replicas),
        }
        if settings.do_sample:
            options.update(
                sampling_topk=settings.top_k, sampling_topp=settings.top_p, sampling_temperature=settings.temperature
            )
        skip = 0
        if self.forced_bos_id is not None:
            options["target_prefix"] = [[self._id_to_token(self.forced_bos_id)]] * len(source)
            options["max_decoding_length"] += 1
            options["min_decoding_length"] += 1
            skip = 1
        return source, options, skip

    def _summary_ids(self, result, skip: int) -> list[int]:
        return strip_special([self._token_to_id(t) for t in result.hypotheses[0][skip:]], self.eos_id, self.pad_id)
