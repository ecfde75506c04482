"""Backends run generate() on batches of token ids; torch and ctranslate2 share one small interface."""

from __future__ import annotations

import os
from typing import Protocol

from summarize_cli.settings import GenerationSettings


class Backend(Protocol):
    """Turns batches of input ids into summary ids (no special tokens), in the same order."""

    name: str
    device: str
    precision: str
    notes: list[str]

    def check(self, settings: GenerationSettings) -> list[str]:
        """Settings this backend cannot honour, as messages for the user."""
        ...

    def generate(self, inputs: list[list[int]], settings: GenerationSettings) -> list[list[int]]: ...


def strip_special(ids: list[int], eos_id: int | None, pad_id: int | None) -> list[int]:
    """Cut a generated sequence at its end token and drop padding."""
    out = []
    for token in ids:
        if token == eos_id:
            break
        if token != pad_id:
            out.append(token)
    return out


def physical_cores() -> int:
    """Physical cores this process may use (hyper-threads add little to matrix work)."""
    import psutil

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        usable = os.cpu_count() or 1
    physical = psutil.cpu_count(logical=False) or usable
    return max(1, min(usable, physical))
