"""HTML, Markdown, PDF and DOCX inputs, and warnings for text the model cannot read."""

from __future__ import annotations

import io
import json
import re
import sys
from importlib.metadata import requires
from pathlib import Path

import pytest
from conftest import FAST, run

from summarize_cli.errors import InputError, SkippedInput
from summarize_cli.inputs.formats import detect, extract

STORY = (
    "The harbour town of Kellin Bay will restore its night ferry next month. The council voted seven to two "
    "to fund an eighteen-month trial. Nurses, cooks and cleaners who work late shifts on the island will "
    "be able to get home safely again."
)


def html_page() -> str:
    paragraphs = "".join(f"<p>{sentence}.</p>" for sentence in STORY.split(". "))
    return f"""<!doctype html><html><head><title>Ferry returns</title>
<style>body {{ color: red; }} .menu {{ display: flex }}</style>
<script>var tracking = "SCRIPT-SECRET"; console.log(tracking);</script></head>
<body><nav class="menu"><a href="/">Home</a> <a href="/news">NAV-MENU-LINK</a></nav>
<main><article><h1>Night ferry returns to Kellin Bay</h1>{paragraphs}</article></main>
<footer>FOOTER-COPYRIGHT 2026 Kellin Bay Gazette. All rights reserved.</footer></body></html>"""


def pdf_bytes(pages: list[str]) -> bytes:
    """A minimal, valid PDF with one text line per page (Helvetica), written by hand."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", None, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for text in pages:
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream.decode()}\nendstream")
        content = len(objects)
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content} 0 R "
            "/Resources << /Font << /F1 3 0 R >> >> >>"
        )
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>"
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n{body}\nendobj\n".encode())
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def docx_bytes(paragraphs: list[str]) -> bytes:
    import docx

    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def test_detect_by_extension_and_override():
    assert [detect(n) for n in ("a.html", "b.HTM", "c.md", "d.pdf", "e.docx", "f.txt", "g.log")] == [
        "html",
        "html",
        "markdown",
        "pdf",
        "docx",
        "text",
        "text",
    ]
    assert detect("a.html", "text") == "text"
    assert detect(None) == "text" and detect(None, "markdown") == "markdown"


def test_html_keeps_the_article_and_drops_page_furniture():
    text = extract(html_page().encode(), "html")
    assert "night ferry next month" in text and "eighteen-month trial" in text
    for noise in ("SCRIPT-SECRET", "NAV-MENU-LINK", "FOOTER-COPYRIGHT", "display: flex"):
        assert noise not in text


def test_markdown_prose_without_markup():
    source = """# Ferry returns

