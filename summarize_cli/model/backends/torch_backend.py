"""The PyTorch backend: AutoModelForSeq2SeqLM.generate() on padded batches."""

from __future__ import annotations

from summarize_cli.errors import ModelLoadError, SettingsError
from summarize_cli.model.backends import physical_cores, strip_special
from summarize_cli.model.settings import GenerationSettings
from summarize_cli.model.source import T5_FAMILY, ModelSource


def pick_device(requested: str) -> str:
    """auto: CUDA, then MPS, then CPU; an explicit device must exist."""
    import torch

    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SettingsError(
                f"--device {requested}: no CUDA device is available (this torch build: {torch.__version__})"
            )
        index = int(requested.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise SettingsError(f"--device {requested}: only {torch.cuda.device_count()} CUDA device(s) here")
    if requested == "mps" and not torch.backends.mps.is_available():
        raise SettingsError("--device mps: MPS is not available on this machine")
    return requested


def pick_dtype(requested: str, device: str, model_type: str) -> str:
    """auto: bfloat16 on a CUDA device that supports it, else float32; never float16 for T5."""
    import torch

    if requested == "float16" and model_type in T5_FAMILY:
        raise SettingsError(
            f"--dtype float16 is refused for {model_type} models: T5 activations overflow float16 "
            "and the summaries come out as NaN or garbage; use bfloat16 or float32"
        )
    if requested != "auto":
        return requested
    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return "bfloat16"
    return "float32"


class TorchBackend:
    """Holds the model on its device; generate() takes and returns plain id lists."""

    name = "torch"

    def __init__(
        self,
        source: ModelSource,
        device: str = "auto",
        dtype: str = "auto",
        threads: int | None = None,
        eos_id: int | None = None,
        pad_id: int = 0,
    ):
        import torch

        from summarize_cli.quiet import silence_transformers

        silence_transformers()
        from transformers import AutoModelForSeq2SeqLM

        if threads:
            torch.set_num_threads(threads)
        elif not torch.cuda.is_available():
            torch.set_num_threads(physical_cores())
        self.device = pick_device(device)
        self.precision = pick_dtype(dtype, self.device, source.model_type)
        self.notes: list[str] = []
        self._torch = torch
        try:
            model = AutoModelForSeq2SeqLM.from_pretrained(str(source.path), dtype=getattr(torch, self.precision))
        except (OSError, ValueError, KeyError) as exc:
            raise ModelLoadError(f"cannot load model '{source.name}' from {source.path}: {exc}") from None
        self.model = model.to(self.device).eval()
        # BART-style models force a first <s> and a last </s> at the length limit; neither counts toward
        # the summary's length, as in CTranslate2
        generation_config = self.model.generation_config
        self.forced_bos = getattr(generation_config, "forced_bos_token_id", None)
        self.forced_eos = getattr(generation_config, "forced_eos_token_id", None)
        self.eos_id = eos_id
        self.pad_id = pad_id

    def check(self, settings: GenerationSettings) -> list[str]:
        return []

    def generate(self, inputs: list[list[int]], settings: GenerationSettings) -> list[list[int]]:
        torch = self._torch
        width = max(len(ids) for ids in inputs)
        input_ids = torch.full((len(inputs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(inputs), width), dtype=torch.long)
        for row, ids in enumerate(inputs):
            input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            mask[row, : len(ids)] = 1
        kwargs = generate_kwargs(settings)
        if self.forced_bos is not None:
            kwargs["max_new_tokens"] += 1
            kwargs["min_new_tokens"] += 1
        if self.forced_eos is not None:
            kwargs["max_new_tokens"] += 1
        if settings.seed is not None:
            torch.manual_seed(settings.seed)
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device), **kwargs
            )
        skip = 2 if self.forced_bos is not None else 1  # the decoder start token, and a forced <s>
        return [strip_special(row[skip:], self.eos_id, self.pad_id) for row in output.tolist()]


def generate_kwargs(settings: GenerationSettings) -> dict:
    """Map our settings onto transformers' generate() without options it would warn about."""
    kwargs: dict = {
        "num_beams": settings.num_beams,
        "do_sample": settings.do_sample,
        "min_new_tokens": settings.min_length,
        "max_new_tokens": settings.max_length,
        "no_repeat_ngram_size": settings.no_repeat_ngram_size,
        # scores are log-probabilities again after constraints such as no-repeat, as in CTranslate2
        "renormalize_logits": True,
    }
    if settings.num_beams > 1:
        kwargs.update(length_penalty=settings.length_penalty, early_stopping=settings.early_stopping)
    if settings.do_sample:
        kwargs.update(temperature=settings.temperature, top_p=settings.top_p, top_k=settings.top_k)
    return kwargs
