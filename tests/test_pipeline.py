"""The core pipeline with a mock backend whose output is exact: order, batching, map-reduce, truncation."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import EchoBackend

from summarize_cli.documents import IDLE, Document, Problem, Result
from summarize_cli.errors import SettingsError
from summarize_cli.model.settings import GenerationSettings
from summarize_cli.model.tokenizer import TextTokenizer
from summarize_cli.run.chunker import split_tokens
from summarize_cli.run.pipeline import Summarizer
from summarize_cli.sentences import sentence_starts


@pytest.fixture
def tokenizer(tiny_tokenizer) -> TextTokenizer:
    return tiny_tokenizer


def make(tokenizer, keep=4, batch_size=3, long_mode="chunk", prefix="summarize: ", window=None):
    settings = GenerationSettings(prefix=prefix, min_length=1)  # no text is too short to summarise here
    prefix_len = len(tokenizer.encode(prefix).ids)
    backend = EchoBackend(prefix_len, keep)
    return Summarizer(backend, tokenizer, settings, batch_size, long_mode, window), backend


def words(n: int, start: int = 0) -> str:
    return " ".join(f"w{start + i}" for i in range(n))


def test_results_come_in_input_order_although_batches_are_sorted_by_length(tokenizer):
    summarizer, backend = make(tokenizer, keep=8)
    lengths = [5, 80, 12, 100, 3, 60, 40]
    tags = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf"]
    docs = [Document(tag, f"{tag} " + words(n)) for tag, n in zip(tags, lengths, strict=True)]
    out = list(summarizer.summarize(docs))
    assert [r.source for r in out] == [d.source for d in docs]
    assert [r.summary for r in out] == [tokenizer.decode(tokenizer.encode(d.text).ids[:8]) for d in docs]
    assert len({r.summary for r in out}) == len(docs)
    sent = [len(tokenizer.wrap(summarizer.prefix_ids, tokenizer.encode(d.text).ids)) for d in docs]
    # the first window is one batch, the first three documents (the model starts on them at once); then
    # the rest, longest first, so batches hold similar lengths
    assert backend.batches[0] == sorted(sent[:3], reverse=True)
    assert [n for batch in backend.batches[1:] for n in batch] == sorted(sent[3:], reverse=True)
    assert [len(b) for b in backend.batches] == [3, 3, 1]


class QueuedEcho(EchoBackend):
    """An echo backend that queues batches as CTranslate2's does, saying what had been read by then."""

    def __init__(self, prefix_len, keep, read):
        super().__init__(prefix_len, keep)
        self.read, self.submitted = read, []

    def submit(self, inputs, settings):
        self.submitted.append((len(self.read), [d.language for d in self.read]))
        outputs = self.generate(inputs, settings)
        return lambda: outputs


def test_the_model_starts_on_the_first_batch_before_the_first_window_is_read_and_languages_come_beside(tokenizer):
    """The first batch is queued once its documents are read, not after the whole first window; languages
    are detected after a window's batches are queued (while the model generates), and every result has one."""
    read: list[Document] = []
    settings = GenerationSettings(prefix="summarize: ", min_length=1)
    backend = QueuedEcho(len(tokenizer.encode("summarize: ").ids), 4, read)
    summarizer = Summarizer(backend, tokenizer, settings, batch_size=2, window=8)

    def feed():
        for i in range(10):
            document = Document(f"d{i}", f"The harbour ferry number {i} returns on Monday, the council said.")
            read.append(document)
            yield document

    out = list(summarizer.summarize(feed()))
    assert [r.source for r in out] == [f"d{i}" for i in range(10)]
    assert backend.submitted[0] == (2, [None, None])  # two read, none detected yet
    assert [count for count, _ in backend.submitted] == [2, 10, 10, 10, 10]
    assert backend.submitted[1][1][:2] == ["en", "en"] and backend.submitted[1][1][2:] == [None] * 8
    assert [(r.document.language, r.document.routable) for r in out] == [("en", True)] * 10


def test_problems_pass_through_in_place(tokenizer):
    summarizer, _ = make(tokenizer)
    items = [Document("a", "alpha text"), Problem("b", "broken"), Document("c", "gamma text")]
    out = list(summarizer.summarize(items))
    assert [type(o) for o in out] == [Result, Problem, Result]


