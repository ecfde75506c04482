"""Sentences, in any language sentencex knows: where they start, what they are, and where the last one
ends. Shared by the chunker, the record writers, the extractive method and ROUGE-Lsum."""

from __future__ import annotations

import re

# compiled at its first use, where re keeps it: a class of CJK ranges takes 4 ms to compile, at every start
_CJK = r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]"
_LINE_BREAK = re.compile(r"\n\s*")


def sentence_starts(text: str, language: str | None = None) -> list[int]:
    """Character positions where a new sentence begins (0 excluded), found by sentencex, a maintained
    segmenter that knows abbreviations ("Dr.", "U.S.", "e.g."), decimals, quotes and CJK punctuation, in
    `language` (ISO 639-1; by default Chinese when the text has CJK characters, else English). Line
    breaks end sentences too."""
    import sentencex

    language = language or ("zh" if re.search(_CJK, text) else "en")
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
