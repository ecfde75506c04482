"""One record schema: a Result or Problem becomes a row and back here, for the sinks, the cache and Ray."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from summarize_cli.documents import Document, Problem, Result

# every Result field but the document it summarises, in the order records show them
RESULT_FIELDS = tuple(f.name for f in fields(Result) if f.name != "document")
# bumped whenever what the cache keeps changes meaning (2: warnings no longer carry the document's name)
CACHE_SCHEMA = 4  # 3: trimmed, passthrough and sections; 4: sent_tokens
# what a cached result keeps: the fields that depend on the text and settings only, not on this run
CACHED_FIELDS = (
    "summary",
    "input_tokens",
    "sent_tokens",
    "chunks",
    "truncated",
    "warnings",
    "unknown_share",
    "trimmed",
    "passthrough",
    "sections",
)


def to_row(item: Result | Problem) -> dict:
    """A plain dict of built-in types that carries a Result or Problem whole (Ray's transport)."""
    if isinstance(item, Problem):
        return {"source": item.source, "reason": item.reason, "skipped": item.skipped}
    document = item.document
    return {
        "source": document.source,
        "relpath": None if document.relpath is None else str(document.relpath),
        "final_url": document.final_url,
        "language": document.language,
        "language_confidence": document.language_confidence,
        "routable": document.routable,
        **{name: getattr(item, name) for name in RESULT_FIELDS},
    }


def from_row(row: dict) -> Result | Problem:
    """The inverse of to_row."""
    if "reason" in row:
        return Problem(row["source"], row["reason"], skipped=row["skipped"])
    relpath = row.get("relpath")
    document = Document(
        row["source"],
        "",
        None if relpath is None else Path(relpath),
        final_url=row.get("final_url"),
        language=row.get("language"),
        language_confidence=row.get("language_confidence"),
        routable=bool(row.get("routable")),
    )
    return Result(document=document, **{name: row[name] for name in RESULT_FIELDS if name in row})


def cache_value(result: Result) -> dict:
    return {name: getattr(result, name) for name in CACHED_FIELDS}


def from_cache(document: Document, value: dict) -> Result:
    """A cached result for `document`: made in an earlier run, so it took no time in this one."""
    return Result(document=document, seconds=0.0, cached=True, **{name: value[name] for name in CACHED_FIELDS})


def to_record(result: Result, run_info: dict) -> dict:
    """The public, machine-readable form of one result (json, jsonl, --output files)."""
    from summarize_cli.sentences import sentences

    combined = {} if result.sources is None else {"sources": result.sources}
    return {
        **combined,
        "source": result.source,
        "final_url": result.document.final_url,
        "language": result.document.language,
        "language_confidence": result.document.language_confidence,
        "summary": result.summary,
        **(result.run_info or run_info),
        "input_tokens": result.input_tokens,
        "chunks": result.chunks,
        "truncated": result.truncated,
        "trimmed": result.trimmed,
        "passthrough": result.passthrough,
        "sentences": sentences(result.summary),
        "sections": result.sections,
        "unknown_token_share": result.unknown_share,
        "warnings": result.warnings,
        "seconds": result.seconds,
        "cached": result.cached,
    }
