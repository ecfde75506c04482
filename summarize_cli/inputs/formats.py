"""Extract the prose of HTML, Markdown, PDF and Word files; plain text passes through."""

from __future__ import annotations

import contextlib
import io
import logging
import re
from pathlib import Path

from summarize_cli.errors import InputError, SkippedInput
from summarize_cli.inputs.decoding import decode_bytes

EXTENSIONS = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".pdf": "pdf",
    ".docx": "docx",
}
DEFAULT_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx")  # any case: Z.TXT, REPORT.PDF
DEFAULT_INCLUDE = tuple(f"*{ext}" for ext in DEFAULT_SUFFIXES)
EXTRA = "pip install 'summarize-cli[formats]'"


class MissingExtra(SkippedInput):
    """A parser library is not installed."""


PARSER_LOGGERS = ("pypdf", "docx")  # what they log says what is wrong with the file: kept with its name
# the HTML extractor's loggers narrate its own steps ("discarding data: None"): dropped, never shown
EXTRACTOR_LOGGERS = ("trafilatura", "htmldate", "courlan", "readability", "justext")


@contextlib.contextmanager
def parser_notes():
    """Collect what parser libraries log (pypdf's "EOF marker not found", "invalid pdf header") instead of
    letting it reach the terminal unattributed; the caller reports it with the file's name."""
    notes: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage().strip()
            if message and message not in notes:
                notes.append(message)

    handler = Collect(logging.WARNING)
    saved = []
    for name in PARSER_LOGGERS + EXTRACTOR_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.propagate))
        if name in PARSER_LOGGERS:
            logger.addHandler(handler)
        logger.propagate = False
    try:
        yield notes
    finally:
        for logger, propagate in saved:
            logger.removeHandler(handler)
            logger.propagate = propagate


def detect(name: str | None, requested: str = "auto") -> str:
    """The format to read `name` as: the requested one, else by extension, else text."""
    if requested != "auto":
        return requested
    if name:
        return EXTENSIONS.get(Path(name).suffix.lower(), "text")
    return "text"


def extract(data: bytes, fmt: str, limit: int | None = None) -> str:
    """The document's prose as plain text; past `limit` bytes of text (a file that expands far beyond its
    size: a zip bomb, endless PDF pages) it is refused, and extraction stops as soon as that is known."""
    if fmt == "pdf":
        text = pdf_text(data, limit)
    elif fmt == "docx":
        text = docx_text(data, limit)
    else:
        text = decode_bytes(data)
        if fmt == "html":
            text = html_text(text)
        elif fmt == "markdown":
            text = markdown_text(text)
    if limit is not None and len(text.encode("utf-8", "surrogatepass")) > limit:
        raise TooLarge(limit)
    return text


class TooLarge(InputError):
    """Extracted text past --max-input-bytes."""

    def __init__(self, limit: int):
        super().__init__(f"its extracted text passes --max-input-bytes ({limit:,} bytes)")


def html_text(html: str) -> str:
    """The main article text, without menus, scripts, styles or footers (trafilatura)."""
    try:
        import trafilatura
    except ImportError:
        raise MissingExtra(f"reading HTML needs trafilatura: {EXTRA}") from None
    text = trafilatura.extract(html, include_comments=False, include_tables=False, favor_recall=True)
    if not text:
        raise SkippedInput("no article text found in the HTML")
    return text


def markdown_text(source: str) -> str:
    """Prose of a Markdown document: headings and paragraphs as lines, link text kept, code dropped."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(source)
    blocks: list[str] = []
    row: list[str] = []
    in_table = False
    for token in tokens:
        if token.type == "table_open":
            in_table = True
        elif token.type == "table_close":
            in_table = False
        elif token.type == "tr_close" and row:
            blocks.append(", ".join(row) + ".")
            row = []
        elif token.type == "inline":
            text = _inline_text(token)
            if not text:
                continue
            if in_table:
                row.append(text)
            else:
                blocks.append(text)
    return "\n\n".join(blocks)


def _inline_text(token) -> str:
    parts = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return re.sub(r"\s+", " ", "".join(parts)).strip()


def pdf_text(data: bytes, limit: int | None = None) -> str:
    """Text of every page in order (pypdf); a PDF without text (scanned images) is skipped."""
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError:
        raise MissingExtra(f"reading PDF needs pypdf: {EXTRA}") from None
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise InputError("encrypted PDF (needs a password)")
        pages, size = [], 0
        for page in reader.pages:
            pages.append(page.extract_text() or "")
            size += len(pages[-1].encode("utf-8", "surrogatepass"))
            if limit is not None and size > limit:
                raise TooLarge(limit)
    except InputError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as exc:
        raise InputError(f"corrupt or unreadable PDF ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - pypdf raises many kinds of errors on broken files
        if type(exc).__module__.startswith(("pypdf", "cryptography")):
            raise InputError(f"corrupt or unreadable PDF ({exc})") from None
        raise
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text:
        raise SkippedInput("PDF has no extractable text (scanned images?); run OCR first")
    return text


DOCX_MARKUP_RATIO = 5  # a document.xml may hold this many bytes of markup per byte of text allowed


def docx_text(data: bytes, limit: int | None = None) -> str:
    """Paragraphs of a Word document in order (python-docx); a zip that would unpack past a bound is
    refused before anything is unpacked."""
    try:
        import docx
    except ImportError:
        raise MissingExtra(f"reading DOCX needs python-docx: {EXTRA}") from None
    import zipfile

    if limit is not None:
        try:
            unpacked = sum(info.file_size for info in zipfile.ZipFile(io.BytesIO(data)).infolist())
        except (zipfile.BadZipFile, ValueError, OSError) as exc:
            raise InputError(f"corrupt or unreadable DOCX ({exc})") from None
        if unpacked > DOCX_MARKUP_RATIO * limit:
            raise InputError(f"unpacks to {unpacked:,} bytes, past {DOCX_MARKUP_RATIO} x --max-input-bytes: not read")
    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise InputError(f"corrupt or unreadable DOCX ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - python-docx and lxml raise their own errors on broken files
        if type(exc).__module__.startswith(("docx", "lxml")):
            raise InputError(f"corrupt or unreadable DOCX ({exc})") from None
        raise
    return "\n\n".join(p.text.strip() for p in document.paragraphs if p.text.strip())
