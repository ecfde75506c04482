"""Fetch a URL's body for summarising: redirects followed, a timeout, the size limit checked while streaming."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from summarize_cli import __version__
from summarize_cli.errors import InputError

USER_AGENT = f"summarize-cli/{__version__} (+https://pypi.org/project/summarize-cli/)"
DEFAULT_TIMEOUT = 30.0
URL_PREFIXES = ("http://", "https://")
# Content-Type -> how the body is read (as for files by extension)
CONTENT_TYPES = {
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/pdf": "pdf",
    "text/plain": "text",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
}
_WINDOWS_REFUSES = re.compile(r'[<>:"/\\|?*\x00-\x1f]')
_MAX_SEGMENT = 100


def is_url(text: str) -> bool:
    return text.startswith(URL_PREFIXES)


@dataclass(frozen=True)
class Fetched:
    """A URL's body, where the redirects ended, and what its server said it is."""

    url: str
    final_url: str
    content_type: str
    data: bytes


def fetch(url: str, timeout: float, max_bytes: int) -> Fetched:
    """GET `url`; every failure is an InputError naming its cause in words (never a traceback)."""
    import httpx

    deadline = time.monotonic() + timeout
    try:
        with (
            httpx.Client(
                follow_redirects=True, timeout=timeout, headers={"User-Agent": USER_AGENT}, trust_env=True
            ) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code >= 400:
                reason = response.reason_phrase or ""
                raise InputError(f"HTTP {response.status_code}{' ' + reason if reason else ''}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise InputError(f"larger than --max-input-bytes ({max_bytes:,} bytes): {int(declared):,} bytes")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise InputError(f"larger than --max-input-bytes ({max_bytes:,} bytes)")
                if time.monotonic() > deadline:  # a server that trickles: --timeout bounds the whole fetch
                    raise httpx.ReadTimeout("the whole fetch took too long")
            content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            return Fetched(url, str(response.url), content_type, bytes(body))
    except InputError:
        raise
    except httpx.TimeoutException:
        raise InputError(f"timed out after {timeout:g} s (--timeout)") from None
    except httpx.TooManyRedirects:
        raise InputError("too many redirects") from None
    except httpx.ConnectError as exc:
        raise InputError(_connect_reason(exc)) from None
    except httpx.UnsupportedProtocol as exc:
        raise InputError(f"unsupported URL ({exc})") from None
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        raise InputError(f"cannot fetch: {type(exc).__name__}: {exc}") from None


def _connect_reason(exc: Exception) -> str:
    text = str(exc)
    lowered = text.lower()
    if "name or service not known" in lowered or "nodename nor servname" in lowered or "name resolution" in lowered:
        return "host name not resolved"
    if "connection refused" in lowered:
        return "connection refused"
    return f"cannot connect ({text})"


def body_format(fetched: Fetched) -> str:
    """How to read the body: its Content-Type, then the URL's extension, then the bytes themselves."""
    from summarize_cli.inputs.formats import EXTENSIONS

    if fetched.content_type in CONTENT_TYPES:
        return CONTENT_TYPES[fetched.content_type]
    for url in (fetched.final_url, fetched.url):
        suffix = PurePosixPath(urlsplit(url).path).suffix.lower()
        if suffix in EXTENSIONS:
            return EXTENSIONS[suffix]
    head = fetched.data[:1024].lstrip().lower()
    if head.startswith(b"%pdf"):
        return "pdf"
    if head.startswith((b"<!doctype html", b"<html")) or b"<body" in head:
        return "html"
    if fetched.content_type.startswith("text/") or (not fetched.content_type and _looks_like_text(fetched.data)):
        return "text"
    what = fetched.content_type or "unknown type"
    raise InputError(f"not a document summarize can read ({what})")


def _looks_like_text(data: bytes) -> bool:
    sample = data[:4096]
    return bool(sample) and b"\x00" not in sample


def url_relpath(url: str) -> Path:
    """Where a URL's summary goes under --output-dir: HOST/PATH, each part safe on every file system
    (no `..`, nothing Windows refuses, bounded length); the query is kept so two pages differ."""
    parts = urlsplit(url)
    host = _safe(parts.hostname or "host") + (f"_{parts.port}" if parts.port else "")
    segments = [_safe(unquote(s)) for s in parts.path.split("/") if s not in ("", ".", "..")]
    if not segments or parts.path.endswith("/"):
        segments.append("index")
    if parts.query:
        segments[-1] = _safe(f"{segments[-1]}_{unquote(parts.query)}")
    return Path(host, *segments)


def _safe(segment: str) -> str:
    cleaned = _WINDOWS_REFUSES.sub("_", segment).strip(" .") or "_"
    if cleaned.upper().split(".")[0] in {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10))} | {
        f"LPT{i}" for i in range(1, 10)
    }:
        cleaned = "_" + cleaned
    return cleaned[:_MAX_SEGMENT]
