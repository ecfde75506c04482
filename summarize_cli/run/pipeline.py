"""The core: documents in, results out, in input order; long documents are map-reduced."""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from summarize_cli.documents import IDLE, Document, Problem, Result
from summarize_cli.errors import SettingsError
from summarize_cli.inputs.language import detect_language
from summarize_cli.model.backends import Backend, submit
from summarize_cli.model.settings import GenerationSettings
from summarize_cli.model.tokenizer import TextTokenizer
from summarize_cli.outputs.report import UNKNOWN_WARNING_SHARE
from summarize_cli.run.batcher import length_batches
from summarize_cli.run.chunker import split_tokens
from summarize_cli.sentences import trim_to_sentence
from summarize_cli.specs import LONG_MODES

# a word, or one Han/kana character (a word's worth of meaning in Chinese and Japanese text)
_IDEOGRAPH = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_TEXT_UNIT = f"[{_IDEOGRAPH}]|[^\\s{_IDEOGRAPH}]+"  # compiled at its first use (re keeps it): 4 ms


def text_units(text: str, limit: int) -> int:
    """How long the text itself is, in words (each Han or kana character one), counting up to `limit`.

    Token ids alone undercount text the tokenizer cannot read: 7,800 unknown Chinese characters are one
    unknown token, and were once kept whole as "already shorter than a summary"."""
    units = 0
    for _ in re.finditer(_TEXT_UNIT, text):
        units += 1
        if units >= limit:
            break
    return units


@dataclass
class _Work:
    """One document on its way through the map-reduce rounds."""

    document: Document
    input_tokens: int
    pieces: list[list[int]]
    chunks: int
    outputs: list[list[int] | None] = field(default_factory=list)
    seconds: float = 0.0
    truncated: bool = False
    warnings: list[str] = field(default_factory=list)
    summary: str | None = None
    unknown_share: float = 0.0
    result: Result | None = None  # set when the summary is done
    sections: list[str] = field(default_factory=list)  # the map step's summaries, when there were chunks
    trimmed: bool = False
    sent_tokens: int = 0  # --long truncate: the budget the text was cut to

    def start_round(self, pieces: list[list[int]]) -> None:
        self.pieces = pieces
        self.outputs = [None] * len(pieces)


class _Window:
    """A window's documents (and the problems riding along) in input order, with its batches in flight."""

    def __init__(self, slots: list[_Work | Problem | Result]):
        self.slots: list = slots
        self.emitted = 0
        self.batches: deque[tuple[list[tuple[_Work, int]], Callable[[], list[list[int]]], float]] = deque()

    def ready(self) -> Iterator[Result | Problem]:
        """What is done at the front, in order; each slot is let go once yielded."""
        while self.emitted < len(self.slots):
            slot = self.slots[self.emitted]
            if isinstance(slot, _Work):
                if slot.result is None:
                    return
                yield slot.result
            else:
                yield slot
            self.slots[self.emitted] = None  # let the text go
            self.emitted += 1


def windows(items: Iterable, size: int, first: int | None = None) -> Iterator[tuple[list, bool]]:
    """The stream in lists of `size` documents (problems and earlier results ride along in place), each
    with whether the feed paused (IDLE) after it: a paused feed's partial window goes on at once. The
    first list holds `first` documents, when given."""
    window: list = []
    documents = 0
    for item in items:
        if item is IDLE:
            yield window, True  # even empty: what is in flight elsewhere (Ray) is awaited
            window, documents = [], 0
            continue
        window.append(item)
        documents += isinstance(item, Document)
        if documents >= (first or size):
            yield window, False
            window, documents, first = [], 0, None
    if window:
        yield window, False


