"""The model's load started before the command line is parsed: what the scan reads, and that the run takes
exactly that load, or drops it and loads its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FAST, SAMPLES

from summarize_cli.cli import early
from summarize_cli.specs import usable_cpus

ARTICLE = str(SAMPLES / "harbour-ferry.txt")
DEFAULTS = {"model": "t5-small", "backend": "auto", "device": "auto", "compute_type": "auto", "threads": None}


def test_the_scan_knows_every_option_of_summarize_and_whether_it_takes_a_value():
    """A new option of the command must be classified here, or the scan would read its value as an input."""
    from typer.main import get_command

    from summarize_cli.cli.app import app

    command = get_command(app).commands["summarize"]
    options = [p for p in command.params if p.param_type_name == "option"]
    valued = {name for p in options if not p.is_flag for name in p.opts}
    flags = {name for p in options if p.is_flag for name in [*p.opts, *p.secondary_opts]} | {"-h", "--help"}
    assert valued == early.VALUED
    assert flags == early.FLAGS | (early.NO_LOAD - early.VALUED)
    assert not early.FLAGS & early.NO_LOAD
    from summarize_cli.inputs.sources import DATASET_SUFFIXES

    assert early._DATASETS == DATASET_SUFFIXES  # a file of rows is many inputs, as the run counts them


@pytest.fixture
def place(tmp_path, monkeypatch):
    """One article, two more in a subfolder, one in another (beside a hidden file), a JSONL file and a file
    list; no config file."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SUMMARIZE_CONFIG", str(tmp_path / "no-config.toml"))
    Path("a.txt").write_text("One article.")
    Path("docs").mkdir()
    Path("docs/b.txt").write_text("B.")
    Path("docs/c.txt").write_text("C.")
    Path("solo").mkdir()
    Path("solo/d.txt").write_text("D.")
    Path("solo/.hidden").write_text("skipped by the walk")
    Path("rows.jsonl").write_text('{"text": "x"}\n')
    Path("list.txt").write_text("a.txt\n")
    return tmp_path


@pytest.mark.parametrize(
    ("argv", "piped", "expected"),
    [
        (["a.txt"], False, {"one_document": True}),
        (["-m", "some/model", "a.txt"], False, {"model": "some/model", "one_document": True}),
        (["--model=./m", "-q", "--no-cache", "a.txt"], False, {"model": "./m", "one_document": True}),
        (["a.txt", "--threads", "1", "--device", "cpu"], False, {"threads": 1, "device": "cpu", "one_document": True}),
        (
            ["--backend", "ctranslate2", "--compute-type", "int8_float32", "a.txt"],
            False,
            {"backend": "ctranslate2", "compute_type": "int8_float32", "one_document": True},
        ),
        (["--num-beams", "a.txt", "docs"], False, {"one_document": False}),  # a.txt is the beams' value
        (["docs"], False, {"one_document": False}),
        (["solo"], False, None),  # one entry the walk reads: the run decides (a one-off) and loads once
        (["a.txt", "docs/b.txt"], False, {"one_document": False}),
        (["rows.jsonl"], False, {"one_document": False}),
        (["--files-from", "list.txt"], False, {"one_document": False}),
        (["https://example.org/article"], False, {"one_document": True}),
        ([], True, {"one_document": True}),
        (["-"], True, {"one_document": True}),
        (["--stdin-format", "jsonl"], True, {"one_document": False}),
        (["-f", "jsonl", "--", "a.txt"], False, {"one_document": True}),
        (["--method", "abstractive", "-o", "out", "a.txt"], False, {"one_document": True}),
        ([], False, None),  # nothing piped in: the run says so, with no model
        (["missing.txt"], False, None),  # one problem and no document: the run loads nothing
        (["--help"], False, None),
        (["a.txt", "-h"], False, None),
        (["--version"], False, None),
        (["eval", "rows.jsonl"], False, None),
        (["--offline", "eval", "rows.jsonl"], False, None),
        (["config"], False, None),
        (["--ray", "a.txt"], False, None),
        (["--ray-address", "auto", "a.txt"], False, None),
        (["--extract", "a.txt"], False, None),
        (["--clear-cache", "a.txt"], False, None),
        (["--method", "extractive", "a.txt"], False, None),
        (["--backend", "torch", "a.txt"], False, None),
        (["-qv", "a.txt"], False, None),  # combined short flags: not read
        (["-mmodel", "a.txt"], False, None),
        (["-m=model", "a.txt"], False, None),
        (["--threads", "many", "a.txt"], False, None),
        (["--threads", "0", "a.txt"], False, None),
        (["--threads", str(usable_cpus() + 1), "a.txt"], False, None),  # refused by the run: no load of them
        (["--threads", str(usable_cpus()), "a.txt"], False, {"threads": usable_cpus(), "one_document": True}),
        (["a.txt", "-m"], False, None),  # a value missing: Click's usage error, with no model
        (["--no-such-option", "a.txt"], False, None),
    ],
)
def test_what_the_scan_reads_off_a_command_line(place, argv, piped, expected):
    found = early.guess(argv, {}, stdin_is_terminal=not piped)
    assert found == (None if expected is None else {**DEFAULTS, **expected})


