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


def free_cores(
    wanted: int,
    cpus: int | None = None,
    loadavg: str | os.PathLike[str] = "/proc/loadavg",
    tasks: str | os.PathLike[str] = "/proc/self/task",
    looks: int = 8,
) -> int:
    """How many of `wanted` threads would find a CPU no other process is running on (at least 1): the
    machine's CPUs (`cpus`, all the kernel has, as /proc/loadavg counts over all of them) less its
    runnable threads that are not this process's own, at the best of up to `looks` snapshots 0.5 ms
    apart. One snapshot on an idle machine caught a kernel thread, or this process's own thread between
    two states, in one run of 5 to 20; a process that holds a core is in every one. Where /proc cannot
    say, every thread counts as free."""
    import time

    cpus = cpus or os.cpu_count() or wanted
    best = 0
    for look in range(looks):
        if look:
            time.sleep(0.0005)
        others = _other_runnable(loadavg, tasks)
        if others is None:
            return wanted
        best = max(best, cpus - others)
        if best >= wanted:
            break
    return max(1, min(wanted, best))


def _other_runnable(loadavg: str | os.PathLike[str], tasks: str | os.PathLike[str]) -> int | None:
    """Runnable threads not this process's own, this moment; None where /proc cannot say."""
    try:
        with open(loadavg, "rb") as f:
            runnable = int(f.read().split()[3].split(b"/")[0])
        own = 0
        for task in os.listdir(tasks):
            try:
                with open(os.path.join(tasks, task, "stat"), "rb") as f:
                    own += f.read().rsplit(b")", 1)[1].split()[0] == b"R"
            except FileNotFoundError:  # the thread ended
                continue
    except (OSError, ValueError, IndexError):
        return None
    return max(0, runnable - max(own, 1))  # the thread reading is running, whatever it read of itself


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


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_KEPT_BLOCKS = 64 * 1024 * 1024  # bytes: a batch's largest buffers (encoder attention) are well under this
# what keep_freed_memory asks of mallopt: the mmap threshold above the largest buffer, trimming well above it
# (in effect off), each heap keeping that much spare
_KEPT_SETTINGS = {_M_MMAP_THRESHOLD: _KEPT_BLOCKS, _M_TRIM_THRESHOLD: 4 * _KEPT_BLOCKS, _M_TOP_PAD: _KEPT_BLOCKS}
_USER_MALLOC_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_ARENA_MAX")


def keep_freed_memory() -> bool:
    """Let glibc's malloc keep and reuse the large blocks a CPU model frees, instead of handing each back to
    the kernel and faulting it in again page by page at its next use.

    A batch allocates and frees buffers of megabytes at every decoding step. glibc maps each one apart
    (above its mmap threshold, 128 KiB at the start) and unmaps it when freed; it raises the threshold only
    as blocks come back, and a replica thread's own heap is given back whenever it empties. The 16-document
    batch paid about 210,000 page faults, 0.6 s of kernel time on two cores. With the threshold fixed above
    the largest buffer, trimming off and each heap keeping 64 MiB spare, the blocks are reused: 83,000
    faults, 0.25 s. The peak resident memory is the same; what a run freed stays mapped until it exits.

    glibc on Linux only, once, and never over the user's own malloc settings (GLIBC_TUNABLES, MALLOC_*_
    variables) or another allocator (LD_PRELOAD). True when it was set."""
    global _kept
    if _kept is not None:
        return _kept
    _kept = False
    if any(name in os.environ for name in _USER_MALLOC_SETTINGS) or "malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    if os.environ.get("LD_PRELOAD", "").strip():
        return False
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return False
        import ctypes

        libc = ctypes.CDLL(None)
        _kept = all([libc.mallopt(parameter, value) == 1 for parameter, value in _KEPT_SETTINGS.items()])
    except (AttributeError, OSError, ValueError):  # not glibc (musl, macOS, Windows): its own allocator's way
        return False
    return _kept


_kept: bool | None = None


# What CTranslate2 checks before it runs its own kernels (softmax, layer norm, activations, quantizing
# the inputs of each int8 matrix product) in AVX-512 (cpu_info.cc, cpu_supports_avx512)
_AVX512_FLAGS = frozenset({"avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"})


def widest_kernels(cpuinfo: str | os.PathLike[str] = "/proc/cpuinfo") -> str | None:
    """Let CTranslate2 run its own kernels in AVX-512 where the CPU has it, as it does only when told
    (CT2_FORCE_CPU_ISA; it picks AVX2 otherwise, and calls AVX-512 experimental). Its matrix products are
    the math library's, which picks its own instructions; the rest are CTranslate2's. On a Xeon with
    AVX-512 the 16-document batch took 2.07 against 2.20 s at the engine alone. Set in the environment
    before ctranslate2 reads it (once, at its first use), on Linux x86-64 only, and never over the user's
    own value (a blank one counts as unset: CTranslate2 ignores it). The ISA set, or None."""
    global _isa
    if _isa is not None:
        return _isa or None
    _isa = ""
    if os.environ.get("CT2_FORCE_CPU_ISA", "").strip():
        return None
    os.environ.pop("CT2_FORCE_CPU_ISA", None)
    if not hasattr(os, "uname") or os.uname().machine != "x86_64":
        return None
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as f:
            flags = next((line.partition(":")[2].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return None
    if _AVX512_FLAGS.issubset(flags):
        os.environ["CT2_FORCE_CPU_ISA"] = _isa = "AVX512"
    return _isa or None


_isa: str | None = None
