#!/usr/bin/env python3
"""Speed of `summarize` against the naive one-generate()-per-document loop, as whole processes.

usage: python benchmarks/bench.py [--docs 16] [--repeat 1] [--work DIR] [--skip-naive] [--skip-ray] [--flat N]
                                  [--only-extractive] [--only-ray] [--only-speed]

Uses ../shared/bench/ (make_model.py builds a random-weight model of t5-small's exact shape, corpus.jsonl
holds news-length documents, baseline.py is the naive loop). Every variant summarises the same documents
with the summary length forced equal (--min-length 60 --max-length 60) and the input truncated to 512
tokens, and is timed from process start to exit (imports, model load and all documents). Prints a
Markdown table; peak RSS is the process's maximum resident set size.

Also printed: `--version` beside a bare `python -c pass`, `--help` beside a bare Typer app with as many
options, the engine floor (CTranslate2's translate_batch alone, everything loaded, with malloc set as our
runs set it: no change above the engine can beat it on this machine), a flat-throughput run (--flat N
documents in one process), and the extractive method (--method extractive: no model) on the same
documents, beside the model's rows (--only-extractive measures that row alone, in seconds: the rest takes
many minutes).

--only-speed measures the rows of the whole-process-against-the-engine targets alone, interleaved: each
repetition runs our process, then the engine floor (translate_batch alone, everything loaded), so a shared
machine's load falls on both alike; medians of --repeat (at least 5) runs, with CPU time beside wall time.
Beside each floor, the same layout's first call after its load (the call the floor's process warms with):
what the engine alone costs a whole process, which makes one first call, before any of ours. Beside
ours, a bare process (the least that summarises: imports, both loads, encode, queue, print) and the
engine alone as a process (import ctranslate2, load, the floor's one call on input encoded beforehand,
exit without teardown): what no process that summarises can beat.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "bench"
OUT_TOKENS = 60


def run_measured(cmd: list[str], stdin: Path | None = None, env: dict | None = None) -> tuple[float, float]:
    """Wall time and this child's own peak RSS (os.wait4 reports it per child)."""
    wall, rss, _ = run_timed(cmd, stdin, env)
    return wall, rss