class Summarizer:
    """Runs documents through the backend in length-sorted batches and yields results in input order."""

    def __init__(
        self,
        backend: Backend,
        tokenizer: TextTokenizer,
        settings: GenerationSettings,
        batch_size: int = 8,
        long_mode: str = "chunk",
        window: int | None = None,
        force: bool = False,
        languages: bool = True,
    ):
        if long_mode not in LONG_MODES:
            raise ValueError(f"long_mode must be one of {LONG_MODES}")
        self.backend = backend
        self.tokenizer = tokenizer
        self.settings = settings
        self.batch_size = max(1, batch_size)
        self.long_mode = long_mode
        self.force = force  # summarise even a text shorter than a summary would be
        self.languages = languages  # the records show each document's language
        self.window = window or max(4 * self.batch_size, 16)
        self._last_done = 0.0
        self.prefix_ids = tokenizer.encode(settings.prefix).ids if settings.prefix else []
        self.budget = tokenizer.model_max_length - tokenizer.special_count - len(self.prefix_ids)
        if self.budget < 16:
            raise SettingsError(
                f"--prefix takes {len(self.prefix_ids)} of the model's {tokenizer.model_max_length} input tokens, "
                "leaving too few for the text"
            )

    def summarize(self, items: Iterable[Document | Problem | Result]) -> Iterator[Result | Problem]:
        """Yield a Result or Problem for every item, in order, as soon as it and all before it are done.
        Problems, and Results made earlier (the result cache's), pass through in their place; IDLE (a live
        feed paused) runs what has arrived at once, without waiting for a full window.

        A full window's batches are queued before the previous window is finished, so a backend that runs
        batches side by side (CTranslate2's replicas) never idles at a window's last batch. The first
        window is one batch: the model starts on it while the rest of the documents are read, where a
        whole first window (32 documents by default) kept it waiting for all of them."""
        in_flight: deque[_Window] = deque()
        for window, paused in windows(items, self.window, first=self.batch_size):
            if window:
                in_flight.append(self._open(window))
            while in_flight and (paused or len(in_flight) > 1):
                yield from self._finish(in_flight.popleft())
        while in_flight:
            yield from self._finish(in_flight.popleft())

    def _open(self, window: list[Document | Problem | Result]) -> _Window:
        """Encode and chunk the window's documents and queue their first round; then, while the model
        generates, detect the languages their records give (a document chunked by its sentences was
        detected before it was chunked). Where the records show none (text, Markdown), only a document
        the model cannot read is detected: the closing warning names its language for a route. Each
        detection takes CPU the model's replicas would have had (a one-off's 35 ms, loading the detector)."""
        opened = _Window([self._prepare(i) if isinstance(i, Document) else i for i in window])
        self._submit(opened)
        for slot in opened.slots:
            if isinstance(slot, (_Work, Result)) and (self.languages or slot.unknown_share > UNKNOWN_WARNING_SHARE):
                detect_language(slot.document)
        return opened

    def _submit(self, window: _Window) -> None:
        """Queue every piece still to summarise, in batches of similar length."""
        tasks = [
            (work, k)
            for work in window.slots
            if isinstance(work, _Work) and work.result is None
            for k in range(len(work.pieces))
        ]
        for batch in length_batches(tasks, self.batch_size, lambda t: len(t[0].pieces[t[1]])):
            inputs = [self.tokenizer.wrap(self.prefix_ids, work.pieces[k]) for work, k in batch]
            window.batches.append((batch, submit(self.backend, inputs, self.settings), time.perf_counter()))

    def _finish(self, window: _Window) -> Iterator[Result | Problem]:
        """Wait for the window's batches in turn, round after round, yielding results as they complete."""
        yield from window.ready()
        while window.batches:
            while window.batches:
                batch, outputs_of, submitted = window.batches.popleft()
                outputs = outputs_of()
                done = time.perf_counter()
                share = (done - max(submitted, self._last_done)) / len(batch)  # the wall time it added
                self._last_done = done
                for (work, k), output in zip(batch, outputs, strict=True):
                    work.outputs[k] = output
                    work.seconds += share
                for work in {id(w): w for w, _ in batch}.values():
                    if all(o is not None for o in work.outputs):
                        self._advance(work)
                yield from window.ready()
            self._submit(window)  # the next round: chunk summaries to reduce

    def _prepare(self, document: Document) -> _Work:
        encoded = self.tokenizer.encode(document.text)
        work = _Work(
            document,
            len(encoded.ids),
            [],
            1,
            warnings=list(document.warnings),
            unknown_share=self.tokenizer.unknown_share(encoded, document.text),
        )
        minimum = self.settings.min_length
        if len(encoded.ids) < minimum and text_units(document.text, minimum) < minimum and not self.force:
            work.result = Result(  # already shorter than its summary would be: never invent one
                document=document,
                summary=document.text.strip(),
                input_tokens=len(encoded.ids),
                chunks=0,
                seconds=0.0,
                warnings=work.warnings,
                unknown_share=round(work.unknown_share, 4),
                passthrough=True,
            )
            return work
        if len(encoded.ids) <= self.budget:
            work.start_round([encoded.ids])
        elif self.long_mode == "truncate":
            work.truncated, work.sent_tokens = True, self.budget
            work.warnings.append(f"truncated from {len(encoded.ids)} to {self.budget} tokens (--long truncate)")
            work.start_round([encoded.ids[: self.budget]])
        else:
            detect_language(document)  # its sentences are split by the rules of its language
            ranges = split_tokens(encoded, document.text, self.budget, document.language)
            work.chunks = len(ranges)
            work.start_round([encoded.ids[a:b] for a, b in ranges])
        return work

    def _advance(self, work: _Work) -> None:
        """After a round: a single piece is the summary; several are joined and summarised again."""
        texts = [self.tokenizer.decode(o or []) for o in work.outputs]
        if len(texts) > 1 and not work.sections:
            work.sections = texts  # the map step: one summary per chunk, in order
        if len(texts) == 1:
            work.summary = texts[0]
            if len(work.outputs[0] or []) >= self.settings.max_length - 1:  # the model stopped at the limit
                whole = trim_to_sentence(texts[0])
                if whole:
                    work.summary, work.trimmed = whole, True
            work.result = self._result(work)
            return
        joined = " ".join(t for t in texts if t)
        encoded = self.tokenizer.encode(joined)
        if len(encoded.ids) <= self.budget:
            work.start_round([encoded.ids])
            return
        ranges = split_tokens(encoded, joined, self.budget, work.document.language)
        if len(ranges) >= len(work.pieces):  # the summaries are not getting shorter: stop reducing
            work.truncated = True
            work.warnings.append(
                "chunk summaries did not shrink below the input limit; "
                f"the final pass was truncated to {self.budget} tokens (lower --max-length)"
            )
            work.start_round([encoded.ids[: self.budget]])
            return
        work.start_round([encoded.ids[a:b] for a, b in ranges])

    def _result(self, work: _Work) -> Result:
        return Result(
            document=work.document,
            summary=work.summary or "",
            input_tokens=work.input_tokens,
            chunks=work.chunks,
            seconds=round(work.seconds, 4),
            truncated=work.truncated,
            warnings=work.warnings,
            unknown_share=round(work.unknown_share, 4),
            trimmed=work.trimmed,
            sections=work.sections,
            sent_tokens=work.sent_tokens,
        )
