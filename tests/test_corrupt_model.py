"""A corrupt weights file (an interrupted copy or download) is one line naming it, and nothing is remembered
against the model: the repaired file converts and runs."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from conftest import run

from summarize_cli.dirs import cache_dir

ARTICLE = "The council met on Tuesday. It voted to build a park. Residents welcomed the plan. Work starts soon.\n"


@pytest.fixture
def broken_model(tiny_model, tmp_path):
    """A copy of the tiny model whose model.safetensors lost its second half; `repair()` puts it back
    byte for byte with its old mtime, so the folder's fingerprint (and its conversion's folder) is as before."""
    folder = tmp_path / "tiny-copy"
    shutil.copytree(tiny_model, folder)
    weights = folder / "model.safetensors"
    whole, stat = weights.read_bytes(), weights.stat()
    weights.write_bytes(whole[: len(whole) // 2])
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    def repair() -> None:
        weights.write_bytes(whole)
        os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    return folder, len(whole), repair


def unsupported_markers() -> list[str]:
    return sorted(p.name for p in (cache_dir() / "ctranslate2").glob("*.unsupported-*"))


def test_a_truncated_safetensors_is_one_line_and_marks_nothing(broken_model, tmp_path, monkeypatch):
    folder, size, repair = broken_model
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.txt").write_text(ARTICLE, encoding="utf-8")
    weights = folder / "model.safetensors"
    before = unsupported_markers()
    for backend in ("auto", "ctranslate2", "torch"):
        result = run(["-q", "-m", str(folder), "--backend", backend, "a.txt"])
        assert result.exit_code == 1, (backend, result.stderr)
        assert result.stderr.splitlines() == [
            f"Error: {weights} is corrupt or incomplete ({size // 2} bytes where its header needs {size}); "
            "copy or download the model again"
        ], backend
        assert result.stdout == ""
    assert unsupported_markers() == before
    repair()
    fixed = run(["-q", "-m", str(folder), "-f", "json", "a.txt"])
    assert fixed.exit_code == 0, fixed.stderr
    [record] = json.loads(fixed.stdout)
    assert record["backend"] == "ctranslate2" and record["summary"]
    assert unsupported_markers() == before


def test_a_converter_failure_on_unreadable_weights_is_not_remembered(tiny_model, tmp_path, monkeypatch):
    """Past the header check (a file damaged inside its data), the converter's safetensors error is the
    file's fault, not CTranslate2's: an error, and no marker sending later runs to torch."""
    from safetensors import SafetensorError

    from summarize_cli.errors import ModelLoadError
    from summarize_cli.model.backends import ct2_backend
    from summarize_cli.model.source import resolve_model

    def fail(self, *args, **kwargs):
        raise SafetensorError("Error while deserializing header: invalid data")

    monkeypatch.setattr("ctranslate2.converters.TransformersConverter.convert", fail)
    source = resolve_model(str(tiny_model))
    with pytest.raises(ModelLoadError) as raised:
        ct2_backend._convert_into(source, "int8", tmp_path / "out")
    assert type(raised.value) is ModelLoadError
    assert str(raised.value) == (
        f"cannot read the weights of '{source.name}': Error while deserializing header: invalid data "
        "(copy or download the model again)"
    )


def test_a_weights_link_whose_blob_is_gone_is_one_line(tiny_model, tmp_path, monkeypatch):
    """The Hugging Face cache links a snapshot's files to its blobs: a removed blob leaves a dangling link,
    which is named in one line, as a damaged file is (it had been an "unexpected FileNotFoundError"), and
    SUMMARIZE_DEBUG=1 shows the error's traceback rather than blaming standard output."""
    folder = tmp_path / "linked"
    shutil.copytree(tiny_model, folder)
    weights = folder / "model.safetensors"
    weights.unlink()
    weights.symlink_to(tmp_path / "blobs" / "gone")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.txt").write_text(ARTICLE, encoding="utf-8")
    result = run(["-q", "-m", str(folder), "a.txt"])
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"Error: {weights} is corrupt or incomplete (it cannot be read: No such file or directory); "
        "copy or download the model again\n"
    )