def run_timed(cmd: list[str], stdin: Path | None = None, env: dict | None = None) -> tuple[float, float, float]:
    """Wall time, this child's own peak RSS and its CPU time (os.wait4 reports both per child)."""
    with open(stdin or os.devnull, "rb") as feed:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=feed, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{err.decode(errors='replace')[-2000:]}")
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def median_run(cmd, repeat, stdin=None, env=None) -> tuple[float, float]:
    results = [run_measured(cmd, stdin, env) for _ in range(repeat)]
    return statistics.median(r[0] for r in results), max(r[1] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--work", type=Path, default=ROOT / "bench-out")
    parser.add_argument("--skip-naive", action="store_true", help="leave out the slow naive loop")
    parser.add_argument("--skip-ray", action="store_true", help="leave out the local Ray run")
    parser.add_argument("--flat", type=int, default=1000, help="documents in the flat-throughput run (0: none)")
    parser.add_argument("--only-extractive", action="store_true", help="measure the extractive row alone")
    parser.add_argument("--only-ray", action="store_true", help="measure the Ray rows alone")
    parser.add_argument("--only-speed", action="store_true", help="measure the rows against the engine floor alone")
    args = parser.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"needs {SHARED} (make_model.py, corpus.jsonl, baseline.py)")
    args.work.mkdir(parents=True, exist_ok=True)
    # measured as an installed package runs: pip compiles its modules at install, while an editable tree
    # under PYTHONDONTWRITEBYTECODE=1 (set on these machines) recompiles every changed module at every start
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "summarize_cli")],
        check=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
        stdout=subprocess.DEVNULL,
    )
    corpus = args.work / f"corpus-{args.docs}.jsonl"
    lines = (SHARED / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[: args.docs]
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = {**os.environ, "SUMMARIZE_CACHE_DIR": str(args.work / "cache"), "HF_HUB_OFFLINE": "1"}
    if args.only_extractive:
        _print_table([_extractive_row(args, corpus, env, None)])
        return
    model = args.work / "t5-small-random"
    if not (model / "model.safetensors").is_file():
        print("building the t5-small-shaped model ...", file=sys.stderr)
        subprocess.run(
            [sys.executable, str(SHARED / "make_model.py"), str(SHARED / "corpus.jsonl"), str(model), "small"],
            check=True,
            capture_output=True,
        )
    summarize = [sys.executable, "-m", "summarize_cli", "-m", str(model), "-q"]
    forced = ["--min-length", str(OUT_TOKENS), "--max-length", str(OUT_TOKENS), "--long", "truncate"]
    batch = [*summarize, *forced, "--stdin-format", "jsonl", "-f", "jsonl", "--no-cache"]
    if args.only_ray:
        _print_table(_ray_rows(args, model, summarize, forced, env))
        return
    docs = [json.loads(line) for line in lines]
    one = min(docs, key=lambda d: abs(len(d["text"].split()) - 650))
    article = args.work / "one-article.txt"
    article.write_text(one["text"], encoding="utf-8")
    if args.only_speed:
        rows = _speed_rows(args, model, article, corpus, env)
        if args.flat:  # the same columns: a flat run has no floor of its own, its CPU time is not taken
            workload, name, wall, rate, _, _ = _flat_throughput(args, batch, env)
            rows.append((workload, name, wall, "", f"{rate} docs/s", ""))
        _print_machine()
        _print_table(rows, cpu=True)
        return

    shutil.rmtree(args.work / "cache", ignore_errors=True)

    started = time.perf_counter()
    run_measured([*summarize, str(article), "--max-length", "5", "--no-cache"], env=env)  # convert once
    conversion = time.perf_counter() - started

    rows = []
    naive_rate: dict[int, float | None] = {}
    for beams in (4, 1):
        variants = {}
        if not args.skip_naive:
            naive_env = {**env, "BEAMS": str(beams), "N": str(args.docs), "OUT_TOKENS": str(OUT_TOKENS)}
            variants["naive loop (baseline.py naive)"] = [
                sys.executable,
                str(SHARED / "baseline.py"),
                str(model),
                str(corpus),
                "naive",
            ]
        variants["summarize --backend torch"] = [*batch, "--num-beams", str(beams), "--backend", "torch"]
        variants["summarize (default: ctranslate2 int8)"] = [*batch, "--num-beams", str(beams)]
        base = None
        for name, cmd in variants.items():
            run_env = naive_env if "baseline" in cmd[1] else env
            wall, rss = median_run(cmd, args.repeat, None if "baseline" in cmd[1] else corpus, run_env)
            rate = args.docs / wall
            base = base or (rate if name.startswith("naive") else None)
            naive_rate[beams] = base
            ratio = f"{rate / base:.1f}x" if base else "n/a"
            rows.append(
                (
                    f"{args.docs} docs, {beams} beam{'s' if beams > 1 else ''}",
                    name,
                    f"{wall:.1f} s",
                    f"{rate:.2f}",
                    ratio,
                    f"{rss:.0f}",
                )
            )
            print(rows[-1], file=sys.stderr)
    rows.append(_extractive_row(args, corpus, env, naive_rate.get(4)))
    print(rows[-1], file=sys.stderr)

    if _has("ray") and not args.skip_ray:
        rows.extend(_ray_rows(args, model, summarize, forced, env))

    one_off = [*summarize, str(article), "--min-length", str(OUT_TOKENS), "--max-length", str(OUT_TOKENS), "--no-cache"]
    entry = str(Path(sys.executable).with_name("summarize"))  # the installed console script, as users run it
    bare_typer = args.work / "bare_typer.py"
    bare_typer.write_text(_bare_typer_app(_option_count()), encoding="utf-8")
    for name, cmd in (
        ("one-off, 650 words, map-reduce (default)", one_off),
        ("one-off, 650 words, --long truncate", [*one_off, "--long", "truncate"]),
        ("summarize --version", [entry, "--version"]),
        ("python -c pass (bare interpreter)", [sys.executable, "-c", "pass"]),
        ("summarize --help", [entry, "--help"]),
        (f"bare Typer app with {_option_count()} options, --help", [sys.executable, str(bare_typer), "--help"]),
    ):
        wall, rss = median_run(cmd, max(args.repeat, 5), env=env)
        rows.append(("single process", name, f"{wall:.2f} s", "", "", f"{rss:.0f}"))
        print(rows[-1], file=sys.stderr)

    floor = _engine_floor(args.work / "cache", model, article, corpus)
    one, many = floor["truncate"], floor["batch"]
    floor_one = "translate_batch alone: the article, truncated, one replica of every core"
    rows.append(("single process", floor_one, f"{one:.2f} s", "", "", ""))
    floor_reduce = "translate_batch alone: the article's chunks as one batch, then the reduce pass"
    rows.append(("single process", floor_reduce, f"{floor['map-reduce']:.2f} s", "", "", ""))
    base = naive_rate.get(4)
    ratio = f"{args.docs / many / base:.1f}x" if base else "n/a"
    name = f"translate_batch alone: {args.docs} docs, 4 beams, a replica of one thread per core"
    rows.append((f"{args.docs} docs, 4 beams", name, f"{many:.1f} s", f"{args.docs / many:.2f}", ratio, ""))
    print(*rows[-3:], sep="\n", file=sys.stderr)

    if args.flat:
        rows.append(_flat_throughput(args, batch, env))
        print(rows[-1], file=sys.stderr)

    _print_machine()
    print(f"One-time CTranslate2 conversion of the model (int8): {conversion:.1f} s\n")
    _print_table(rows)


def _print_machine() -> None:
    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPUs ({_cpu_name()}), Python {platform.python_version()}")
    print(f"Versions: {_versions()}")


def _print_table(rows: list[tuple], cpu: bool = False) -> None:
    if cpu:
        print("| workload | variant | wall time (median) | CPU time | against the floor | peak RSS (MB) |")
    else:
        print("| workload | variant | wall time | docs/s | vs naive | peak RSS (MB) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def _extractive_row(args, corpus: Path, env: dict, naive: float | None) -> tuple:
    """The same documents summarised by --method extractive (no model, no torch), as a whole process."""
    cmd = [sys.executable, "-m", "summarize_cli", "--method", "extractive", "-q", "--no-cache"]
    cmd += ["--stdin-format", "jsonl", "-f", "jsonl"]
    wall, rss = median_run(cmd, max(args.repeat, 3), corpus, env)
    rate = args.docs / wall
    ratio = f"{rate / naive:.1f}x" if naive else ""
    name = "summarize --method extractive (no model)"
    return (f"{args.docs} docs", name, f"{wall:.2f} s", f"{rate:.2f}", ratio, f"{rss:.0f}")


DRIVER_CPU = """import atexit, os, resource, sys


def said():
    used = resource.getrusage(resource.RUSAGE_SELF)
    with open(os.environ["DRIVER_CPU_FILE"], "w") as out:
        out.write(str(used.ru_utime + used.ru_stime))


atexit.register(said)
from summarize_cli.cli.app import main

sys.argv = ["summarize", *sys.argv[1:]]
main()
"""


def _loopback_only(cmd: list[str]) -> list[str]:
    """Ray registers the machine's other address even when told 127.0.0.1: where we may (root), run it in
    a private network namespace where only loopback exists."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return cmd
    return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *cmd]


def _ray_rows(args, model: Path, summarize: list[str], forced: list[str], env: dict) -> list[tuple]:
    """64 documents (a .jsonl dataset: Ray Data reads it in its workers) through --ray beside one process
    on the bench model; then the driver's own CPU time per extra row, parquet in and --output parquet out,
    20,000 rows against 5,000, on a tiny model: what caps a cluster's rate is the driver's work per row."""
    rows = []
    full = args.work / "corpus-64.jsonl"
    full.write_text("\n".join((SHARED / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:64]) + "\n")
    for name, extra in (("summarize (default, one process)", []), ("summarize --ray (local Ray, Ray Data)", ["--ray"])):
        cmd = [*summarize, *forced, "--num-beams", "4", "-f", "jsonl", "--no-cache", str(full), *extra]
        wall, rss = median_run(_loopback_only(cmd) if extra else cmd, args.repeat, None, env)
        rows.append(("64 docs, 4 beams", name, f"{wall:.1f} s", f"{64 / wall:.2f}", "", f"{rss:.0f}"))
        print(rows[-1], file=sys.stderr)
    tiny = args.work / "tiny-t5"
    if not (tiny / "config.json").is_file():
        os.environ["SUMMARIZE_TEST_NETNS"] = "entered"  # conftest's helpers only: no namespace for the bench
        sys.path.insert(0, str(ROOT / "tests"))
        from conftest import build_tiny_t5

        build_tiny_t5(tiny, [json.loads(line)["text"] for line in full.read_text().splitlines()])
    import pyarrow as pa
    import pyarrow.parquet as pq

    cpu = {}
    for count in (5_000, 20_000):
        data = args.work / f"rows-{count}.parquet"
        texts = [f"Row {i}: the harbour ferry returns on Monday, the council said." for i in range(count)]
        pq.write_table(pa.table({"id": [f"r{i}" for i in range(count)], "text": texts}), data)
        out = args.work / f"rows-{count}.summaries.parquet"
        cpu_file = args.work / "driver-cpu.txt"
        cmd = [sys.executable, "-c", DRIVER_CPU, str(data), "--output", str(out), "--ray", "-m", str(tiny)]
        cmd += ["--max-length", "4", "--min-length", "1", "--num-beams", "1", "--force", "-q", "--no-cache"]
        started = time.perf_counter()
        subprocess.run(_loopback_only(cmd), env={**env, "DRIVER_CPU_FILE": str(cpu_file)}, check=True)
        wall = time.perf_counter() - started
        cpu[count] = float(cpu_file.read_text())
        assert pq.read_metadata(out).num_rows == count
        print(f"{count} rows: driver CPU {cpu[count]:.2f} s, wall {wall:.1f} s", file=sys.stderr)
    per_row = (cpu[20_000] - cpu[5_000]) / 15_000 * 1000
    rows.append(
        (
            "parquet in, --output parquet",
            f"--ray driver CPU per extra row (20,000 vs 5,000 rows: {cpu[20_000]:.2f} s vs {cpu[5_000]:.2f} s)",
            f"{per_row:.3f} ms",
            "",
            "",
            "",
        )
    )
    print(rows[-1], file=sys.stderr)
    return rows


def _option_count() -> int:
    from typer.main import get_command

    from summarize_cli.cli.app import app

    return len([p for p in get_command(app).commands["summarize"].params if p.param_type_name == "option"])


def _bare_typer_app(options: int) -> str:
    """A Typer app with as many options as `summarize`, and nothing else: the floor for --help."""
    params = ",\n    ".join(f'o{i}: Annotated[str, typer.Option(help="Option {i}.")] = "x"' for i in range(options))
    return (
        "from typing import Annotated\n\nimport typer\n\napp = typer.Typer()\n\n\n@app.command()\n"
        f"def main(\n    {params},\n) -> None:\n    pass\n\n\napp()\n"
    )


FLAT_CYCLE = 50  # corpus documents the flat run cycles through: every block of 100 holds the same work


def _flat_throughput(args, batch: list[str], env: dict) -> tuple:
    """N documents (the corpus's first FLAT_CYCLE, repeated, each made distinct) in one run: documents per
    second over the last 100 against the whole run's rate, and over each block of 100. Every block holds
    the same documents, so a rate that moves is the tool's (caches, windows, files), not the corpus's: a
    cycle of the whole corpus (64) gave blocks of different lengths, and rates from 5.0 to 6.8 a second."""
    lines = (SHARED / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:FLAT_CYCLE]
    feed = args.work / f"flat-{args.flat}.jsonl"
    with feed.open("w", encoding="utf-8") as out:
        for i in range(args.flat):
            record = json.loads(lines[i % len(lines)])
            out.write(json.dumps({"id": f"d{i}", "text": f"Edition {i}. {record['text']}"}) + "\n")
    stamps, seconds = [], []
    with open(feed, "rb") as source:
        started = time.perf_counter()
        proc = subprocess.Popen([*batch, "--num-beams", "1"], stdin=source, stdout=subprocess.PIPE, env=env)
        for line in proc.stdout:
            stamps.append(time.perf_counter() - started)
            seconds.append(json.loads(line).get("seconds", 0.0))  # a problem record has none
        proc.wait()
    # each record's seconds is its share of the wall time its batch added (from the batch before it done),
    # so a block's sum is the time the block took. Its output comes in bursts of up to a window (32 at
    # once, seconds apart), and rates between output stamps inside bursts ran 0.78 to 1.3 times the true
    # one: blocks of 100 measured by their stamps alternated 6.5 and 8.8 a second on the same work.
    overall = len(stamps) / stamps[-1]
    tail = 100 / sum(seconds[-100:]) if len(seconds) > 100 else float("nan")  # as before: no tail of a short run
    blocks = [100 / sum(seconds[i : i + 100]) for i in range(0, len(seconds) - 99, 100)]
    print("flat blocks of 100 (docs/s):", ", ".join(f"{b:.2f}" for b in blocks), file=sys.stderr)
    spread = f"blocks of 100 {min(blocks):.2f} to {max(blocks):.2f}" if blocks else "no full block"
    return (
        f"{len(stamps)} docs, greedy",
        f"flat throughput: last 100 at {tail:.2f} docs/s, overall {overall:.2f} ({tail / overall - 1:+.0%}); {spread}",
        f"{stamps[-1]:.1f} s",
        f"{overall:.2f}",
        "",
        "",
    )


def _speed_rows(args, model: Path, article: Path, corpus: Path, env: dict) -> list[tuple]:
    """Our whole processes against the engine floor, interleaved repetition by repetition: the batch (16
    documents, 4 beams, truncated), the one-off truncated and map-reduced (its chunks as one batch, then the
    reduce pass), then --version and --help beside their bare floors. Medians; CPU time is the child's."""
    summarize = [sys.executable, "-m", "summarize_cli", "-m", str(model), "-q", "--no-cache"]
    forced = ["--min-length", str(OUT_TOKENS), "--max-length", str(OUT_TOKENS)]
    batch = [*summarize, *forced, "--long", "truncate", "--stdin-format", "jsonl", "-f", "jsonl", "--num-beams", "4"]
    one_off = [*summarize, str(article), *forced]
    run_measured([*summarize, str(article), "--max-length", "5"], env=env)  # converted once, if not yet
    ours: dict[str, list[tuple[float, float, float]]] = {"batch": [], "truncate": [], "map-reduce": []}
    floor: dict[str, list[float]] = {"batch": [], "truncate": [], "map-reduce": []}
    cache = env["SUMMARIZE_CACHE_DIR"]
    bare_commands = {
        "batch": _bare_process(cache, model, corpus, "batch"),
        "truncate": _bare_process(cache, model, article, "truncate"),
    }
    bare: dict[str, list[tuple[float, float, float]]] = {name: [] for name in bare_commands}
    alone_commands = {
        "batch": _engine_process(cache, model, corpus, "batch", args.work),
        "truncate": _engine_process(cache, model, article, "truncate", args.work),
    }
    alone: dict[str, list[tuple[float, float, float]]] = {name: [] for name in alone_commands}
    bare_env = _openmp_env(env, spins=True)  # the short spin our process sets itself
    spinning: dict[str, list[float]] = {"truncate": [], "map-reduce": []}
    first_call: dict[str, list[float]] = {"batch": [], "truncate": []}
    from summarize_cli.model.backends import widest_kernels

    wide = widest_kernels() == "AVX512"  # ours runs CTranslate2's kernels in AVX-512: the floor does too
    as_it_comes: dict[str, list[float]] = {"batch": [], "truncate": [], "map-reduce": []}  # its own AVX2
    for _ in range(max(args.repeat, 5)):
        ours["batch"].append(run_timed(batch, corpus, env))
        ours["truncate"].append(run_timed([*one_off, "--long", "truncate"], None, env))
        ours["map-reduce"].append(run_timed(one_off, None, env))
        for name, command in bare_commands.items():
            bare[name].append(run_timed(command, None, bare_env))
        for name, command in alone_commands.items():
            alone[name].append(run_timed(command, None, bare_env))
        seconds = _engine_floor(cache, model, article, corpus)
        for name in floor:
            floor[name].append(seconds[name])
        for name in first_call:
            first_call[name].append(seconds["first"][name])
        seconds = _engine_floor(cache, model, article, corpus, layout="spinning")
        for name in spinning:
            spinning[name].append(seconds[name])
        if wide:
            seconds = _engine_floor(cache, model, article, corpus, isa="AVX2")
            for name in as_it_comes:
                as_it_comes[name].append(seconds[name])
        print(
            {k: round(v[-1][0], 2) for k, v in ours.items()},
            {k: round(v[-1][0], 2) for k, v in bare.items()},
            {k: round(v[-1], 2) for k, v in floor.items()},
            {k: round(v[-1], 2) for k, v in spinning.items()},
            file=sys.stderr,
        )
    rows = []
    labels = {
        "batch": (f"{args.docs} docs, 4 beams", f"summarize, {args.docs} docs, truncated"),
        "truncate": ("one-off, 650 words", "summarize --long truncate"),
        "map-reduce": ("one-off, 650 words", "summarize (map-reduce, the default)"),
    }
    for name, (workload, variant) in labels.items():
        base = statistics.median(floor[name])
        rows.append(_against_floor(workload, variant, ours[name], base, name == "batch"))
        if name in bare:
            label = f"bare process ({name}): imports, both loads, encode, queue, print"
            rows.append(_against_floor(workload, label, bare[name], base, name == "batch"))
        if name in alone:
            label = f"the engine alone as a process ({name}): import, load, one call on encoded input, exit"
            rows.append(_against_floor(workload, label, alone[name], base, name == "batch"))
        layout = "a replica of one thread per core" if name == "batch" else "one replica of every core, as ours"
        rows.append((workload, f"translate_batch alone ({name}, {layout})", f"{base:.2f} s", "", "", ""))
        if name in first_call:
            label = f"translate_batch alone ({name}, the same layout's first call after its load)"
            first = statistics.median(first_call[name])
            against = f"{base / first:.0%} of its speed" if name == "batch" else f"{first - base:+.2f} s"
            rows.append((workload, label, f"{first:.2f} s", "", against, ""))
        if name in spinning:
            label = f"translate_batch alone ({name}, the same, spinning as long as libgomp's default)"
            rows.append((workload, label, f"{statistics.median(spinning[name]):.2f} s", "", "", ""))
        if wide:  # the engine as it comes, without the kernels our process picks: where ours stands to it
            label = f"translate_batch alone ({name}, the same, CTranslate2's own AVX2 kernels)"
            other = statistics.median(as_it_comes[name])
            wall = statistics.median(r[0] for r in ours[name])
            against = f"ours at {other / wall:.0%} of its speed" if name == "batch" else f"ours {wall - other:+.2f} s"
            rows.append((workload, label, f"{other:.2f} s", "", against, ""))
    entry = str(Path(sys.executable).with_name("summarize"))
    bare_typer = args.work / "bare_typer.py"
    bare_typer.write_text(_bare_typer_app(_option_count()), encoding="utf-8")
    pairs = (
        (
            "summarize --version",
            [entry, "--version"],
            "python -c pass (bare interpreter)",
            [sys.executable, "-c", "pass"],
        ),
        (
            "summarize --help",
            [entry, "--help"],
            "bare Typer app, as many options, --help",
            [sys.executable, str(bare_typer), "--help"],
        ),
    )
    for name, cmd, bare_name, bare in pairs:
        runs = {name: [], bare_name: []}
        for _ in range(max(args.repeat, 5)):
            runs[name].append(run_timed(cmd, None, env))
            runs[bare_name].append(run_timed(bare, None, env))
        for label, measured in runs.items():
            wall = statistics.median(r[0] for r in measured)
            cpu = statistics.median(r[2] for r in measured)
            rows.append(
                ("single process", label, f"{wall:.2f} s", f"{cpu:.2f} s", "", f"{max(r[1] for r in measured):.0f}")
            )
    return rows


def _against_floor(workload: str, label: str, measured: list, base: float, as_ratio: bool) -> tuple:
    """A row of whole-process runs (wall, RSS, CPU): medians, the peak RSS, and how they stand to the floor."""
    wall = statistics.median(r[0] for r in measured)
    cpu = statistics.median(r[2] for r in measured)
    against = f"{base / wall:.0%} of its speed" if as_ratio else f"{wall - base:+.2f} s"
    return (workload, label, f"{wall:.2f} s", f"{cpu:.2f} s", against, f"{max(r[1] for r in measured):.0f}")


_FLOOR = """
import json, sys, threading, time
from summarize_cli.model.backends import keep_freed_memory, widest_kernels
keep_freed_memory()  # the allocator as our process sets it: a floor our runs could not beat by tuning it
widest_kernels()  # and CTranslate2's kernels as ours picks them (AVX-512 where the CPU has it)
import ctranslate2
from summarize_cli.model.tokenizer import TextTokenizer
from pathlib import Path
folder, model, article, corpus, cores, tokens, layout = sys.argv[1:8]
cores, tokens = int(cores), int(tokens)
tok = TextTokenizer.from_dir(Path(model))
prefix = tok.encode("summarize: ").ids
def source(text):
    return [tok.id_to_token(i) for i in tok.wrap(prefix, tok.encode(text).ids[: 512 - 1 - len(prefix)])]
options = dict(beam_size=4, length_penalty=2.0, no_repeat_ngram_size=3, min_decoding_length=tokens,
               max_decoding_length=tokens, max_input_length=0)
# One-offs run as ours does on an idle machine, on one replica of every core; "ours" spins briefly at its
# barriers (the parent sets GOMP_SPINCOUNT as our process does), "spinning" spins as long as libgomp does
# unless told otherwise. The batch ("ours" only) runs on a replica of one thread per core. Made in a
# thread, as our process makes them: made in the main thread, their OpenMP threads outnumber the cores.
def make(intra, inter):
    made = []
    maker = threading.Thread(target=lambda: made.append(ctranslate2.Translator(folder, device="cpu",
        compute_type="int8", intra_threads=intra, inter_threads=inter)))
    maker.start()
    maker.join()
    return made[0]
engine = make(cores, 1)
def run(batch):
    return engine.translate_batch(batch, **options)
first = [source(open(article, encoding="utf-8").read())]
started = time.perf_counter()
run(first)  # warm
first_call = {"truncate": time.perf_counter() - started}
times = []
for _ in range(3):
    started = time.perf_counter()
    run(first)
    times.append(time.perf_counter() - started)
# the map-reduce one-off as the pipeline makes it: its chunks as one batch, then the reduce pass
from summarize_cli.inputs.language import Detector
from summarize_cli.run.chunker import split_tokens
text = open(article, encoding="utf-8").read()
budget = tok.model_max_length - tok.special_count - len(prefix)
encoded = tok.encode(text)
chunks = [[tok.id_to_token(i) for i in tok.wrap(prefix, encoded.ids[a:b])]
          for a, b in split_tokens(encoded, text, budget, Detector.detect(text).language)]
def ids(result):
    return [tok.token_to_id(t) for t in result.hypotheses[0] if t != "</s>"]
reduce_times = []
for _ in range(3):
    started = time.perf_counter()
    mapped = run(chunks)
    spent = time.perf_counter() - started
    joined = tok.encode(" ".join(tok.decode(ids(r)) for r in mapped)).ids[:budget]
    started = time.perf_counter()
    run([[tok.id_to_token(i) for i in tok.wrap(prefix, joined)]])
    reduce_times.append(spent + time.perf_counter() - started)
found = {"truncate": sorted(times)[1], "map-reduce": sorted(reduce_times)[1]}
if layout == "ours":
    del engine
    replicas = make(1, cores)
    docs = [source(json.loads(line)["text"]) for line in open(corpus, encoding="utf-8")]
    started = time.perf_counter()
    replicas.translate_batch(docs, max_batch_size=4, **options)  # warm: every replica, every buffer
    first_call["batch"] = time.perf_counter() - started
    started = time.perf_counter()
    replicas.translate_batch(docs, max_batch_size=4, **options)
    found["batch"] = time.perf_counter() - started
found["first"] = first_call  # each layout's first call after its load: what a whole process pays
print(json.dumps(found))
"""


_BARE = """
import json, sys, threading
from summarize_cli.model.backends import keep_freed_memory, widest_kernels
keep_freed_memory()  # the allocator as our process sets it
widest_kernels()  # and CTranslate2's kernels
import ctranslate2
from tokenizers import Tokenizer
folder, model, source_file, cores, tokens, mode = sys.argv[1:7]
cores, tokens = int(cores), int(tokens)
one = mode == "truncate"
loaded = []
replicas = 1 if one else cores  # as ours on an idle machine: a one-off on one replica of every core
loading = threading.Thread(target=lambda: loaded.append(ctranslate2.Translator(folder, device="cpu",
    compute_type="int8", intra_threads=cores // replicas, inter_threads=replicas)))
loading.start()  # the model loads (native, without the GIL) while the tokenizer loads
tok = Tokenizer.from_file(model + "/tokenizer.json")
prefix = tok.encode("summarize: ", add_special_tokens=False).ids
def source(text):
    ids = prefix + tok.encode(text, add_special_tokens=False).ids[: 512 - 1 - len(prefix)]
    return [tok.id_to_token(i) for i in ids] + ["</s>"]
options = dict(beam_size=4, length_penalty=2.0, no_repeat_ngram_size=3, min_decoding_length=tokens,
               max_decoding_length=tokens, max_input_length=0, asynchronous=True)
if one:
    batches = [[source(open(source_file, encoding="utf-8").read())]]
else:
    texts = [json.loads(line)["text"] for line in open(source_file, encoding="utf-8")]
    batches = [[source(t) for t in texts[:8]], texts[8:]]  # the first 8 queued before the rest are encoded
pending = []
for number, batch in enumerate(batches):
    batch = batch if number == 0 else [source(t) for t in batch]
    if number == 0:
        loading.join()
    pending += loaded[0].translate_batch(batch, max_batch_size=-(-len(batch) // replicas), **options)
for result in pending:
    print(tok.decode([tok.token_to_id(t) for t in result.result().hypotheses[0]]))
"""


_ALONE = """
import ctypes, json, os, sys, threading, types
folder, encoded, cores, tokens, mode, malloc, kernels = sys.argv[1:8]
cores, tokens = int(cores), int(tokens)
if kernels:  # CTranslate2's kernels as our process picks them (model.backends.widest_kernels)
    os.environ["CT2_FORCE_CPU_ISA"] = kernels
libc = ctypes.CDLL(None)  # malloc as our process sets it (model.backends.keep_freed_memory), in C
for parameter, value in json.loads(malloc):  # model.backends._KEPT_SETTINGS
    libc.mallopt(parameter, value)
sys.modules["asyncio"] = types.ModuleType("asyncio")  # ctranslate2 imports it for a method never called
import ctranslate2
one = mode == "truncate"
replicas = 1 if one else cores
loaded = []
loading = threading.Thread(target=lambda: loaded.append(ctranslate2.Translator(folder, device="cpu",
    compute_type="int8", intra_threads=cores // replicas, inter_threads=replicas)))
loading.start()
with open(encoded, encoding="utf-8") as f:
    batch = json.load(f)
loading.join()
results = loaded[0].translate_batch(batch, max_batch_size=0 if one else 4, beam_size=4, length_penalty=2.0,
    no_repeat_ngram_size=3, min_decoding_length=tokens, max_decoding_length=tokens, max_input_length=0)
sys.stdout.write(f"{sum(len(r.hypotheses[0]) for r in results)}\\n")
sys.stdout.flush()
os._exit(0)  # no teardown: the engine's buffers and the interpreter are left to the kernel
"""


def _engine_process(cache: Path | str, model: Path, source: Path, mode: str, work: Path) -> list[str]:
    """The least any whole process can do for this work, as a command: the floor's call in a process of
    its own, on input already encoded (as the floor's tokens, written here), with nothing of Python's but
    importing ctranslate2 and loading the model in a thread, and no teardown. What it costs above the
    floor is what the engine costs a start; no process that summarises can be faster."""
    from summarize_cli.model.backends import _KEPT_SETTINGS, widest_kernels
    from summarize_cli.model.tokenizer import TextTokenizer

    folder, cores = _converted(cache, model)
    tok = TextTokenizer.from_dir(model)
    prefix = tok.encode("summarize: ").ids
    if mode == "truncate":
        texts = [source.read_text(encoding="utf-8")]
    else:
        texts = [json.loads(line)["text"] for line in source.read_text(encoding="utf-8").splitlines()]
    batch = [
        [tok.id_to_token(i) for i in tok.wrap(prefix, tok.encode(text).ids[: 512 - 1 - len(prefix)])] for text in texts
    ]
    encoded = work / f"encoded-{mode}.json"
    encoded.write_text(json.dumps(batch), encoding="utf-8")
    settings = [cores, str(OUT_TOKENS), mode, json.dumps(list(_KEPT_SETTINGS.items())), widest_kernels() or ""]
    return [sys.executable, "-c", _ALONE, folder, str(encoded), *settings]


def _converted(cache: Path | str, model: Path) -> tuple[str, str]:
    """The folder of this model's int8 conversion in `cache` (beside any other), and the core count."""
    from summarize_cli.model.backends import ct2_backend, physical_cores
    from summarize_cli.model.source import resolve_model

    os.environ["SUMMARIZE_CACHE_DIR"] = str(cache)
    folder = ct2_backend.converted_dir(resolve_model(str(model), offline=True), "int8")
    return str(folder), str(physical_cores())


def _bare_process(cache: Path | str, model: Path, source: Path, mode: str) -> list[str]:
    """The least a whole process can do for the same work, as a command: import the engine and the
    tokenizer, load both side by side, encode, queue the batches as soon as they are encoded, print."""
    folder, cores = _converted(cache, model)
    return [sys.executable, "-c", _BARE, folder, str(model), str(source), cores, str(OUT_TOKENS), mode]


def _engine_floor(
    cache: Path | str, model: Path, article: Path, corpus: Path, layout: str = "ours", isa: str | None = None
) -> dict[str, float]:
    """CTranslate2's translate_batch alone, in a process that has already loaded everything: what no
    change above the engine can beat on this machine (4 beams, the model's own settings). `layout` "ours"
    is our process's on an idle machine (one-offs on one replica of every core whose threads spin briefly,
    the batch on a replica of one thread per core); "spinning" runs the one-offs with libgomp's own spin.
    `isa`: CTranslate2's kernels as told (CT2_FORCE_CPU_ISA), where not as our process picks them."""
    folder, cores = _converted(cache, model)
    env = _openmp_env(os.environ, spins=layout == "ours")
    if isa is not None:
        env["CT2_FORCE_CPU_ISA"] = isa
    out = subprocess.run(
        [sys.executable, "-c", _FLOOR, folder, str(model), str(article), str(corpus), cores, str(OUT_TOKENS), layout],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return json.loads(out.stdout)


def _openmp_env(base: dict | os._Environ, spins: bool) -> dict[str, str]:
    """`base` without any OpenMP wait setting, then with our short spin where `spins`: the bench imports
    ct2_backend, which sets it in its own process, and no child may inherit what it is compared by."""
    from summarize_cli.model.backends.ct2_backend import SHORT_SPIN

    env = {k: v for k, v in base.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    if spins:
        env["GOMP_SPINCOUNT"] = SHORT_SPIN
    return env


def _has(module: str) -> bool:
    from importlib.util import find_spec

    return find_spec(module) is not None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    for name in ("torch", "transformers", "ctranslate2", "tokenizers", "ray"):
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name} missing")
    return ", ".join(parts)


if __name__ == "__main__":
    main()
