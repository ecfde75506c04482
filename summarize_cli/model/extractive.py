"""The extractive method: a summary made of the document's own most central sentences, in document order.

No model is loaded and torch is never imported: sentences come from our splitter (sentencex), words from a
tokenizer that needs no dictionary (Latin words; Chinese and Japanese as character bigrams), and the ranking
from sumy's LexRank. It stands where a loaded model does: an engine (what records say) and a summarizer
(documents in, results out, in input order), made by run/build.py like any other run.
"""

from __future__ import annotations

import math
import re
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field

from summarize_cli.documents import Document, Problem, Result
from summarize_cli.sentences import sentences

NAME = "extractive"
# --length: (sentences, tokens) a summary may hold; --max-length replaces the token cap. Tokens are words,
# and each Chinese or Japanese character is one (these texts have no spaces between words)
BUDGETS = {"short": (2, 60), "medium": (3, 120), "long": (6, 240)}
# LexRank compares every pair of sentences (in Python): a longer document's RANKED sentences that share
# most of its vocabulary (a linear-time centroid score) are ranked, so 100,000 sentences stay in seconds
RANKED = 200
_IDEOGRAPHS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # kana and CJK ideographs: no spaces
_TOKENS = re.compile(rf"[{_IDEOGRAPHS}]+|[^\W_{_IDEOGRAPHS}]+")
_IDEOGRAPHIC = re.compile(rf"[{_IDEOGRAPHS}]")
_CJK_END = re.compile(rf"[{_IDEOGRAPHS}。！？…”’」』）】]$")
_ENDED = re.compile(r"""[.!?…:;。！？；："'”’)\]」』）】]$""")  # a line without one (a heading) keeps its break


def words(text: str) -> list[str]:
    """Ranking terms: lowercase words, and runs of Chinese or Japanese characters as character bigrams (a
    lone character as itself), which need no dictionary and work for any CJK text."""
    out: list[str] = []
    for run in _TOKENS.findall(text.lower()):
        if _IDEOGRAPHIC.match(run):
            out.extend([run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)])
        else:
            out.append(run)
    return out


def token_count(text: str) -> int:
    """The budget's unit: words, each Chinese or Japanese character counting as one."""
    return sum(len(run) if _IDEOGRAPHIC.match(run) else 1 for run in _TOKENS.findall(text))


def clip(text: str, max_tokens: int) -> str:
    """The text's first `max_tokens` tokens (a Chinese or Japanese character one each), cut between
    tokens: for a text with no sentence boundaries, where whole sentences cannot be chosen."""
    count = 0
    for match in _TOKENS.finditer(text):
        run = match.group(0)
        size = len(run) if _IDEOGRAPHIC.match(run) else 1
        if count + size > max_tokens:
            end = match.start() + (max_tokens - count if _IDEOGRAPHIC.match(run) else 0)
            return text[:end].rstrip()
        count += size
    return text.strip()


def _same(sentence: str) -> str:
    """A sentence as duplicates compare: case and spacing aside."""
    return " ".join(sentence.casefold().split())


def join(parts: list[str]) -> str:
    """Sentences back into text: a space between them, none between Chinese or Japanese ones, and a line
    break after one that ends without punctuation (a heading), so the summary splits into the same sentences."""
    text = ""
    for part in parts:
        if text and not _ENDED.search(text):
            text += "\n"
        elif text and not (_CJK_END.search(text) and _IDEOGRAPHIC.match(part)):
            text += " "
        text += part
    return text


@dataclass(frozen=True)
class ExtractiveSettings:
    """What shapes an extractive summary: at most `sentences` sentences and `max_tokens` tokens."""

    sentences: int = 3
    max_tokens: int = 120
    ranker: str = "lexrank"
    ranked: int = RANKED  # sentences ranked at most (a longer document's most central by vocabulary)

    def as_dict(self) -> dict:
        return asdict(self)


def settings_for(length: str | None, max_length: int | None) -> ExtractiveSettings:
    """The budget for a --length preset (medium by default), its token cap replaced by --max-length."""
    count, tokens = BUDGETS[length or "medium"]
    return ExtractiveSettings(sentences=count, max_tokens=max_length or tokens)


class _Words:
    """sumy's tokenizer interface (to_words), on our word tokenizer."""

    @staticmethod
    def to_words(text: str) -> list[str]:
        return words(text)


def sumy_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sumy")
    except PackageNotFoundError:  # pragma: no cover - a core dependency
        return "unknown"


@dataclass(frozen=True)
class _Source:
    name: str = NAME
    path: str = "no model"
    revision: str = ""


@dataclass
class _Backend:
    name: str = "sumy"
    device: str = "cpu"
    precision: str | None = None
    notes: list[str] = field(default_factory=list)


