"""Turn raw bytes into text: UTF-8 first, then BOMs, then a detector for legacy encodings."""

from __future__ import annotations

import codecs
import unicodedata

from summarize_cli.errors import SkippedInput

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def decode_bytes(data: bytes) -> str:
    """Decode `data`, or raise SkippedInput when it is binary or its encoding cannot be told."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise SkippedInput(f"invalid {encoding} text ({exc.reason})") from None
    utf16 = _bomless_utf16(data)
    if utf16 is not None:
        return utf16
    if b"\x00" not in data:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return _detect(data)


def _bomless_utf16(data: bytes) -> str | None:
    """UTF-16 without a BOM shows as NUL bytes on every other position for Latin text."""
    if len(data) < 4 or len(data) % 2:
        return None
    even_nuls = data[0::2].count(0) / (len(data) // 2)
    odd_nuls = data[1::2].count(0) / (len(data) // 2)
    encoding = "utf-16-be" if even_nuls > 0.3 and odd_nuls < 0.05 else None
    if odd_nuls > 0.3 and even_nuls < 0.05:
        encoding = "utf-16-le"
    if encoding is None:
        return None
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        return None
    return text if _printable_share(text) > 0.95 else None


# Among equally plausible guesses, the encodings people actually save text in win.
_COMMON = (
    "utf_8",
    "gb18030",
    "gbk",
    "big5",
    "shift_jis",
    "euc_kr",
    "utf_16",
    "utf_16_le",
    "utf_16_be",
    "cp1252",
    "latin_1",
    "cp1251",
)


def _detect(data: bytes) -> str:
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        raise SkippedInput("binary file or unknown text encoding")
    least_chaos = min(m.chaos for m in matches)
    plausible = [m for m in matches if m.chaos <= least_chaos + 0.01]
    encoding = plausible[0].encoding
    for candidate in _COMMON:
        if any(candidate in m.could_be_from_charset for m in plausible):
            encoding = candidate
            break
    if b"\x00" in data and not encoding.startswith(("utf_16", "utf_32")):
        raise SkippedInput("binary file (contains NUL bytes)")
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        raise SkippedInput("binary file or unknown text encoding") from None
    if _printable_share(text) < 0.95:
        raise SkippedInput(f"binary file or unknown text encoding (best guess {encoding} is not text)")
    return text


def _printable_share(text: str) -> float:
    if not text:
        return 0.0
    sample = text[:20000]
    good = sum(1 for ch in sample if ch in "\n\r\t" or not unicodedata.category(ch).startswith("C"))
    return good / len(sample)


def has_content(text: str) -> bool:
    """True when the text holds something besides whitespace and control characters."""
    return any(not (ch.isspace() or unicodedata.category(ch).startswith("C")) for ch in text)
