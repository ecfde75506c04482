"""Chunker: split a document's tokens into pieces that fit the model, at sentence boundaries when possible."""

from __future__ import annotations

import bisect

from summarize_cli.model.tokenizer import Encoded
from summarize_cli.sentences import sentence_starts


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