The **council** voted [seven to two](https://example.org/vote) to fund the *trial*.

```python
print("CODE-BLOCK")
```

| Crossing | Time |
| --- | --- |
| First | 19:00 |

- Nurses can get home.
- So can cooks.
"""
    text = extract(source.encode(), "markdown")
    assert "Ferry returns" in text
    assert "The council voted seven to two to fund the trial." in text
    assert "CODE-BLOCK" not in text and "https://" not in text and "**" not in text and "|" not in text
    assert "First, 19:00." in text and "Nurses can get home." in text


def test_pdf_pages_in_order():
    text = extract(pdf_bytes(["First page about the ferry.", "Second page about the council."]), "pdf")
    assert text.index("First page") < text.index("Second page")


def test_pdf_without_text_is_skipped_with_a_reason():
    with pytest.raises(SkippedInput, match="no extractable text"):
        extract(pdf_bytes([""]), "pdf")


def test_encrypted_and_corrupt_pdf_are_failures():
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(io.BytesIO(pdf_bytes(["Secret ferry plans."]))).pages:
        writer.add_page(page)
    writer.encrypt("password")
    locked = io.BytesIO()
    writer.write(locked)
    with pytest.raises(InputError, match="encrypted"):
        extract(locked.getvalue(), "pdf")
    with pytest.raises(InputError, match="corrupt"):
        extract(pdf_bytes(["Ferry."])[:60], "pdf")


def test_docx_paragraphs_in_order_and_corrupt_docx_fails():
    text = extract(docx_bytes(["First paragraph.", "Second paragraph."]), "docx")
    assert text == "First paragraph.\n\nSecond paragraph."
    with pytest.raises(InputError, match="corrupt"):
        extract(b"PK\x03\x04 not really a zip", "docx")


def test_missing_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "pypdf", None)  # makes `import pypdf` fail
    with pytest.raises(SkippedInput, match=r"pip install 'summarize-cli\[formats\]'"):
        extract(pdf_bytes(["x"]), "pdf")


def test_folder_of_mixed_formats_end_to_end(echo_model, tmp_path):
    (tmp_path / "page.html").write_text(html_page())
    (tmp_path / "notes.md").write_text("# Title\n\n" + STORY)
    (tmp_path / "report.pdf").write_bytes(pdf_bytes(["The ferry report says crossings start at seven."]))
    (tmp_path / "memo.docx").write_bytes(docx_bytes([STORY]))
    (tmp_path / "scan.pdf").write_bytes(pdf_bytes([""]))
    (tmp_path / "broken.docx").write_bytes(b"PK\x03\x04broken")
    result = run([str(tmp_path), "-f", "jsonl", *FAST])
    records = [json.loads(line) for line in result.stdout.splitlines()]
    names = [Path(r["source"]).name for r in records]
    assert names == ["memo.docx", "notes.md", "page.html", "report.pdf"]
    # each summary is made from the file's prose, not its bytes or markup
    assert [r["summary"] for r in records] == [
        echo_model.summary(STORY),
        echo_model.summary("Title\n\n" + STORY),
        echo_model.summary(extract(html_page().encode(), "html")),
        echo_model.summary("The ferry report says crossings start at seven."),
    ]
    assert "Skipped" in result.stderr and "scan.pdf" in result.stderr and "no extractable text" in result.stderr
    assert "Failed" in result.stderr and "broken.docx" in result.stderr
    assert result.exit_code == 1


def test_input_format_applies_to_stdin(echo_model):
    result = run(["--input-format", "html", "-f", "jsonl", *FAST], input=html_page())
    assert result.exit_code == 0
    record = json.loads(result.stdout)
    assert record["input_tokens"] < len(html_page()) / 3  # the markup was not summarised
    article = extract(html_page().encode(), "html")
    assert record["input_tokens"] == echo_model.tokenizer.count(article)
    assert record["summary"] == echo_model.summary(article) and record["summary"].startswith("Night ferry")
    as_text = json.loads(run(["--input-format", "text", "-f", "jsonl", *FAST], input=html_page()).stdout)
    assert as_text["summary"] == echo_model.summary(html_page())  # without it, stdin is plain text


@pytest.fixture(scope="session")
def english_model(tmp_path_factory):
    from conftest import SAMPLES, build_tiny_t5

    texts = [
        p.read_text(encoding="utf-8")
        for p in sorted(SAMPLES.iterdir())
        if p.suffix in (".txt", ".md") and p.read_text(encoding="utf-8").isascii()
    ]
    return build_tiny_t5(tmp_path_factory.mktemp("models") / "english-t5", texts, vocab_size=600)


def test_text_the_model_cannot_read_is_measured_and_warned_once(english_model, samples):
    files = [str(samples / "城市绿地.txt"), str(samples / "社区图书馆.txt"), str(samples / "harbour-ferry.txt")]
    result = run([*files, "-m", str(english_model), "-f", "jsonl", *FAST])
    assert result.exit_code == 0
    records = [json.loads(line) for line in result.stdout.splitlines()]
    shares = [r["unknown_token_share"] for r in records]
    assert shares[0] > 0.5 and shares[1] > 0.5 and shares[2] < 0.05
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1
    assert "城市绿地.txt" in warnings[0] and "社区图书馆.txt" in warnings[0] and "harbour" not in warnings[0]
    assert "mT5" in warnings[0]


def test_chinese_without_spaces_is_chunked_by_tokens(tiny_tokenizer):
    from summarize_cli.run.chunker import split_tokens

    tokenizer = tiny_tokenizer
    text = "城市绿地帮助居民度过炎热夏天研究人员在全市设置了六十个温度监测点" * 60  # no punctuation at all
    encoded = tokenizer.encode(text)
    ranges = split_tokens(encoded, text, 100)
    assert len(ranges) >= len(encoded.ids) // 100
    assert all(b - a <= 100 for a, b in ranges)
    pieces = [text[encoded.starts[a] : encoded.ends[b - 1]] for a, b in ranges]
    assert "".join(pieces) == text  # every character is in exactly one chunk


def test_parsers_are_imported_only_when_a_file_needs_them():
    import subprocess

    code = (
        "import sys, summarize_cli.inputs.formats, summarize_cli.inputs.sources\n"
        "print(sorted(m for m in ('trafilatura', 'pypdf', 'docx') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]"


def test_files_whose_parser_is_missing_are_skipped_with_the_install_command(echo_model, tmp_path, monkeypatch):
    (tmp_path / "page.html").write_text(html_page())
    (tmp_path / "report.pdf").write_bytes(pdf_bytes(["The ferry report says crossings start at seven."]))
    (tmp_path / "memo.docx").write_bytes(docx_bytes([STORY]))
    (tmp_path / "notes.txt").write_text(STORY)
    for module in ("trafilatura", "pypdf", "docx"):
        monkeypatch.setitem(sys.modules, module, None)  # as on an install without the [formats] extra
    result = run([str(tmp_path), "-f", "jsonl", *FAST])
    assert result.exit_code == 0, result.stderr  # skipped, not failed: the text file is summarised
    assert [json.loads(line)["summary"] for line in result.stdout.splitlines()] == [echo_model.summary(STORY)]
    for name, needs in [
        ("memo.docx", "DOCX needs python-docx"),
        ("page.html", "HTML needs trafilatura"),
        ("report.pdf", "PDF needs pypdf"),
    ]:
        assert f"Skipped {tmp_path / name}: reading {needs}: pip install 'summarize-cli[formats]'" in result.stderr
    # and the command named installs what is missing: the [formats] extra requires all three
    formats_extra = [r for r in requires("summarize-cli") or [] if re.search(r"extra\s*==\s*.formats.", r)]
    assert {"trafilatura", "pypdf", "python-docx"} <= {re.split(r"[<>=!~;\[ ]", r)[0] for r in formats_extra}