def test_the_model_variable_and_the_config_file(place):
    assert early.guess(["a.txt"], {"SUMMARIZE_MODEL": "env/model"}, False)["model"] == "env/model"
    assert early.guess(["-m", "flag/model", "a.txt"], {"SUMMARIZE_MODEL": "env/model"}, False)["model"] == "flag/model"
    config = Path(os.environ["SUMMARIZE_CONFIG"])
    config.write_text('format = "jsonl"\nnum-beams = 2\n')  # nothing the scan reads
    assert early.guess(["a.txt"], {}, False) == {**DEFAULTS, "one_document": True}
    for line in (
        'model = "x/y"',
        "threads = 2",
        'device = "cpu"',
        "ray = true",
        'method = "extractive"',
        'files-from = "l"',
    ):
        config.write_text(line + "\n")
        assert early.guess(["a.txt"], {}, False) is None, line
    config.write_text("not toml [")
    assert early.guess(["a.txt"], {}, False) is None


PROBE = """
import atexit, json, sys
from summarize_cli.model.backends import ct2_backend
made = []
class Counted(ct2_backend.Translator):
    def __init__(self, *args, **kwargs):
        made.append({"typer imported": "typer" in sys.modules, "one document": args[5]})
        super().__init__(*args, **kwargs)
ct2_backend.Translator = Counted
atexit.register(lambda: print(json.dumps(made), file=sys.stderr))
sys.argv = ["summarize", *sys.argv[1:]]
from summarize_cli.cli.entry import main
main()
"""


def probe(args: list[str], cache: Path) -> tuple[list[dict], dict]:
    env = {**os.environ, "SUMMARIZE_CACHE_DIR": str(cache)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args, "-f", "jsonl", *FAST], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    *_, made = done.stderr.splitlines()
    records = [json.loads(line) for line in done.stdout.splitlines()]
    return json.loads(made), {r["source"]: {**r, "seconds": 0} for r in records}


@pytest.fixture(scope="module")
def converted(tiny_model, tmp_path_factory) -> Path:
    """A result cache holding the tiny model's conversion: nothing is loaded early before one exists."""
    cache = tmp_path_factory.mktemp("early") / "cache"
    probe(["-m", str(tiny_model), ARTICLE], cache)
    return cache


def test_a_run_takes_the_load_started_before_typer_was_imported(tiny_model, converted, monkeypatch):
    """One load, made before Typer was imported, and the run's records are those of a run without it."""
    from conftest import run

    cache = converted
    args = ["-m", str(tiny_model), ARTICLE]
    made, records = probe(args, cache)
    assert made == [{"typer imported": False, "one document": True}]
    monkeypatch.setenv("SUMMARIZE_CACHE_DIR", str(cache))
    plain = run([*args, "-f", "jsonl", *FAST])  # in-process, through Typer alone: no early load
    assert plain.exit_code == 0
    assert records == {r["source"]: {**r, "seconds": 0} for r in map(json.loads, plain.stdout.splitlines())}


