"""Chunker: split a document's tokens into pieces that fit the model, at sentence boundaries when possible."""

from __future__ import annotations

import bisect
import re

from summarize_cli.model.tokenizer import Encoded

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_LINE_BREAK = re.compile(r"\n\s*")


def sentence_starts(text: str, language: str | None = None) -> list[int]:
    """Character positions where a new sentence begins (0 excluded), found by sentencex, a maintained
    segmenter that knows abbreviations ("Dr.", "U.S.", "e.g."), decimals, quotes and CJK punctuation, in
    `language` (ISO 639-1; by default Chinese when the text has CJK characters, else English). Line
    breaks end sentences too."""
    import sentencex

    language = language or ("zh" if _CJK.search(text) else "en")
    starts: set[int] = set()
    position = 0
    for segment in sentencex.segment(language, text):
        piece = segment.strip()
        if not piece:
            continue
        found = text.find(piece, position)
        if found < 0:
            continue
        if found > 0:
            starts.add(found)
        position = found + len(piece)
    for match in _LINE_BREAK.finditer(text):
        if 0 < match.end() < len(text):
            starts.add(match.end())
    return sorted(starts)


def sentences(text: str, language: str | None = None) -> list[str]:
    """The text's sentences, in order, without surrounding space."""
    cuts = [0, *sentence_starts(text, language), len(text)]
    return [text[a:b].strip() for a, b in zip(cuts, cuts[1:], strict=False) if text[a:b].strip()]


_ENDS_A_SENTENCE = re.compile(r"""(?:[.!?…]+["'”’)\]]*|[。！？…]+[”’」』）】]*)\s*$""")


def trim_to_sentence(text: str) -> str | None:
    """The text up to the end of its last complete sentence, or None when it has no complete sentence
    before its end (nothing to trim back to) or already ends one."""
    if _ENDS_A_SENTENCE.search(text):
        return None
    ends = [m.end() for m in re.finditer(r"""[.!?…]+["'”’)\]]*(?=\s)|[。！？…]+[”’」』）】]*""", text)]
    if not ends:
        return None
    return text[: ends[-1]].rstrip()


def split_tokens(encoded: Encoded, text: str, budget: int, language: str | None = None) -> list[tuple[int, int]]:
    """Token ranges [start, end) of at most `budget` tokens, cut at sentence starts where one fits.

    Each chunk costs a generate() call, so the count comes first: as few chunks as sentence cuts allow.
    Among those, chunks are balanced: a document of 1.2 budgets gives two chunks of about 0.6, not 1.0
    and 0.2, so a batch of them carries little padding. A sentence longer than the budget is cut at a
    token boundary.
    """
    if budget < 1:
        raise ValueError("budget must be at least 1 token")
    total = len(encoded.ids)
    if total <= budget:
        return [(0, total)]
    token_starts = encoded.starts
    boundaries = sorted({bisect.bisect_left(token_starts, c) for c in sentence_starts(text, language)} - {0, total})

    def cuts_from(start: int) -> list[int]:
        """Where the chunk that begins at `start` may end: a sentence start that fits, else the budget."""
        fitting = boundaries[bisect.bisect_right(boundaries, start) : bisect.bisect_right(boundaries, start + budget)]
        return fitting or [start + budget]

    fewest_memo: dict[int, int] = {}

    def fewest(start: int) -> int:
        """Chunks needed from `start` to the end: always cutting as late as possible needs the fewest."""
        if start not in fewest_memo:
            position, count = start, 1
            while total - position > budget:
                position, count = cuts_from(position)[-1], count + 1
            fewest_memo[start] = count
        return fewest_memo[start]

    ranges = []
    start = 0
    while total - start > budget:
        left = fewest(start)
        target = start + (total - start) / left
        usable = [c for c in cuts_from(start) if fewest(c) == left - 1]  # never adds a chunk
        end = min(usable, key=lambda c: abs(c - target))
        ranges.append((start, end))
        start = end
    ranges.append((start, total))
    return ranges
