"""Load a model for summarising: find it, pick the backend and device, build the tokenizer."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from summarize_cli.errors import ModelLoadError, SettingsError
from summarize_cli.model.backends import Backend
from summarize_cli.model.source import ModelSource, check_weights, resolve_model
from summarize_cli.model.tokenizer import TextTokenizer

BACKENDS = ("auto", "torch", "ctranslate2")
_STAND_INS: dict[str, Callable[..., Engine]] = {}


def register_engine(name: str, factory: Callable[..., Engine]) -> None:
    """Make `-m NAME` load `factory(**load_engine's options)` instead of a model: a seam for tests (a fake,
    exact engine) and for models that are not Hugging Face folders."""
    _STAND_INS[name] = factory


def unregister_engine(name: str) -> None:
    _STAND_INS.pop(name, None)


@dataclass
class Engine:
    """A loaded model: where it came from, the backend that runs it, and its tokenizer."""

    source: ModelSource
    backend: Backend
    tokenizer: TextTokenizer

    @property
    def default_batch_size(self) -> int:
        """On CPU, CTranslate2 splits a batch over its replicas (one per core) and queues the next batch
        behind it, so four documents per replica keep every core busy. Eight ran about 10% faster at the
        engine alone but raised its peak memory from 343 to 558 MB for the benchmark's 16 documents (each
        document's encoder attention takes 16 MB per layer at 512 tokens)."""
        if self.backend.device.startswith("cuda"):
            return 32
        if self.backend.name == "ctranslate2":
            return 4 * getattr(self.backend, "threads", 1)  # a replica per thread, or one replica of them all
        return 8

    def run_info(self, settings) -> dict:
        """What json records say about how their summary was made."""
        return {**self.info(), "settings": settings.as_dict()}

    def info(self) -> dict:
        return {
            "model": self.source.name,
            "model_revision": self.source.revision,
            "backend": self.backend.name,
            "device": self.backend.device,
            "precision": self.backend.precision,
            "method": "abstractive",
        }


def choose_backend(requested: str, source: ModelSource, device: str) -> str:
    """auto: ctranslate2 when installed and able to run this model on this device, else torch."""
    from summarize_cli.model.backends import ct2_backend

    if requested not in BACKENDS:
        raise SettingsError(f"--backend must be one of {', '.join(BACKENDS)}")
    if requested == "ctranslate2":
        if not ct2_backend.available():
            raise SettingsError("--backend ctranslate2 needs the ctranslate2 package: pip install ctranslate2")
        if not ct2_backend.supports(source):
            raise SettingsError(f"the ctranslate2 backend cannot run '{source.model_type}' models; use --backend torch")
        return requested
    if requested == "torch":
        return requested
    usable = ct2_backend.available() and ct2_backend.supports(source) and device != "mps"
    return "ctranslate2" if usable else "torch"


def load_engine(
    model: str,
    backend: str = "auto",
    device: str = "auto",
    dtype: str = "auto",
    compute_type: str = "auto",
    offline: bool = False,
    threads: int | None = None,
    on_status: Callable[[str], None] = lambda message: None,
    one_document: bool = False,
) -> Engine:
    """Resolve `model` and load it on the chosen backend; `on_status` hears what is happening.
    `one_document`: the run has a single input (CTranslate2 gives it one replica over the free cores)."""
    if model in _STAND_INS:
        return _STAND_INS[model](
            backend=backend, device=device, dtype=dtype, compute_type=compute_type, offline=offline, threads=threads
        )
    source = resolve_model(model, offline, on_status)
    check_weights(source.path)  # a damaged file is the file's fault: never a backend fallback or a marker
    chosen = choose_backend(backend, source, device)
    notes = []
    if chosen == "ctranslate2":
        try:
            engine = _load_ct2(source, device, compute_type, threads, on_status, one_document)
            if dtype != "auto":
                notes.append(f"--dtype {dtype} applies to the torch backend; ctranslate2 uses --compute-type")
        except ModelLoadError as exc:
            if backend != "auto":
                raise
            notes.append(f"{exc}; using the torch backend instead")
            chosen = "torch"
    if chosen == "torch":
        if compute_type != "auto":
            notes.append(f"--compute-type {compute_type} applies to the ctranslate2 backend; torch uses --dtype")
        engine = _load_torch(source, device, dtype, threads)
    engine.backend.notes.extend(notes)
    return engine