def test_results_stream_before_the_input_ends(tokenizer):
    summarizer, _ = make(tokenizer, batch_size=2, window=4)
    consumed = []

    def feed():
        for i in range(12):
            consumed.append(i)
            yield Document(f"d{i}", f"text number {i}")

    stream = summarizer.summarize(feed())
    first = next(stream)
    assert first.source == "d0"
    assert len(consumed) < 12


def test_long_document_is_chunked_within_the_limit_and_reduced(tokenizer):
    summarizer, backend = make(tokenizer, keep=50)
    text = ". ".join(words(30, start=i * 30) for i in range(60)) + "."
    total = len(tokenizer.encode(text).ids)
    assert total > 3 * 512
    [result] = list(summarizer.summarize([Document("long", text)]))
    assert result.chunks == len(split_tokens(tokenizer.encode(text), text, summarizer.budget))
    assert result.chunks >= 4
    assert result.input_tokens == total
    assert not result.truncated
    lengths = [n for batch in backend.batches for n in batch]
    assert max(lengths) <= tokenizer.model_max_length
    # map: one call per chunk; reduce: the joined chunk summaries, summarised again
    assert len(lengths) > result.chunks
    assert result.summary.startswith("w0 w1")


def test_truncate_mode_warns_and_keeps_one_chunk(tokenizer):
    summarizer, backend = make(tokenizer, long_mode="truncate")
    text = words(2000)
    [result] = list(summarizer.summarize([Document("long", text)]))
    assert result.truncated and result.chunks == 1
    assert "truncated" in result.warnings[0] and "long" in result.warnings[0]
    assert backend.batches == [[tokenizer.model_max_length]]


def test_reduce_stops_when_summaries_do_not_shrink(tokenizer):
    summarizer, _ = make(tokenizer, keep=10_000)  # the "summary" is as long as its input
    text = ". ".join(words(30, start=i * 30) for i in range(60)) + "."
    [result] = list(summarizer.summarize([Document("long", text)]))
    assert result.truncated
    assert "did not shrink" in result.warnings[0]


def test_every_chunk_fits_and_cuts_fall_on_sentence_starts(tokenizer):
    text = " ".join(f"Sentence number {i} has some words in it." for i in range(200))
    encoded = tokenizer.encode(text)
    ranges = split_tokens(encoded, text, 100)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(encoded.ids)
    assert all(b - a <= 100 for a, b in ranges)
    assert all(r1[1] == r2[0] for r1, r2 in zip(ranges, ranges[1:], strict=False))
    for _, end in ranges[:-1]:
        assert text[encoded.starts[end] :].startswith("Sentence")


def _one_token_per_character(sentence_lengths: list[int]):
    """A text of sentences of exactly these lengths (the space after each included), encoded as one token
    per character, so chunk sizes are known exactly."""
    from array import array

    from summarize_cli.model.tokenizer import Encoded

    text = " ".join("x" * (n - 2) + "." for n in sentence_lengths)
    return Encoded(array("l", [1] * len(text)), array("l", range(len(text))), array("l", range(1, len(text) + 1))), text


def test_chunks_are_as_few_as_sentence_cuts_allow():
    """Each chunk is a generate() call: balancing must never cost one more than cutting as late as possible."""
    encoded, text = _one_token_per_character([41, 30, 49, 10, 57, 29])
    assert split_tokens(encoded, text, 60) == [(0, 41), (41, 71), (71, 130), (130, 187), (187, 215)]


def test_chunks_are_balanced_among_the_fewest():
    """1003 tokens with no sentence start near the middle need three chunks: about a third each, not
    482, 273 and 248 (a batch is as long as its longest chunk)."""
    lengths = [18, 11, 19, 15, 48, 7, 33, 17, 9, 14, 21, 24, 29, 6, 15, 20, 11, 11, 41, 46, 11, 48, 8, 25, 33]
    lengths += [20, 35, 37, 5, 18, 14, 5, 22, 5, 26, 28, 25, 64, 17, 5, 19, 24, 19, 5, 32, 6, 18, 5, 10]
    encoded, text = _one_token_per_character(lengths)
    ranges = split_tokens(encoded, text, 505)
    assert len(encoded.ids) == 1003
    assert [b - a for a, b in ranges] == [328, 341, 334]


def test_sentence_longer_than_the_budget_is_cut_at_tokens(tokenizer):
    text = words(500)  # no punctuation at all
    encoded = tokenizer.encode(text)
    ranges = split_tokens(encoded, text, 64)
    assert all(b - a <= 64 for a, b in ranges)
    assert sum(b - a for a, b in ranges) == len(encoded.ids)


