"""Each document's language, detected offline with py3langid (which ships its model), for routing.

py3langid keeps its model LZMA-compressed and takes over a second to unpack it at every start. The
unpacked arrays, cut down to the languages below, are kept in the cache folder once, so later runs load
them in a few hundredths of a second and a few megabytes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

# the languages detection chooses among: the widely written ones (ISO 639-1, as py3langid names them)
LANGUAGES = [
    "ar",
    "bg",
    "bn",
    "ca",
    "cs",
    "da",
    "de",
    "el",
    "en",
    "es",
    "et",
    "fa",
    "fi",
    "fr",
    "he",
    "hi",
    "hr",
    "hu",
    "id",
    "it",
    "ja",
    "ko",
    "lt",
    "lv",
    "ms",
    "nl",
    "no",
    "pl",
    "pt",
    "ro",
    "ru",
    "sk",
    "sl",
    "sr",
    "sv",
    "sw",
    "ta",
    "th",
    "tl",
    "tr",
    "uk",
    "ur",
    "vi",
    "zh",
]
MIN_CONFIDENCE = 0.5  # below this, or for very short text, the document goes to the default model
MIN_LETTERS = 12
_SAMPLE = 2000  # characters looked at: enough to tell, and the cost stays flat for long documents


def _has_letters(text: str, enough: int = MIN_LETTERS) -> bool:
    """Whether the text has `enough` letters: counted until there are, not over the whole sample."""
    letters = 0
    for ch in text:
        if ch.isalpha():
            letters += 1
            if letters >= enough:
                return True
    return False


@dataclass(frozen=True)
class Detected:
    """A document's language and how sure the detector is; `routable` when sure enough to route on."""

    language: str
    confidence: float
    routable: bool


class Detector:
    """Loaded once per process, on first use, from the cache folder when it can be."""

    _lock = threading.Lock()
    _identifier = None

    @classmethod
    def identifier(cls):
        with cls._lock:
            if cls._identifier is None:
                cls._identifier = _load()
            return cls._identifier

    @classmethod
    def detect(cls, text: str) -> Detected:
        sample = text[:_SAMPLE]
        language, confidence = cls.identifier().classify(sample)
        confidence = round(float(confidence), 4)
        return Detected(str(language), confidence, confidence >= MIN_CONFIDENCE and _has_letters(sample))


def _load():
    """The cut-down model from the cache folder, read in plain Python (PlainIdentifier); made there once,
    with py3langid and numpy, when it is missing. A cache that cannot be written keeps py3langid's own."""
    folder = _cached_model_folder()
    try:
        return PlainIdentifier(folder)
    except (OSError, ValueError, KeyError, SyntaxError):
        pass
    import numpy as np
    from py3langid import langid

    full = langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE, norm_probs=True)
    full.set_languages(LANGUAGES)
    _save(
        folder,
        {
            "ptc": np.ascontiguousarray(full.nb_ptc),
            "pc": np.asarray(full.nb_pc),
            "classes": np.array(full.nb_classes, dtype=str),
            "nextmove": np.frombuffer(full.tk_nextmove, dtype=full.tk_nextmove.typecode),
            "nextmove_row": np.frombuffer(full.tk_row, dtype=full.tk_row.typecode),
            "out_feat": np.asarray(full.tk_output, dtype=np.int64),
        },
    )
    try:
        return PlainIdentifier(folder)
    except (OSError, ValueError, KeyError, SyntaxError):
        return full


