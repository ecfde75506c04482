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


def test_parquet_output_without_pyarrow_is_one_line_with_the_install_command(echo_model, tmp_path, monkeypatch):
    """pyarrow is the [parquet] extra: without it `--output x.parquet` says so in one line, before any model
    loads, and leaves no file behind (it once ended in `unexpected ModuleNotFoundError` and a `.tmp`)."""
    from conftest import FAST, run

    for name in ("pyarrow", "pyarrow.parquet"):
        monkeypatch.setitem(sys.modules, name, None)  # `import pyarrow` now raises ImportError
    (tmp_path / "a.txt").write_text("The harbour ferry returns on Monday, the council said.")
    out = tmp_path / "out" / "all.parquet"
    out.parent.mkdir()
    result = run([str(tmp_path / "a.txt"), "--output", str(out), *FAST])
    assert result.exit_code == 1
    assert result.stderr == "Error: writing Parquet needs pyarrow: pip install 'summarize-cli[parquet]'\n"
    assert list(out.parent.iterdir()) == []


def test_each_documented_extra_is_declared():
    """The README's install commands name extras that exist, and each extra holds what its feature imports."""
    extras = PROJECT["project"]["optional-dependencies"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    named = set(re.findall(r"summarize-cli\[([a-z,]+)\]", readme))
    assert {"formats", "eval", "ray", "parquet"} <= {e for group in named for e in group.split(",")}
    for group in named:
        assert set(group.split(",")) <= set(extras), group
    assert {_name(r) for r in extras["parquet"]} == {"pyarrow"}
    assert "summarize-cli[parquet]" in extras["ray"]  # Ray Data reads and writes Parquet


def test_the_constraints_file_pins_every_dependency_within_what_pyproject_allows():
    """CI installs with -c constraints.txt (the README's test command, run verbatim by .ci/run): each
    declared dependency is pinned there, to a version its pyproject specifier accepts."""
    from packaging.requirements import Requirement
    from packaging.version import Version

    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[_name(name)] = Version(version)
    assert "summarize-cli" not in pins
    project = PROJECT["project"]
    extras = project["optional-dependencies"].values()
    requirements = [*project["dependencies"], *(r for extra in extras for r in extra)]
    for text in requirements:
        requirement = Requirement(text)
        name = _name(requirement.name)
        if name == "summarize-cli" or (requirement.marker and not requirement.marker.evaluate()):
            continue
        assert name in pins, f"{name} is not pinned in constraints.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} vs {text}"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = readme.split("<!-- test-command -->", 1)[1].split("```bash\n", 1)[1].split("\n", 1)[0]
    assert command.count("pip install -c constraints.txt ") == 2, command