def test_chinese_sentences_split_on_full_width_punctuation(tokenizer):
    text = "城市绿地帮助居民度过炎热夏天。研究人员设置了监测点！他们说：“好的。”然后呢？最后一句"
    starts = [text[s : s + 2] for s in sentence_starts(text)]
    assert starts == ["研究", "他们", "然后", "最后"]
    long_text = text * 40
    encoded = tokenizer.encode(long_text)
    ranges = split_tokens(encoded, long_text, 50)
    assert all(b - a <= 50 for a, b in ranges)


def test_prefix_that_fills_the_limit_is_refused(tokenizer):
    with pytest.raises(SettingsError, match="--prefix"):
        make(tokenizer, prefix=words(600))


def test_samples_long_article_is_summarised_in_chunks_and_reduced(tokenizer, samples: Path):
    text = (samples / "river-cleanup-long.txt").read_text(encoding="utf-8")
    summarizer, backend = make(tokenizer, keep=8)
    [result] = list(summarizer.summarize([Document("river", text)]))
    encoded = tokenizer.encode(text)
    assert result.input_tokens == len(encoded.ids) > summarizer.budget
    assert result.chunks == len(split_tokens(encoded, text, summarizer.budget)) >= 2
    assert not result.truncated and result.warnings == []
    # map: one call per chunk, each within the limit; reduce: one more call on the joined chunk summaries
    lengths = [n for batch in backend.batches for n in batch]
    assert len(lengths) == result.chunks + 1 and max(lengths) <= tokenizer.model_max_length
    assert result.summary == tokenizer.decode(list(encoded.ids[:8]))


class QueueingBackend(EchoBackend):
    """Like CTranslate2's replicas: submit() queues a batch and returns a call that waits for it. The log
    says when each batch (numbered in submission order) was queued and when its outputs were taken."""

    def __init__(self, prefix_len: int, keep: int):
        super().__init__(prefix_len, keep)
        self.log: list[tuple[str, int]] = []

    def submit(self, inputs, settings):
        number = sum(1 for event, _ in self.log if event == "queued")
        self.log.append(("queued", number))
        outputs = self.generate(inputs, settings)

        def wait():
            self.log.append(("taken", number))
            return outputs

        return wait


def test_next_window_is_queued_before_the_last_batch_of_the_previous_is_taken(tokenizer):
    """No idle tail: while the last batch of a window runs, the next window's batches wait behind it."""
    backend = QueueingBackend(prefix_len=len(tokenizer.encode("summarize: ").ids), keep=4)
    settings = GenerationSettings(prefix="summarize: ", min_length=1)
    summarizer = Summarizer(backend, tokenizer, settings, batch_size=2, window=4)
    docs = [Document(f"d{i}", words(10 + i, start=100 * i)) for i in range(8)]
    results = list(summarizer.summarize(docs))
    assert [r.source for r in results] == [d.source for d in docs]
    assert [r.summary for r in results] == [tokenizer.decode(tokenizer.encode(d.text).ids[:4]) for d in docs]
    # batches of 2: the first window is one batch (0), then windows of 4 documents (1-2, then 3)
    assert backend.log == [
        ("queued", 0), ("queued", 1), ("queued", 2), ("taken", 0),
        ("queued", 3), ("taken", 1), ("taken", 2), ("taken", 3),
    ]  # fmt: skip


def test_a_paused_feed_finishes_what_arrived_before_reading_on(tokenizer):
    """A live feed (IDLE): what has arrived is summarised and yielded before the next line is awaited."""
    backend = QueueingBackend(prefix_len=len(tokenizer.encode("summarize: ").ids), keep=4)
    summarizer = Summarizer(backend, tokenizer, GenerationSettings(prefix="summarize: ", min_length=1), 2, window=4)
    seen: list[str] = []

    def feed():
        yield Document("first", words(12))
        yield IDLE
        seen.append(f"read on after {len(backend.log)} events")
        yield Document("second", words(12, start=50))

    out = summarizer.summarize(feed())
    assert next(out).source == "first"
    assert backend.log == [("queued", 0), ("taken", 0)] and seen == []
    assert [r.source for r in out] == ["second"] and seen == ["read on after 2 events"]
