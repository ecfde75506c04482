"""The plan: which inputs a run takes, checked against where its results go, before any model loads."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from summarize_cli.errors import SummarizeError, UsageError
from summarize_cli.inputs.formats import DEFAULT_INCLUDE
from summarize_cli.inputs.sources import InputFile, discover, is_dataset
from summarize_cli.outputs.sinks import existing_sources, output_path
from summarize_cli.specs import InputSpec, OutputSpec
from summarize_cli.storage import RemotePath


@dataclass(frozen=True)
class Plan:
    """The inputs found, in order (files, URLs, stdin, or a problem each), and how many --skip-existing
    left out because their summary is already written."""

    items: list
    already_done: int = 0
    done_sources: tuple[str, ...] = ()  # --skip-existing with --output: the sources that file holds


def plan(reading: InputSpec, writing: OutputSpec) -> Plan:
    """Find the inputs, never inside the outputs; refuse outputs that would overwrite an input or each other;
    leave out what --skip-existing finds done."""
    skip = [p for p in (writing.output_dir, writing.output_file) if p is not None]  # never read what it writes
    items = list(discover(reading.inputs, reading.include, reading.exclude, skip=skip))
    if not items:
        include = reading.include or DEFAULT_INCLUDE
        covering = [str(p) for p in skip if _covers(p, reading.inputs)]
        why = (
            f"; the output folder {', '.join(covering)} is never read (summaries are written there): "
            "give -o a folder apart from the inputs"
            if covering
            else ""
        )
        raise SummarizeError(
            f"no files to summarise in {', '.join(reading.inputs)} (looked for {', '.join(include)}; see --include)"
            + why
        )
    if writing.output_file is not None:
        _check_output_file(items, writing.output_file)
        if writing.skip_existing:  # files here, each a source once; dataset rows as they are read
            done = Counter(existing_sources(writing.output_file))
            kept = []
            for item in items:
                if isinstance(item, InputFile) and not is_dataset(item) and done[item.display] > 0:
                    done[item.display] -= 1
                    continue
                kept.append(item)
            return Plan(kept, len(items) - len(kept), tuple(done.elements()))
    existing = 0
    if writing.output_dir is not None:
        _check_outputs(items, writing)
        if writing.skip_existing:
            items, existing = _without_existing(items, writing)
    return Plan(items, existing)


def _covers(output: Path, inputs: tuple[str, ...]) -> bool:
    """Whether a local output folder is an input folder, or inside or above one: files it may hide."""
    if isinstance(output, RemotePath):
        return False
    out = os.path.abspath(output)
    for name in inputs:
        if "://" in name or not os.path.isdir(name):
            continue
        folder = os.path.abspath(name)
        if out == folder or folder.startswith(out.rstrip(os.sep) + os.sep) or out.startswith(folder + os.sep):
            return True
    return False


def _check_outputs(items, writing) -> None:
    """Refuse, before any model work, outputs that would overwrite an input or each other (a dataset's rows
    are named only once read: the output folder checks those as they are written)."""

    files = [item for item in items if isinstance(item, InputFile)]
    inputs = {item.path.resolve() for item in files if item.path is not None}
    claimed: dict[Path, str] = {}
    for item in files:
        if is_dataset(item):
            continue
        target = output_path(writing.output_dir, item.relpath, writing.fmt, writing.extract).resolve()
        if target in inputs:
            raise UsageError("--output-dir", f"the summary of {item.display} would overwrite input {target}")
        if target in claimed:
            raise UsageError("--output-dir", f"{claimed[target]} and {item.display} would both be written to {target}")
        claimed[target] = item.display


def _check_output_file(items, output: Path) -> None:
    """--output must not be one of the inputs, through whatever path or link."""

    if not output.exists():
        return
    for item in items:
        if not isinstance(item, InputFile) or item.path is None or type(item.path) is not type(output):
            continue
        if item.path == output if isinstance(output, RemotePath) else os.path.samefile(item.path, output):
            raise UsageError("--output", f"{output} is also an input ({item.display}): it would be overwritten")


def _without_existing(items, writing) -> tuple[list, int]:
    """Drop inputs whose summary file is already there; return the rest and how many were dropped."""

    kept = [
        item
        for item in items
        if not (
            isinstance(item, InputFile)
            and item.path is not None
            and not is_dataset(item)
            and output_path(writing.output_dir, item.relpath, writing.fmt, writing.extract).exists()
        )
    ]
    return kept, len(items) - len(kept)
