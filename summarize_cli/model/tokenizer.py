"""A thin tokenizer over the `tokenizers` library: ids with offsets, the model's special tokens, decoding."""

from __future__ import annotations

import re
from array import array
from pathlib import Path

from summarize_cli.errors import ModelLoadError
from summarize_cli.model.source import read_json

_PIECE_CHARS = 100_000  # long texts are encoded in pieces so memory stays bounded


class Encoded:
    """Token ids and, for each, the start and end of its character span in the text (compact arrays).

    The spans are needed only to chunk a long text by its sentences or to measure unknown text; a text in
    one piece keeps its encoding and reads them when first asked (turning a news article's offsets into
    arrays was a third of its encoding time, spent on every document of a batch)."""

    __slots__ = ("_encoding", "_spans", "ids")

    def __init__(self, ids: array, starts: array | None = None, ends: array | None = None, encoding=None):
        self.ids = ids
        self._spans = None if starts is None else (starts, ends)
        self._encoding = encoding  # a tokenizers.Encoding of the whole text, when it was one piece

    @property
    def starts(self) -> array:
        return self._offsets()[0]

    @property
    def ends(self) -> array:
        return self._offsets()[1]

    def _offsets(self) -> tuple[array, array]:
        if self._spans is None:
            starts, ends = array("l"), array("l")
            if self.ids:
                first, last = zip(*self._encoding.offsets, strict=True)  # in C
                starts.extend(first)
                ends.extend(last)
            self._spans, self._encoding = (starts, ends), None
        return self._spans


class TextTokenizer:
    """Encodes text for a seq2seq model and decodes its output, with no torch or transformers."""

    def __init__(self, backend, config: dict, tokenizer_config: dict):
        backend.no_truncation()
        backend.no_padding()
        self._tok = backend
        self.eos_id = _int(config.get("eos_token_id"))
        self.pad_id = _int(config.get("pad_token_id"), 0)
        self.decoder_start_id = _int(config.get("decoder_start_token_id"), self.pad_id)
        unk = tokenizer_config.get("unk_token") or "<unk>"
        self.unk_id = backend.token_to_id(unk if isinstance(unk, str) else unk.get("content", "<unk>"))
        self.clean_up_spaces = bool(tokenizer_config.get("clean_up_tokenization_spaces", False))
        self.front, self.back = self._special_template()
        limit = tokenizer_config.get("model_max_length")
        positions = config.get("n_positions") or config.get("max_position_embeddings")
        if isinstance(limit, int) and 0 < limit < 100_000:
            self.model_max_length = limit
        elif isinstance(positions, int) and positions > 0:
            self.model_max_length = positions
        else:
            self.model_max_length = 512

    @classmethod
    def from_dir(cls, folder: Path, config: dict | None = None, tokenizer_file: Path | None = None) -> TextTokenizer:
        """Load tokenizer.json (or `tokenizer_file`), else let transformers build the fast tokenizer."""
        config = config if config is not None else read_json(folder / "config.json")
        tokenizer_config = read_json(folder / "tokenizer_config.json")
        path = tokenizer_file or folder / "tokenizer.json"
        if path.is_file():
            from tokenizers import Tokenizer

            backend = Tokenizer.from_file(str(path))
        else:
            backend = _convert_with_transformers(folder)
        return cls(backend, config, tokenizer_config)

    def save(self, folder: Path) -> None:
        self._tok.save(str(folder / "tokenizer.json"))

    def _special_template(self) -> tuple[list[int], list[int]]:
        plain = self._tok.encode("a", add_special_tokens=False).ids
        full = self._tok.encode("a", add_special_tokens=True).ids
        for start in range(len(full) - len(plain) + 1):
            if full[start : start + len(plain)] == plain:
                return full[:start], full[start + len(plain) :]
        return [], ([self.eos_id] if self.eos_id is not None else [])

    @property
    def special_count(self) -> int:
        return len(self.front) + len(self.back)

    def encode(self, text: str) -> Encoded:
        """Ids and offsets of `text` without special tokens; long texts are encoded piece by piece."""
        if len(text) <= _PIECE_CHARS:
            encoding = self._tok.encode(text, add_special_tokens=False)
            return Encoded(array("l", encoding.ids), encoding=encoding)
        ids, starts, ends = array("l"), array("l"), array("l")
        for base, piece in _pieces(text):
            encoding = self._tok.encode(piece, add_special_tokens=False)
            if not encoding.ids:
                continue
            ids.extend(encoding.ids)
            first, last = zip(*encoding.offsets, strict=True)  # in C: a news article is a thousand tokens
            starts.extend(map(base.__add__, first) if base else first)
            ends.extend(map(base.__add__, last) if base else last)
        return Encoded(ids, starts, ends)

    def count(self, text: str) -> int:
        return len(self.encode(text).ids)

    def wrap(self, prefix_ids: list[int], ids) -> list[int]:
        """The model input: special tokens around the prefix and the text."""
        return self.front + list(prefix_ids) + list(ids) + self.back

    def decode(self, ids: list[int]) -> str:
        text = self._tok.decode(ids, skip_special_tokens=True)
        if self.clean_up_spaces:
            text = _clean_up(text)
        return text.strip()

    def id_to_token(self, token_id: int) -> str:
        return self._tok.id_to_token(token_id)

    def token_to_id(self, token: str) -> int | None:
        return self._tok.token_to_id(token)

    def unknown_share(self, encoded: Encoded, text: str) -> float:
        """The share of the text's visible characters that the tokenizer maps to the unknown token."""
        if self.unk_id is None or self.unk_id not in encoded.ids:  # the common case, answered in C
            return 0.0
        unknown = sum(
            _visible(text[s:e])
            for i, s, e in zip(encoded.ids, encoded.starts, encoded.ends, strict=True)
            if i == self.unk_id
        )
        total = _visible(text)
        return unknown / total if total else 0.0


def _visible(text: str) -> int:
    """Characters that are not whitespace (str.split's whitespace is str.isspace's)."""
    return sum(map(len, text.split()))


def _pieces(text: str):
    """Split long text at line breaks (or spaces) into pieces of about _PIECE_CHARS characters."""
    start = 0
    while len(text) - start > _PIECE_CHARS:
        cut = text.rfind("\n", start + _PIECE_CHARS // 2, start + _PIECE_CHARS)
        if cut < 0:
            cut = text.rfind(" ", start + _PIECE_CHARS // 2, start + _PIECE_CHARS)
        cut = start + _PIECE_CHARS if cut < 0 else cut + 1
        yield start, text[start:cut]
        start = cut
    yield start, text[start:]


_CLEAN_UP = [
    (" .", "."),
    (" ?", "?"),
    (" !", "!"),
    (" ,", ","),
    (" ' ", "'"),
    (" n't", "n't"),
    (" 'm", "'m"),
    (" 's", "'s"),
    (" 've", "'ve"),
    (" 're", "'re"),
]


def _clean_up(text: str) -> str:
    for before, after in _CLEAN_UP:
        text = text.replace(before, after)
    return re.sub(r"[ \t]+", " ", text)


def _convert_with_transformers(folder: Path):
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        return tokenizer.backend_tokenizer
    except (OSError, ValueError, AttributeError, ImportError) as exc:
        raise ModelLoadError(f"cannot load the tokenizer in {folder}: {exc}") from None


def _int(value, default: int | None = None) -> int | None:
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, int) else default
