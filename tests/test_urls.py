"""Point it at anything: URLs from a server the tests start on 127.0.0.1, file lists, --extract, and
documents that expand far past their size."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import FAST, run
from test_formats import STORY, docx_bytes, html_page, pdf_bytes

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF_TEXT = "The ferry report says crossings start at seven."


class Site(BaseHTTPRequestHandler):
    """An HTML article, a PDF, plain text, a redirect, a 404, a 500, a slow page, a big body, an image."""

    def do_GET(self):  # noqa: N802 - the http.server API
        path = self.path
        if path.startswith("/article.html"):
            self._send(200, "text/html; charset=utf-8", html_page().encode())
        elif path == "/report":  # no extension: the Content-Type says PDF
            self._send(200, "application/pdf", pdf_bytes([PDF_TEXT]))
        elif path == "/notes.txt":
            self._send(200, "text/plain", STORY.encode())
        elif path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/article.html")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/error":
            self._send(500, "text/plain", b"boom")
        elif path == "/slow":
            time.sleep(3)
            self._send(200, "text/plain", STORY.encode())
        elif path == "/big":  # streamed without a length: the limit is checked while it arrives
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            for _ in range(200):
                self.wfile.write(b"word " * 1000)
        elif path == "/trickle":  # a byte at a time: each wait is short, the whole fetch is not
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            for _ in range(40):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.1)
        elif path == "/logo.png":
            self._send(200, "image/png", PNG)
        else:
            self._send(404, "text/html", b"<h1>Not found</h1>")

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep the test output clean
        pass


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # a client that hung up (the timeout, the size limit)
        pass


@pytest.fixture(scope="module")
def site():
    server = QuietServer(("127.0.0.1", 0), Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_url_prints_its_summary(echo_model, site):
    result = run([f"{site}/article.html", *FAST])
    assert result.exit_code == 0, result.stderr
    extracted = run([f"{site}/article.html", "--extract"])
    assert extracted.exit_code == 0, extracted.stderr
    assert result.stdout == echo_model.summary(extracted.stdout.strip()) + "\n"


def test_good_urls_and_every_failure_in_one_run(echo_model, site):
    refused = f"http://127.0.0.1:{closed_port()}/gone"
    urls = [
        f"{site}/article.html",
        f"{site}/missing",
        f"{site}/report",
        f"{site}/error",
        f"{site}/slow",
        f"{site}/big",
        f"{site}/logo.png",
        refused,
        f"{site}/notes.txt",
    ]
    result = run([*urls, "-f", "jsonl", "--timeout", "1", "--max-input-bytes", "100000", *FAST])
    assert result.exit_code == 1
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["source"] for r in records] == [urls[0], urls[2], urls[8]]
    assert records[1]["summary"] == echo_model.summary(PDF_TEXT)
    assert records[2]["summary"] == echo_model.summary(STORY)
    failures = [line for line in result.stderr.splitlines() if line.startswith("Failed ")]
    assert failures == [
        f"Failed {site}/missing: HTTP 404 Not Found",
        f"Failed {site}/error: HTTP 500 Internal Server Error",
        f"Failed {site}/slow: timed out after 1 s (--timeout)",
        f"Failed {site}/big: larger than --max-input-bytes (100,000 bytes)",
        f"Failed {site}/logo.png: not a document summarize can read (image/png)",
        f"Failed {refused}: connection refused",
    ]
    assert "Traceback" not in result.stderr and "6 inputs failed:" in result.stderr


def test_redirects_are_followed_and_the_final_url_recorded(echo_model, site):
    result = run([f"{site}/moved", "-f", "jsonl", *FAST])
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["source"] == f"{site}/moved" and record["final_url"] == f"{site}/article.html"


def test_urls_under_an_output_folder_go_to_host_and_path(echo_model, site, tmp_path):
    port = site.rsplit(":", 1)[1]
    result = run([f"{site}/article.html", f"{site}/notes.txt", f"{site}/article.html?id=2", "-o", str(tmp_path), *FAST])
    assert result.exit_code == 0, result.stderr
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == [
        f"127.0.0.1_{port}/article.html.summary.txt",
        f"127.0.0.1_{port}/article.html_id=2.summary.txt",
        f"127.0.0.1_{port}/notes.txt.summary.txt",
    ]


def test_a_url_path_can_never_climb_out_of_the_output_folder():
    from pathlib import Path

    from summarize_cli.inputs.fetch import url_relpath

    assert url_relpath("http://example.org/a/../../etc/passwd") == Path("example.org/a/etc/passwd")
    assert url_relpath("https://example.org/") == Path("example.org/index")
    assert url_relpath('http://example.org/we<i>rd:"na|me?q=.txt') == Path("example.org/we_i_rd__na_me_q=.txt")
    assert url_relpath("http://example.org/CON") == Path("example.org/_CON")
    assert all(len(part) <= 100 for part in url_relpath("http://example.org/" + "x" * 500).parts)


def test_jsonl_rows_may_give_a_url(echo_model, site):
    rows = json.dumps({"id": "web", "url": f"{site}/notes.txt"}) + "\n" + json.dumps({"id": "t", "text": STORY})
    result = run(["--stdin-format", "jsonl", "-f", "jsonl", *FAST], input=rows + "\n")
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["source"], r["summary"]) for r in records] == [("web", echo_model.summary(STORY))] * 1 + [
        ("t", echo_model.summary(STORY))
    ]
    assert records[0]["final_url"] == f"{site}/notes.txt"


def test_the_cache_is_keyed_on_the_fetched_text(echo_model, site, tmp_path, monkeypatch):
    monkeypatch.setenv("SUMMARIZE_CACHE_DIR", str(tmp_path / "cache"))
    options = [o for o in FAST if o != "--no-cache"]
    first = json.loads(run([f"{site}/notes.txt", "-f", "jsonl", *options]).stdout)
    second = json.loads(run([f"{site}/notes.txt", "-f", "jsonl", *options]).stdout)
    (tmp_path / "same.txt").write_text(STORY)
    as_file = json.loads(run([str(tmp_path / "same.txt"), "-f", "jsonl", *options]).stdout)
    assert (first["cached"], second["cached"], as_file["cached"]) == (False, True, True)


def test_files_from_with_null_takes_exactly_the_listed_names(echo_model, tmp_path):
    tree = tmp_path / "tree"
    (tree / "sub dir").mkdir(parents=True)
    names = ["plain.txt", "with space.txt", "new\nline.txt", "-dash.txt", "sub dir/ünï.txt"]
    for name in names:
        (tree / name).write_text(f"{name}: {STORY}")
    (tree / "other.md").write_text("Not listed.")
    find = subprocess.run(
        ["find", str(tree), "-name", "*.txt", "-print0"], capture_output=True, check=True, timeout=30
    ).stdout
    result = run(["--files-from", "-", "--null", "-f", "jsonl", *FAST], input=find)
    assert result.exit_code == 0, result.stderr
    sources = sorted(json.loads(line)["source"] for line in result.stdout.splitlines())
    assert sources == sorted(str(tree / name) for name in names)


def test_files_from_a_file_joins_the_command_line_and_fails_missing_entries(echo_model, tmp_path):
    (tmp_path / "a.txt").write_text(STORY)
    (tmp_path / "b.txt").write_text(STORY)
    listing = tmp_path / "list.txt"
    listing.write_text(f"{tmp_path / 'b.txt'}\n\n{tmp_path / 'missing.txt'}\n")
    result = run([str(tmp_path / "a.txt"), "--files-from", str(listing), "-f", "jsonl", *FAST])
    assert result.exit_code == 1
    assert [json.loads(line)["source"] for line in result.stdout.splitlines()] == [
        str(tmp_path / "a.txt"),
        str(tmp_path / "b.txt"),
    ]
    assert f"Failed {tmp_path / 'missing.txt'}: no such file or directory" in result.stderr


def test_extract_prints_the_text_of_every_format_without_a_model(tmp_path, site):
    (tmp_path / "page.html").write_text(html_page())
    (tmp_path / "report.pdf").write_bytes(pdf_bytes([PDF_TEXT]))
    (tmp_path / "memo.docx").write_bytes(docx_bytes(["First paragraph.", "Second paragraph."]))
    (tmp_path / "gbk.txt").write_bytes("城市绿地在周末开放。".encode("gbk"))
    files = [str(tmp_path / n) for n in ("page.html", "report.pdf", "memo.docx", "gbk.txt")]
    code = (
        "import sys; from summarize_cli.cli.app import run; sys.argv = ['summarize', '--extract', '-f', 'jsonl', "
        f"*{files!r}]; assert run() == 0"
    )
    report = "print(sorted(m for m in ('torch', 'transformers', 'ctranslate2') if m in sys.modules), file=sys.stderr)"
    done = subprocess.run(
        [sys.executable, "-c", f"import sys\ntry:\n    {code}\nfinally:\n    {report}"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"SUMMARIZE_MODEL": "no/such-model", "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    texts = {json.loads(line)["source"]: json.loads(line)["text"] for line in done.stdout.splitlines()}
    assert "Night ferry returns to Kellin Bay" in texts[files[0]] and "NAV-MENU-LINK" not in texts[files[0]]
    assert texts[files[1]] == PDF_TEXT
    assert texts[files[2]] == "First paragraph.\n\nSecond paragraph."
    assert texts[files[3]] == "城市绿地在周末开放。"
    assert done.stderr.strip() == "[]"  # no model library was even imported


def test_extract_to_an_output_folder_writes_txt_files(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.md").write_text("# Title\n\nSome *prose*.")
    result = run([str(tmp_path / "in"), "--extract", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.stderr
    [written] = list((tmp_path / "out").rglob("*.txt"))
    assert written.name == "a.md.txt" and written.read_text() == "Title\n\nSome prose.\n"
    assert result.stderr == f"Wrote 1 text to {tmp_path / 'out'}.\n"


def test_a_docx_zip_bomb_and_an_endless_pdf_are_refused(echo_model, tmp_path):
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"<w:p/>" * 2_000_000)  # 12 MB of markup from a few KB
    (tmp_path / "bomb.docx").write_bytes(bomb.getvalue())
    (tmp_path / "long.pdf").write_bytes(pdf_bytes([f"Page {i} of the endless report." for i in range(400)]))
    result = run([str(tmp_path / "bomb.docx"), str(tmp_path / "long.pdf"), "--max-input-bytes", "200000", *FAST])
    assert result.exit_code == 1
    assert (
        f"Failed {tmp_path / 'bomb.docx'}: unpacks to 12,000,000 bytes, past 5 x --max-input-bytes: not read"
        in result.stderr
    )
    small = run([str(tmp_path / "long.pdf"), "--max-input-bytes", "5000", *FAST])
    assert small.exit_code == 1
    assert f"Failed {tmp_path / 'long.pdf'}: " in small.stderr
    assert "--max-input-bytes (5,000 bytes)" in small.stderr


def test_timeout_bounds_the_whole_fetch(echo_model, site):
    started = time.monotonic()
    result = run([f"{site}/trickle", "--timeout", "1", *FAST])
    assert result.exit_code == 1
    assert f"Failed {site}/trickle: timed out after 1 s (--timeout)" in result.stderr
    assert time.monotonic() - started < 3


def test_a_jsonl_row_whose_url_fails_names_the_url(echo_model, site):
    rows = json.dumps({"id": "u2", "url": f"{site}/missing"}) + "\n"
    result = run(["--stdin-format", "jsonl", *FAST], input=rows)
    assert result.exit_code == 1
    assert f"Failed u2: line 1: {site}/missing: HTTP 404 Not Found" in result.stderr


def test_offline_means_no_model_download_and_still_fetches_the_urls_given(echo_model, site):
    """--offline promises what it does: no model download (HF_HUB_OFFLINE=1); a URL named on the command
    line is an input the user asked for and is fetched (its help once said "never touch the network")."""
    import re

    online = run([f"{site}/article.html", *FAST])
    offline = run([f"{site}/article.html", "--offline", *FAST])
    assert offline.exit_code == 0, offline.stderr
    assert offline.stdout == online.stdout and offline.stdout.strip()
    shown = " ".join(re.sub(r"[│╭╰─╮╯]", " ", run(["--help"]).stdout).split())
    assert "--offline Never download a model (as HF_HUB_OFFLINE=1); URL inputs are still fetched." in shown
    assert "never touch the network" not in shown.lower()
