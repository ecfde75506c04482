"""Backends run generate() on batches of token ids; torch and ctranslate2 share one small interface."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Protocol

from summarize_cli.model.settings import GenerationSettings


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


def submit(backend: Backend, inputs: list[list[int]], settings: GenerationSettings) -> Callable[[], list[list[int]]]:
    """Start generate() on a batch; the returned call waits for its outputs. A backend that runs batches
    side by side (CTranslate2's replicas) queues them at once, so no core idles between two batches; any
    other computes the batch when it is first waited for."""
    queue = getattr(backend, "submit", None)
    if queue is not None:
        return queue(inputs, settings)
    outputs: list[list[list[int]]] = []

    def wait() -> list[list[int]]:
        if not outputs:
            outputs.append(backend.generate(inputs, settings))
        return outputs[0]

    return wait


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
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        usable = os.cpu_count() or 1
    physical = _linux_cores()
    if physical is None:
        import psutil  # 0.05 to 0.1 s to import, on a one-off's critical path: only where /sys cannot say

        physical = psutil.cpu_count(logical=False)
    return max(1, min(usable, physical or usable))


def _linux_cores() -> int | None:
    """Distinct cores in Linux's CPU topology (psutil's own first method, without importing psutil)."""
    import glob

    for pattern in ("core_cpus_list", "thread_siblings_list"):
        cores = set()
        for path in glob.glob(f"/sys/devices/system/cpu/cpu[0-9]*/topology/{pattern}"):
            try:
                with open(path, "rb") as f:
                    cores.add(f.read().strip())
            except OSError:
                continue
        if cores:
            return len(cores)
    return None