class PlainIdentifier:
    """py3langid's classify() (0.4: a byte DFA finds the features, naive Bayes scores them, a softmax at
    temperature sqrt(bytes) gives the confidence) over the cached arrays, memory-mapped, without numpy:
    numpy's import alone took longer than detecting a document, and a one-off run paid it before its
    first batch. Scores are summed in float64 where py3langid uses float32, so a confidence may differ
    from py3langid's in its sixth decimal; the language chosen is the same."""

    def __init__(self, folder):
        self.nextmove = _npy(folder / "nextmove.npy", "<u4").cast("I")
        self.row = _npy(folder / "nextmove_row.npy", "<u2").cast("H")
        self.out = _npy(folder / "out_feat.npy", "<i8").cast("q")
        self.pc = _npy(folder / "pc.npy", "<f4").cast("f").tolist()
        names = bytes(_npy(folder / "classes.npy", "<U2")).decode("utf-32-le")
        self.classes = [names[i : i + 2].rstrip("\0") for i in range(0, len(names), 2)]
        self.ptc = _npy(folder / "ptc.npy", "<f2")
        width = len(self.classes)
        if len(self.pc) != width or len(self.ptc) % (2 * width) or len(self.row) != len(self.out):
            raise ValueError("the cached language model's arrays do not agree")
        first: dict[str, int] = {}
        self._aliases = []  # (first, duplicate) columns of a label given twice, as py3langid folds them
        for i, name in enumerate(self.classes):
            if name in first:
                self._aliases.append((first[name], i))
            else:
                first[name] = i

    def classify(self, text: str) -> tuple[str, float]:
        import math
        import struct
        import unicodedata

        if text.isupper():
            text = text.lower()
        data = unicodedata.normalize("NFC", text).encode("utf8", "surrogatepass")
        nextmove, row, out = self.nextmove, self.row, self.out
        state, counts = 0, {}
        for byte in data:
            state = nextmove[(row[state] << 8) + byte]
            feature = out[state]
            if feature >= 0:
                counts[feature] = counts.get(feature, 0) + 1
        width = len(self.classes)
        # naive Bayes: the prior plus each feature's row, weighted by log(1 + its count). Features seen as
        # often are summed together and weighted once: most are seen once, so this is a few sums per
        # language instead of a product per feature (twice as fast; no features: every language alike)
        by_count: dict[int, list[int]] = {}
        for feature, times in counts.items():
            by_count.setdefault(times, []).append(feature)
        step = 2 * width  # bytes in a row of float16
        ptc = self.ptc
        scores = list(self.pc) if counts else [0.0] * width
        for times, features in by_count.items():
            rows = b"".join([ptc[f * step : f * step + step] for f in features])
            flat = struct.unpack(f"<{len(features) * width}e", rows)  # one call: the rows, one after another
            weight = math.log1p(times)
            scores = [score + weight * sum(flat[c::width]) for c, score in enumerate(scores)]
        scale = 1.0 / math.sqrt(len(data) or 1)
        top = max(scores) * scale
        probs = [math.exp(s * scale - top) for s in scores]
        total = sum(probs)
        probs = [p / total for p in probs]
        for i, j in self._aliases:
            probs[i] += probs[j]
            probs[j] = 0.0
        best = max(range(width), key=probs.__getitem__)
        return self.classes[best], probs[best]


def _npy(path, dtype: str) -> memoryview:
    """The data of a one-dimensional or C-ordered .npy file of `dtype`, memory-mapped (no numpy)."""
    import ast
    import mmap
    import struct
    import sys

    if sys.byteorder != "little":
        raise ValueError("the cached arrays are little-endian")
    with open(path, "rb") as handle:
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    if mapped[:6] != b"\x93NUMPY":
        raise ValueError(f"{path} is not a .npy file")
    size, start = (
        (struct.unpack_from("<H", mapped, 8)[0], 10) if mapped[6] == 1 else (struct.unpack_from("<I", mapped, 8)[0], 12)
    )
    header = ast.literal_eval(mapped[start : start + size].decode("latin1"))
    if header["descr"] != dtype or header["fortran_order"]:
        raise ValueError(f"{path} holds {header['descr']}, not {dtype}")
    return memoryview(mapped)[start + size :]


def _cached_model_folder():
    from summarize_cli.dirs import cache_dir

    version = _py3langid_version()

    return cache_dir() / f"langid-{version}-{len(LANGUAGES)}"


def _py3langid_version() -> str:
    """py3langid's version, read from its __init__.py: importing the package imports numpy (the cost
    PlainIdentifier saves), and importlib.metadata takes tens of milliseconds."""
    import importlib.util
    import re

    spec = importlib.util.find_spec("py3langid")
    try:
        with open(spec.origin, encoding="utf-8") as handle:
            found = re.search(r"""^__version__ = ['"]([^'"]+)['"]""", handle.read(), re.MULTILINE)
    except (AttributeError, TypeError, OSError):
        found = None
    if found:
        return found.group(1)
    from py3langid import __version__

    return __version__


def _save(folder, arrays) -> None:
    """Keep the cut-down model for later runs (one .npy per array, so each can be memory-mapped); a cache
    that cannot be written only costs time."""
    import contextlib
    import os
    import shutil
    import tempfile

    import numpy as np

    with contextlib.suppress(OSError, ValueError, TypeError):
        folder.parent.mkdir(parents=True, exist_ok=True)
        work = tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.")
        try:
            for name, values in arrays.items():
                np.save(os.path.join(work, f"{name}.npy"), values, allow_pickle=False)
            os.replace(work, folder)
        finally:
            shutil.rmtree(work, ignore_errors=True)


def detect_languages(items):
    """Each document with its language detected, unless it has one; anything else passes on untouched."""
    from summarize_cli.documents import Document

    for item in items:
        if isinstance(item, Document):
            detect_language(item)
        yield item


def declare_languages(items, declared: str | None):
    """Each document with `declared` (--language) as its language; without it the documents pass on as they
    are, detected later by the summarizer, while the model generates (see run.pipeline)."""
    if declared is None:
        yield from items
        return
    from summarize_cli.documents import Document

    for item in items:
        if isinstance(item, Document) and item.language is None:
            item.language, item.language_confidence, item.routable = declared, 1.0, True
        yield item


def detect_language(document) -> None:
    """Detect the document's language, how sure that is, and whether to route by it, unless it has one."""
    if document.language is None:
        found = Detector.detect(document.text)
        document.language, document.language_confidence, document.routable = (
            found.language,
            found.confidence,
            found.routable,
        )
