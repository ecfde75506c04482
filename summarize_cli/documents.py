"""The values that flow through the pipeline: documents in, results and problems out."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Document:
    """One text to summarise. `source` names it in output; `relpath` places it under --output-dir."""

    source: str
    text: str
    relpath: Path | None = None
    path: Path | None = None
    warnings: list[str] = field(default_factory=list)  # what reading it said (a parser's complaints)
    final_url: str | None = None  # a URL's address after redirects
    language: str | None = None  # ISO 639-1, detected (or declared with --language)
    language_confidence: float | None = None
    routable: bool = False  # the language is sure enough to choose a model by


@dataclass
class Problem:
    """An input that was skipped (`skipped=True`) or failed, with a one-line reason."""

    source: str
    reason: str
    skipped: bool = False


@dataclass
class Result:
    """The summary of one document and how it was made."""

    document: Document
    summary: str
    input_tokens: int
    chunks: int
    seconds: float
    truncated: bool = False
    warnings: list[str] = field(default_factory=list)
    unknown_share: float = 0.0
    trimmed: bool = False  # cut back to its last complete sentence (the model stopped at --max-length)
    passthrough: bool = False  # already shorter than a summary would be: the text itself, no model
    sections: list[str] = field(default_factory=list)  # a chunked document's per-chunk summaries, in order
    sources: list[str] | None = None  # --combine: the inputs this one summary was made from
    cached: bool = False
    run_info: dict | None = None
    fallback: bool = False  # made extractively because the model could not be had (--method auto)
    sent_tokens: int = 0  # --long truncate: the tokens the model was given (0: all input_tokens); an int
    # in every row, so Ray Data's blocks keep one schema

    @property
    def source(self) -> str:
        return self.document.source


class Idle:
    """In a document stream: no further input is ready yet (a live feed paused). Stages pass it on; the
    summarizer and Ray's batcher take it as the cue to work on what has arrived instead of waiting."""

    def __repr__(self) -> str:
        return "IDLE"


IDLE = Idle()
