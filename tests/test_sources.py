"""Finding inputs and decoding them."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from summarize_cli.documents import Document, Problem
from summarize_cli.errors import SkippedInput as InputError
from summarize_cli.inputs.decoding import decode_bytes
from summarize_cli.inputs.sources import InputFile, discover, read_documents

ZH = "城市绿地帮助居民度过炎热夏天。研究人员在全市设置了六十个温度监测点，连续记录了三个夏季的数据。"
EN = "Café owners in Zürich said the new rules were naïve, and the mayor agreed with them. " * 2


def tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return root


def names(items) -> list[str]:
    return [i.display if isinstance(i, InputFile) else f"!{i.source}" for i in items]


def test_folder_walk_is_recursive_sorted_and_skips_hidden(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tree(
        tmp_path,
        {
            "d/b.txt": "b",
            "d/a.md": "a",
            "d/sub/c.txt": "c",
            "d/.hidden.txt": "h",
            "d/.git/x.txt": "x",
            "d/z.pdf.bin": "z",
            "d/notes.rst": "r",
        },
    )
    items = list(discover(["d"]))
    assert names(items) == [str(Path("d/a.md")), str(Path("d/b.txt")), str(Path("d/sub/c.txt"))]
    assert [i.relpath for i in items] == [Path("d/a.md"), Path("d/b.txt"), Path("d/sub/c.txt")]


def test_include_and_exclude_globs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tree(tmp_path, {"d/a.txt": "a", "d/b.rst": "b", "d/drafts/c.rst": "c", "d/keep/d.rst": "d"})
    items = list(discover(["d"], include=["*.rst"], exclude=["drafts"]))
    assert names(items) == [str(Path("d/b.rst")), str(Path("d/keep/d.rst"))]


def test_folders_take_known_extensions_in_any_case(tmp_path, monkeypatch):
    """Z.TXT and REPORT.PDF are read when named: a folder holding them takes them too (once skipped)."""
    monkeypatch.chdir(tmp_path)
    tree(tmp_path, {"d/Z.TXT": "z", "d/REPORT.PDF": "p", "d/page.HTML": "h", "d/Notes.Md": "n", "d/x.RST": "r"})
    assert names(discover(["d"])) == [str(Path(f"d/{n}")) for n in ("Notes.Md", "REPORT.PDF", "Z.TXT", "page.HTML")]


@pytest.mark.parametrize(
    ("include", "found"),
    [
        (["**/*.md"], ["d/a.md", "d/sub/b.md", "d/sub/deep/c.md"]),  # ** is zero folders too: a.md is taken
        (["sub/*.md"], ["d/sub/b.md"]),  # * stays within one folder: sub/deep/c.md is not taken
        (["sub/**/*.md"], ["d/sub/b.md", "d/sub/deep/c.md"]),
        (["*.md"], ["d/a.md", "d/sub/b.md", "d/sub/deep/c.md"]),  # no /: the name, at any depth
        (["*.{md,txt}"], ["d/a.md", "d/n.txt", "d/sub/b.md", "d/sub/deep/c.md"]),
    ],
)
def test_include_globs_match_paths_as_globs_do(tmp_path, monkeypatch, include, found):
    monkeypatch.chdir(tmp_path)
    tree(tmp_path, {"d/a.md": "a", "d/n.txt": "n", "d/sub/b.md": "b", "d/sub/deep/c.md": "c"})
    assert names(discover(["d"], include=include)) == [str(Path(f)) for f in found]


def test_exclude_glob_with_a_folder_stays_within_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tree(tmp_path, {"d/a/x.txt": "x", "d/a/b/y.txt": "y", "d/c.txt": "c"})
    assert names(discover(["d"], exclude=["a/*.txt"])) == [str(Path("d/a/b/y.txt")), str(Path("d/c.txt"))]


def test_a_bad_url_or_a_name_with_nul_fails_alone(tmp_path, monkeypatch):
    """A port out of range and a NUL in a name once ended the whole run (ValueError from the URL parser
    and from stat), the inputs before them included."""
    monkeypatch.chdir(tmp_path)
    tree(tmp_path, {"a.txt": "a", "b.txt": "b"})
    items = list(discover(["a.txt", "http://example.com:99999/x", "a.txt\0b.txt", "b.txt"]))
    assert names(items) == ["a.txt", "!http://example.com:99999/x", "!a.txt\\0b.txt", "b.txt"]
    assert items[1].reason == "not a valid URL (Port out of range 0-65535)" and not items[1].skipped
    assert items[2].reason == "the name holds a NUL byte (a NUL-separated list needs -0)"


def test_named_file_is_taken_whatever_its_extension_and_missing_path_is_a_problem(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tree(tmp_path, {"notes.rst": "n"})
    items = list(discover(["notes.rst", "missing.txt", "-"]))
    assert isinstance(items[0], InputFile) and items[0].relpath == Path("notes.rst")
    assert isinstance(items[1], Problem) and "no such file" in items[1].reason and not items[1].skipped
    assert items[2].path is None and items[2].display == "<stdin>"


def test_absolute_path_outside_cwd_mirrors_under_its_folder_name(tmp_path, monkeypatch):
    tree(tmp_path, {"outside/news/a.txt": "a"})
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    items = list(discover([str(tmp_path / "outside" / "news")]))
    assert items[0].relpath == Path("news/a.txt")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_in_folder_is_skipped_without_opening(tmp_path):
    tree(tmp_path, {"a.txt": "a"})
    os.mkfifo(tmp_path / "pipe.txt")
    items = list(discover([str(tmp_path)]))
    assert isinstance(items[0], InputFile)
    assert isinstance(items[1], Problem) and items[1].skipped and "FIFO" in items[1].reason


def test_symlink_loop_is_reported_once(tmp_path):
    tree(tmp_path, {"d/a.txt": "a"})
    (tmp_path / "d" / "loop").symlink_to(tmp_path / "d")
    items = list(discover([str(tmp_path / "d")]))
    assert [type(i) for i in items] == [InputFile, Problem]
    assert "loop" in items[1].reason


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16", "utf-16-le", "utf-16-be"])
def test_chinese_decodes_from_common_encodings(encoding):
    assert decode_bytes(ZH.encode(encoding)) == ZH


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252", "utf-16", "utf-16-le"])
def test_western_text_decodes(encoding):
    assert decode_bytes(EN.encode(encoding)) == EN


@pytest.mark.parametrize("data", [bytes(range(256)) * 8, b"\x89PNG\r\n\x1a\n" + bytes(500), b"text\x00with nul"])
def test_binary_is_refused(data):
    with pytest.raises(InputError, match="^binary file"):
        decode_bytes(data)


def test_read_documents_skips_binary_and_empty_and_keeps_order(tmp_path):
    tree(
        tmp_path,
        {
            "a.txt": "First article.",
            "b.txt": bytes(range(256)) * 4,
            "c.txt": " \n\t\x00 ",
            "d.txt": ZH.encode("gbk"),
        },
    )
    items = list(discover([str(tmp_path)], include=["*.txt"]))
    out = list(read_documents(items))
    assert isinstance(out[0], Document) and out[0].text == "First article."
    assert isinstance(out[1], Problem) and "binary" in out[1].reason
    assert isinstance(out[2], Problem) and out[2].skipped
    assert isinstance(out[3], Document) and out[3].text == ZH


def test_max_input_bytes_refuses_large_file(tmp_path):
    tree(tmp_path, {"big.txt": "word " * 1000})
    out = list(read_documents(discover([str(tmp_path / "big.txt")]), max_input_bytes=100))
    assert isinstance(out[0], Problem) and "--max-input-bytes" in out[0].reason


def test_stdin_jsonl_reports_bad_lines_and_keeps_the_rest():
    lines = [
        json.dumps({"id": "one", "text": "First."}),
        "not json",
        json.dumps({"title": "no text"}),
        "",
        json.dumps({"text": "Second, no id."}),
    ]
    stdin = io.BytesIO(("\n".join(lines) + "\n").encode())
    out = list(read_documents(discover(["-"]), stdin, "jsonl"))
    assert [type(o) for o in out] == [Document, Problem, Problem, Document]
    assert out[0].source == "one"
    assert out[1].source == "<stdin>:2" and out[2].source == "<stdin>:3"  # each bad line named by its number
    assert out[1].reason.startswith("not valid JSON") and out[2].reason == 'no "text" string field'
    assert out[3].source == "<stdin>:5"


def test_stdin_text_is_one_document():
    out = list(read_documents(discover(["-"]), io.BytesIO("Line one.\nLine two.\n".encode("utf-16")), "text"))
    assert len(out) == 1 and out[0].text == "Line one.\nLine two.\n"
