"""Load a model for summarising: find it, pick the backend and device, build the tokenizer."""

from __future__ import annotations

from dataclasses import dataclass

from summarize_cli.backends import Backend
from summarize_cli.errors import SettingsError
from summarize_cli.model_source import ModelSource, resolve_model
from summarize_cli.tokenizer import TextTokenizer

BACKENDS = ("auto", "torch", "ctranslate2")


@dataclass
class Engine:
    """A loaded model: where it came from, the backend that runs it, and its tokenizer."""

    source: ModelSource
    backend: Backend
    tokenizer: TextTokenizer

    @property
    def default_batch_size(self) -> int:
        return 32 if self.backend.device.startswith("cuda") else 8

    def info(self) -> dict:
        return {
            "model": self.source.name,
            "model_revision": self.source.revision,
            "backend": self.backend.name,
            "device": self.backend.device,
            "precision": self.backend.precision,
        }


def load_engine(
    model: str,
    backend: str = "auto",
    device: str = "auto",
    dtype: str = "auto",
    offline: bool = False,
    threads: int | None = None,
) -> Engine:
    """Resolve `model` and load it on the chosen backend."""
    if backend not in BACKENDS:
        raise SettingsError(f"--backend must be one of {', '.join(BACKENDS)}")
    source = resolve_model(model, offline)
    tokenizer = TextTokenizer.from_dir(source.path, source.config)
    from summarize_cli.backends.torch_backend import TorchBackend

    runner = TorchBackend(source, device, dtype, threads, eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id)
    return Engine(source, runner, tokenizer)
