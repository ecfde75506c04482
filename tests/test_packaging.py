"""What pyproject.toml declares: every imported package, a build backend that reads it, one version."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def declared() -> set[str]:
    """Every distribution the project or one of its extras depends on."""
    project = PROJECT["project"]
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    return {_name(r) for r in requirements}


def imported() -> set[str]:
    """The top-level modules summarize_cli imports, lazy imports included, less the standard library."""
    names = set()
    for path in (ROOT / "summarize_cli").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("summarize_cli", "tomli")}


def test_every_imported_package_is_declared():
    """numpy was imported (language detection) but never declared: an install could lack it."""
    owners = packages_distributions()
    missing = {}
    for module in sorted(imported()):
        dists = {_name(d) for d in owners.get(module, [module])}
        if not dists & declared():
            missing[module] = sorted(dists)
    assert missing == {}


def test_the_build_backend_reads_the_license_expression():
    """`license = "MIT"` (an SPDX expression) needs setuptools 77; 68 fails to build."""
    [setuptools] = [r for r in PROJECT["build-system"]["requires"] if _name(r) == "setuptools"]
    assert setuptools == "setuptools>=77"


def test_the_version_is_written_once():
    assert "version" not in PROJECT["project"] and "version" in PROJECT["project"]["dynamic"]
    assert PROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "summarize_cli.__version__"}