def test_a_wrong_guess_is_dropped_and_the_run_loads_its_own(tiny_model, converted, tmp_path):
    """A folder of an article and a file the walk does not read is one input, where the scan (which reads
    only the folder's first two names) guessed many: the run loads for one."""
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "a.txt").write_text(Path(ARTICLE).read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    cache = converted
    made, records = probe(["-m", str(tiny_model), str(folder)], cache)
    assert made == [{"typer imported": False, "one document": False}, {"typer imported": True, "one document": True}]
    _, alone = probe(["-m", str(tiny_model), str(folder / "a.txt")], cache)
    assert [r["summary"] for r in records.values()] == [r["summary"] for r in alone.values()]


@pytest.mark.parametrize("hidden", [False, True], ids=["alone", "beside-a-hidden-file"])
def test_a_folder_of_one_article_loads_once(tiny_model, converted, tmp_path, hidden):
    """One entry (hidden ones aside, as the walk skips them): no early guess, the run's own one load."""
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "a.txt").write_text(Path(ARTICLE).read_text(encoding="utf-8"), encoding="utf-8")
    if hidden:
        (folder / ".DS_Store").write_bytes(b"\0")
    made, records = probe(["-m", str(tiny_model), str(folder)], converted)
    assert made == [{"typer imported": True, "one document": True}]
    assert list(records) == [str(folder / "a.txt")]


def test_a_folder_of_two_articles_is_guessed_many_and_loads_once(tiny_model, converted, tmp_path):
    folder = tmp_path / "two"
    folder.mkdir()
    for name in ("a.txt", "b.txt"):
        (folder / name).write_text(Path(ARTICLE).read_text(encoding="utf-8"), encoding="utf-8")
    made, records = probe(["-m", str(tiny_model), str(folder)], converted)
    assert made == [{"typer imported": False, "one document": False}]
    assert sorted(records) == [str(folder / "a.txt"), str(folder / "b.txt")]


def test_no_early_load_before_the_model_is_converted(tiny_model, tmp_path):
    made, _ = probe(["-m", str(tiny_model), ARTICLE], tmp_path / "cache")
    assert made == [{"typer imported": True, "one document": True}]


STALLED_START = """
import os, sys, time
from pathlib import Path
class Stall:  # the import of STALL_AT waits, as a slow disk or a loaded machine makes it wait
    def find_spec(self, name, path=None, target=None):
        if name == os.environ["STALL_AT"]:
            sys.meta_path.remove(self)
            Path(os.environ["STALL_MARK"]).touch()
            time.sleep(1.5)
        return None
sys.meta_path.insert(0, Stall())
sys.argv = ["summarize", *sys.argv[1:]]
from summarize_cli.cli.entry import main
main()
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("stall_at", ["ctranslate2", "typer"])
def test_a_signal_during_the_start_is_said_and_exits_130_or_143(tiny_model, converted, tmp_path, signum, stall_at):
    """A signal that comes while the start imports (the early load's ctranslate2, then Typer) is noted
    and acted on once the run can say it: a signal raised inside an import had left a traceback, or
    CTranslate2 half imported (taken for absent: the torch backend), or Python's import lock held."""
    cache = converted  # converted: the early load imports ctranslate2
    mark = tmp_path / "stalled"
    env = {**os.environ, "SUMMARIZE_CACHE_DIR": str(cache), "STALL_AT": stall_at, "STALL_MARK": str(mark)}
    command = [sys.executable, "-c", STALLED_START, "-m", str(tiny_model), ARTICLE, *FAST]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not mark.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert mark.exists(), proc.communicate()
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    expected = (130, "Interrupted.\n") if signum == signal.SIGINT else (143, "Terminated.\n")
    assert (proc.returncode, err, out) == (*expected, "")
