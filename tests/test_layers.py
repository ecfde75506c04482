"""Imports only run downwards: cli, then scale and quality, then run, then inputs, model and outputs (which
never import each other), then the shared root. Lazy imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

import summarize_cli

LAYERS = [{"cli"}, {"scale", "quality"}, {"run"}, {"inputs", "model", "outputs"}, {"root"}]
RANK = {stage: rank for rank, stages in enumerate(LAYERS) for stage in stages}
PACKAGE = Path(summarize_cli.__file__).parent


def stage_of(module: str, package_root: Path) -> str:
    """summarize_cli.model.engine -> model; summarize_cli.errors -> root; the entry point is the CLI's."""
    parts = module.split(".")[1:]
    if parts == ["__main__"]:
        return "cli"
    if parts and (package_root / parts[0]).is_dir():
        return parts[0]
    return "root"


def is_module(name: str, package_root: Path) -> bool:
    where = package_root.parent.joinpath(*name.split("."))
    return where.with_suffix(".py").is_file() or (where / "__init__.py").is_file()


def imported_modules(path: Path, module: str, package_root: Path) -> set[str]:
    """Every summarize_cli module `path` imports, at the top or inside a function."""
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.add(target)
            found.update(  # `from pkg import module`
                f"{target}.{alias.name}" for alias in node.names if is_module(f"{target}.{alias.name}", package_root)
            )
    return {name for name in found if name == "summarize_cli" or name.startswith("summarize_cli.")}


def upward_imports(package_root: Path) -> list[str]:
    """'a -> b' for each import that runs sideways or upwards between stages."""
    wrong = []
    for path in sorted(package_root.rglob("*.py")):
        relative = path.relative_to(package_root.parent).with_suffix("")
        module = ".".join(relative.parts).removesuffix(".__init__")
        here = stage_of(module, package_root)
        for target in sorted(imported_modules(path, module, package_root)):
            if target == "summarize_cli":
                continue  # the root package itself (__version__)
            there = stage_of(target, package_root)
            if there != here and RANK[there] <= RANK[here]:
                wrong.append(f"{module} ({here}) -> {target} ({there})")
    return wrong


def test_imports_only_run_downwards():
    assert upward_imports(PACKAGE) == []


def test_every_stage_folder_has_a_layer():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert folders == set(RANK) - {"root"}


def test_an_upward_or_sideways_import_is_caught(tmp_path):
    root = tmp_path / "summarize_cli"
    for stage in ("model", "run", "outputs"):
        (root / stage).mkdir(parents=True)
        (root / stage / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "errors.py").write_text("")
    (root / "run" / "build.py").write_text("from summarize_cli.model import engine\nfrom summarize_cli import errors\n")
    (root / "model" / "engine.py").write_text("def later():\n    from summarize_cli.run.build import x\n")
    (root / "outputs" / "sinks.py").write_text("from ..model import engine\n")
    (root / "errors.py").write_text("from summarize_cli.outputs.sinks import y\n")
    assert upward_imports(root) == [
        "summarize_cli.errors (root) -> summarize_cli.outputs.sinks (outputs)",
        "summarize_cli.model.engine (model) -> summarize_cli.run.build (run)",
        "summarize_cli.outputs.sinks (outputs) -> summarize_cli.model (model)",
        "summarize_cli.outputs.sinks (outputs) -> summarize_cli.model.engine (model)",
    ]