class ExtractiveEngine:
    """Stands where a loaded model does: what records and -v say about how a summary was made."""

    tokenizer = None

    def __init__(self):
        self.source = _Source(revision=f"lexrank (sumy {sumy_version()})")
        self.backend = _Backend()

    def info(self) -> dict:
        return {
            "model": self.source.name,
            "model_revision": self.source.revision,
            "backend": self.backend.name,
            "device": self.backend.device,
            "precision": self.backend.precision,
            "method": NAME,
        }

    def run_info(self, settings: ExtractiveSettings) -> dict:
        return {**self.info(), "settings": settings.as_dict()}

    def describe(self, settings: ExtractiveSettings) -> list[str]:
        return [
            f"method extractive: {self.source.revision} over sentencex sentences, no model loaded",
            f"settings at most {settings.sentences} sentences and {settings.max_tokens} tokens per summary "
            f"(--length, --max-length); documents of more than {settings.ranked} sentences rank their "
            f"{settings.ranked} most central by vocabulary",
        ]


class ExtractiveSummarizer:
    """Documents in, results out, in input order: each summary is the document's most central sentences
    that fit the budget, in document order. Problems and earlier results (the cache's) pass through."""

    def __init__(self, settings: ExtractiveSettings, batch_size: int = 16, force: bool = False):
        self.settings = settings
        self.batch_size = batch_size
        self.window = max(4 * batch_size, 16)  # a routed run takes its pace from the default's summarizer
        self.force = force

    def summarize(self, items: Iterable[Document | Problem | Result]) -> Iterator[Result | Problem]:
        for item in items:
            if isinstance(item, Document):
                yield self.summarize_one(item)
            elif isinstance(item, (Problem, Result)):
                yield item  # IDLE (a paused feed) needs nothing: every document is done as it arrives

    def summarize_one(self, document: Document) -> Result:
        started = time.perf_counter()
        found = sentences(document.text, document.language)
        tokens = [token_count(s) for s in found]
        budget = self.settings
        fits = len(found) <= budget.sentences and sum(tokens) <= budget.max_tokens
        if len(found) <= 1 and sum(tokens) > budget.max_tokens:  # one endless sentence: its start, clipped
            return Result(
                document=document,
                summary=clip(document.text, budget.max_tokens),
                input_tokens=sum(tokens),
                chunks=1,
                seconds=round(time.perf_counter() - started, 4),
                warnings=[
                    *document.warnings,
                    f"no sentence boundaries to choose by: its first {budget.max_tokens} tokens are the summary",
                ],
                trimmed=True,
            )
        if len(found) <= 1 or (fits and not self.force):  # nothing to choose from: the text as it is
            return Result(
                document=document,
                summary=document.text.strip(),
                input_tokens=sum(tokens),
                chunks=0,
                seconds=round(time.perf_counter() - started, 4),
                warnings=list(document.warnings),
                passthrough=True,
            )
        chosen = pick(found, tokens, budget)
        return Result(
            document=document,
            summary=join([found[i] for i in chosen]),
            input_tokens=sum(tokens),
            chunks=1,
            seconds=round(time.perf_counter() - started, 4),
            warnings=list(document.warnings),
        )


def pick(found: list[str], tokens: list[int], budget: ExtractiveSettings) -> list[int]:
    """Indexes of the sentences to keep, ascending: the best ranked first, each taken while the budget holds
    (never cut; when none fits, the best one alone)."""
    candidates = candidates_of(found, budget.ranked)
    ranked = rank([found[i] for i in candidates])
    chosen: list[int] = []
    seen: set[str] = set()  # a sentence repeated in the text (or across --combine's inputs) is taken once
    total = 0
    for position in ranked:
        index = candidates[position]
        if len(chosen) == budget.sentences:
            break
        if _same(found[index]) in seen:
            continue
        if total + tokens[index] <= budget.max_tokens:
            chosen.append(index)
            seen.add(_same(found[index]))
            total += tokens[index]
    return sorted(chosen or [candidates[ranked[0]]])


def candidates_of(found: list[str], limit: int) -> list[int]:
    """Every sentence, or for a longer document the `limit` sharing most of its vocabulary, in order: a
    term weighs df * log(N / df), so words of every sentence (the, of) and words of one weigh little."""
    if len(found) <= limit:
        return list(range(len(found)))
    terms = [set(words(s)) for s in found]
    df = Counter(t for sentence in terms for t in sentence)
    total = len(found)
    weight = {t: n * math.log(total / n) for t, n in df.items()}
    scores = [sum(weight[t] for t in sentence) / math.sqrt(len(sentence) or 1) for sentence in terms]
    best = sorted(range(total), key=lambda i: (-scores[i], i))[:limit]
    return sorted(best)


def rank(texts: list[str]) -> list[int]:
    """Positions of `texts` from most to least central by sumy's LexRank; ties (and a graph without edges,
    where LexRank has no answer) go to the earlier sentence."""
    import numpy
    from sumy.models.dom import ObjectDocumentModel, Paragraph, Sentence
    from sumy.summarizers.lex_rank import LexRankSummarizer

    tokenizer = _Words()
    document = ObjectDocumentModel([Paragraph([Sentence(text, tokenizer) for text in texts])])
    order: list[int] = []

    def take_all(infos) -> list:  # sumy's sentence count, as a callable: it hands over every rating
        rated = [(-(i.rating if i.rating == i.rating else 0.0), i.order) for i in infos]  # NaN: no edges
        order.extend(position for _, position in sorted(rated))
        return []

    with warnings.catch_warnings(), numpy.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        LexRankSummarizer()(document, take_all)
    return order or list(range(len(texts)))
