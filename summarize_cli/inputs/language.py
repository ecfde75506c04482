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
        letters = sum(ch.isalpha() for ch in sample)
        confidence = round(float(confidence), 4)
        return Detected(str(language), confidence, confidence >= MIN_CONFIDENCE and letters >= MIN_LETTERS)


def _load():
    import numpy as np
    from py3langid import langid

    folder = _cached_model_folder()
    try:  # memory-mapped: the 40 MB trie costs nothing until pages of it are read
        data = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in _ARRAYS}
        return _identifier(langid, data)
    except (OSError, ValueError, KeyError):
        pass
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
    return full


_ARRAYS = ("ptc", "pc", "classes", "nextmove", "nextmove_row", "out_feat")


def _identifier(langid, data):
    import numpy as np

    return langid.LanguageIdentifier(
        data["ptc"],
        np.array(data["pc"]),
        data["classes"].tolist(),
        data["nextmove"],
        data["out_feat"].tolist(),
        norm_probs=True,
        tk_row=data["nextmove_row"].tolist(),
    )


def _cached_model_folder():
    from py3langid import __version__ as version

    from summarize_cli.dirs import cache_dir

    return cache_dir() / f"langid-{version}-{len(LANGUAGES)}"


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


def detect_languages(items, declared: str | None = None):
    """Each document with its language set: `declared` (--language) for all, else detected. Anything that
    is not a document passes on untouched."""
    from summarize_cli.documents import Document

    for item in items:
        if isinstance(item, Document) and item.language is None:
            if declared is not None:
                item.language, item.language_confidence, item.routable = declared, 1.0, True
            else:
                found = Detector.detect(item.text)
                item.language, item.language_confidence, item.routable = (
                    found.language,
                    found.confidence,
                    found.routable,
                )
        yield item