def _load_torch(source: ModelSource, device: str, dtype: str, threads: int | None) -> Engine:
    from summarize_cli.model.backends.torch_backend import TorchBackend

    tokenizer = TextTokenizer.from_dir(source.path, source.config)
    runner = TorchBackend(source, device, dtype, threads, eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id)
    return Engine(source, runner, tokenizer)


def _load_ct2(
    source: ModelSource,
    device: str,
    compute_type: str,
    threads: int | None,
    on_status: Callable[[str], None],
    one_document: bool = False,
) -> Engine:
    from summarize_cli.model import early
    from summarize_cli.model.backends import ct2_backend

    ct2_device, index, precision, folder = _ct2_plan(source, device, compute_type)
    marker = ct2_backend.unsupported_marker(folder)
    if marker.is_file():
        raise ModelLoadError(marker.read_text())
    notes = []
    if not ct2_backend.is_converted(folder):
        on_status(f"Converting {source.name} for CTranslate2 ({precision}), once ...")
        try:
            ct2_backend.convert(source, precision, folder)
        except ct2_backend.ConversionFailed as exc:
            with contextlib.suppress(OSError):  # remembered, so later runs go straight to the torch backend
                marker.write_text(str(exc))
            raise
        except OSError as exc:  # the cache folder is read-only or full: convert for this run only
            notes.append(
                f"cannot write the model cache in {folder.parent} ({exc.strerror or exc}); "
                f"converted {source.name} into a temporary folder for this run only"
            )
            folder = _temporary_folder() / folder.name
            try:
                ct2_backend.convert(source, precision, folder)
            except OSError as again:
                raise ModelLoadError(f"cannot convert '{source.name}' for CTranslate2: {again}") from None
        on_status(f"Loading {source.name} ...")
    request = (folder, ct2_device, index, precision, threads, one_document)
    translator = early.take(request) or ct2_backend.Translator(*request)  # loading from here on
    tokenizer_file = folder / "tokenizer.json"
    tokenizer = TextTokenizer.from_dir(source.path, source.config, tokenizer_file if tokenizer_file.is_file() else None)
    runner = ct2_backend.CTranslate2Backend(
        translator,
        tokenizer.id_to_token,
        tokenizer.token_to_id,
        tokenizer.eos_id,
        tokenizer.pad_id,
        source.generation_config.get("forced_bos_token_id", source.config.get("forced_bos_token_id")),
    )
    runner.notes.extend(notes)
    return Engine(source, runner, tokenizer)


def _ct2_plan(source: ModelSource, device: str, compute_type: str) -> tuple[str, int, str, Path]:
    """The device, its index, the precision and the conversion's folder for this model."""
    from summarize_cli.model.backends import ct2_backend

    ct2_device, index = ct2_backend.pick_device(device)
    precision = ct2_backend.pick_compute_type(compute_type, ct2_device, source.model_type)
    return ct2_device, index, precision, ct2_backend.converted_dir(source, precision)


def load_early(
    model: str,
    backend: str = "auto",
    device: str = "auto",
    compute_type: str = "auto",
    threads: int | None = None,
    one_document: bool = False,
) -> tuple[tuple, object] | None:
    """Start the CTranslate2 load that load_engine with these options would start, when nothing comes
    before it (the model on disk or in the Hugging Face cache, converted, CTranslate2 the backend it would
    choose): (load_engine's request, the loading Translator) for summarize_cli.model.early, else None."""
    from summarize_cli.model.backends import ct2_backend
    from summarize_cli.model.source import model_at_hand

    source = None if model in _STAND_INS else model_at_hand(model)
    if source is None:
        return None  # a stand-in, or a model that is not at hand: load_engine says what it is
    if choose_backend(backend, source, device) != "ctranslate2":
        return None
    ct2_device, index, precision, folder = _ct2_plan(source, device, compute_type)
    if not ct2_backend.is_converted(folder) or ct2_backend.unsupported_marker(folder).is_file():
        return None
    request = (folder, ct2_device, index, precision, threads, one_document)
    return request, ct2_backend.Translator(*request)


def _temporary_folder() -> Path:
    """A folder removed when the process exits, for a conversion the cache could not keep."""
    import atexit
    import shutil
    import tempfile

    from summarize_cli import worker

    folder = Path(tempfile.mkdtemp(prefix="summarize-ct2-"))
    worker.leave_behind_nothing(folder)
    atexit.register(shutil.rmtree, folder, True)
    return folder
