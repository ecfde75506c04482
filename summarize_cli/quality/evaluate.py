"""Quality: ROUGE of generated summaries against references, beside a Lead-3 baseline."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from summarize_cli.documents import Document
from summarize_cli.errors import SummarizeError
from summarize_cli.inputs.sources import discover, read_documents
from summarize_cli.sentences import sentences

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
EVAL_EXTRA = "pip install 'summarize-cli[eval]'"
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]")
_CHAR_TOKENS = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]|[a-z0-9]+")


@dataclass
class Example:
    """A document with its reference summary."""

    id: str
    text: str
    reference: str
    language: str | None = None  # detected (or declared), for the per-language breakdown


@dataclass
class SystemReport:
    """One system's predictions and scores over the examples."""

    name: str
    predictions: list[str]
    seconds: float | None
    per_document: list[dict] = field(default_factory=list)
    means: dict[str, float] = field(default_factory=dict)
    mean_length: float = 0.0
    by_language: dict[str, dict[str, float]] = field(default_factory=dict)  # means per language

    @property
    def docs_per_second(self) -> float | None:
        if not self.seconds:
            return None
        return len(self.predictions) / self.seconds


def load_jsonl(
    path: Path, text_field: str = "text", reference_field: str = "summary", id_field: str = "id"
) -> list[Example]:
    """Examples from a JSONL file; a line without both fields is an error naming it."""
    examples = []
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SummarizeError(f"cannot read {path}: {exc}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SummarizeError(f"{path}:{number}: not valid JSON ({exc})") from None
        text, reference = record.get(text_field), record.get(reference_field)
        if not isinstance(text, str) or not isinstance(reference, str):
            raise SummarizeError(
                f'{path}:{number}: needs string fields "{text_field}" and "{reference_field}" '
                "(rename them with --text-field / --reference-field)"
            )
        examples.append(Example(str(record.get(id_field, number)), text, reference))
    if not examples:
        raise SummarizeError(f"{path} holds no examples")
    return examples


def load_folder_pair(documents: Path, references: Path) -> list[Example]:
    """Documents and references matched by file name without extension (a.txt <-> a.md)."""

    def by_stem(folder: Path) -> dict[str, Document]:
        found = {}
        for item in read_documents(discover([str(folder)])):
            if isinstance(item, Document) and item.path is not None:
                found[str(item.path.relative_to(folder).with_suffix(""))] = item
        return found

    docs, refs = by_stem(documents), by_stem(references)
    unmatched = sorted(set(docs) ^ set(refs))
    if unmatched:
        shown = ", ".join(unmatched[:5]) + (f" and {len(unmatched) - 5} more" if len(unmatched) > 5 else "")
        raise SummarizeError(f"documents and references do not match one to one: {shown}")
    if not docs:
        raise SummarizeError(f"no documents found in {documents}")
    return [Example(stem, docs[stem].text, refs[stem].text) for stem in sorted(docs)]


def lead(text: str, count: int = 3) -> str:
    """The first `count` sentences: the Lead-3 baseline."""
    first = sentences(text)[:count]
    joiner = "" if first and is_chinese(" ".join(first)) else " "
    return joiner.join(first)


def is_chinese(text: str) -> bool:
    """True when at least 30% of the visible characters are CJK."""
    visible = [ch for ch in text if not ch.isspace()]
    return bool(visible) and sum(1 for ch in visible if _CJK.match(ch)) / len(visible) >= 0.3


class CharTokenizer:
    """ROUGE tokens for Chinese: one token per CJK character, lowercase words for Latin text."""

    def tokenize(self, text: str) -> list[str]:
        return _CHAR_TOKENS.findall(text.lower())


class Rouge:
    """ROUGE F1 (rouge-score, Google's reimplementation of ROUGE-1.5.5), tokenised by language."""

    def __init__(self):
        try:
            from rouge_score import rouge_scorer
            from rouge_score.tokenizers import DefaultTokenizer
        except ImportError:
            raise SummarizeError(f"summarize eval needs rouge-score: {EVAL_EXTRA}") from None
        self._words = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
        self._chars = rouge_scorer.RougeScorer(list(ROUGE_TYPES), tokenizer=CharTokenizer())
        self._word_tokens = DefaultTokenizer(use_stemmer=False)
        self._char_tokens = CharTokenizer()

    def tokenization(self, reference: str) -> str:
        return "characters" if is_chinese(reference) else "words"

    def score(self, prediction: str, reference: str) -> dict[str, float]:
        """F1 x 100 for each ROUGE type; rougeLsum sees one sentence per line."""
        scorer = self._chars if self.tokenization(reference) == "characters" else self._words
        scores = scorer.score("\n".join(sentences(reference)), "\n".join(sentences(prediction)))
        return {name: round(scores[name].fmeasure * 100, 4) for name in ROUGE_TYPES}

    def length(self, text: str, reference: str) -> int:
        tokenizer = self._char_tokens if self.tokenization(reference) == "characters" else self._word_tokens
        return len(tokenizer.tokenize(text))


def score_system(
    name: str, examples: list[Example], predictions: list[str], seconds: float | None, rouge: Rouge
) -> SystemReport:
    """Per-document and mean scores of one system."""
    report = SystemReport(name, predictions, seconds)
    for example, prediction in zip(examples, predictions, strict=True):
        scores = rouge.score(prediction, example.reference)
        report.per_document.append(
            {
                "system": name,
                "id": example.id,
                "language": example.language,
                **scores,
                "length": rouge.length(prediction, example.reference),
                "tokenization": rouge.tokenization(example.reference),
                "summary": prediction,
            }
        )
    count = len(report.per_document)
    report.means = {t: round(sum(d[t] for d in report.per_document) / count, 2) for t in ROUGE_TYPES}
    report.mean_length = round(sum(d["length"] for d in report.per_document) / count, 1)
    for language in sorted({d["language"] for d in report.per_document if d["language"]}):
        rows = [d for d in report.per_document if d["language"] == language]
        report.by_language[language] = {
            **{t: round(sum(d[t] for d in rows) / len(rows), 2) for t in ROUGE_TYPES},
            "documents": len(rows),
            "mean_length": round(sum(d["length"] for d in rows) / len(rows), 1),
        }
    return report


def tokenization_counts(examples: Iterable[Example], rouge: Rouge) -> dict[str, int]:
    counts: dict[str, int] = {}
    for example in examples:
        kind = rouge.tokenization(example.reference)
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def report_json(reports: list[SystemReport], counts: dict[str, int]) -> dict:
    return {
        "documents": len(reports[0].predictions) if reports else 0,
        "tokenization": counts,
        "systems": [
            {
                "system": r.name,
                **r.means,
                "mean_length": r.mean_length,
                "docs_per_second": None if r.docs_per_second is None else round(r.docs_per_second, 3),
                "by_language": r.by_language,
            }
            for r in reports
        ],
    }


Summarise = Callable[[list[Example]], tuple[list[str], float]]
