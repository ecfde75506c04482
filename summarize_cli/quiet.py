"""Keep transformers' and huggingface_hub's progress bars and advisory warnings off the terminal."""

from __future__ import annotations

import os
import warnings


def quiet_environment() -> None:
    """Set before either library is imported."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HF_HUB_VERBOSITY", "error")


def silence_transformers() -> None:
    quiet_environment()
    warnings.filterwarnings("ignore", module=r"transformers(\.|$)")
    warnings.filterwarnings("ignore", module=r"torch(\.|$)")
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
