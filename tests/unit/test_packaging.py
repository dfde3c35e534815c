"""The declared dependency floors are the ones CI tests (.ci/lowest.txt)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.version import Version

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ("langchain-core", "httpx", "pydantic")


def floors() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    out = {}
    for spec in project["dependencies"]:
        match = re.match(r"([A-Za-z0-9_.-]+)\s*>=\s*([0-9][^,;\s]*)", spec)
        if match:
            out[match.group(1).lower()] = match.group(2)
    return out


def pins() -> dict[str, str]:
    out = {}
    for raw in (ROOT / ".ci" / "lowest.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            out[name.strip().lower()] = version.strip()
    return out


def test_lowest_constraints_pin_each_runtime_dependency_to_its_declared_floor():
    declared, pinned = floors(), pins()
    for name in RUNTIME:
        assert name in declared, f"{name} has no >= floor in pyproject.toml"
        assert name in pinned, f"{name} is not pinned in .ci/lowest.txt"
        assert Version(pinned[name]) == Version(declared[name]), (
            f"{name}: pyproject.toml says >={declared[name]}, "
            f".ci/lowest.txt pins {pinned.get(name)}"
        )


def test_the_linters_that_judge_the_code_are_pinned_exactly():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    test_extra = project["optional-dependencies"]["test"]
    for tool in ("ruff", "mypy"):
        (spec,) = [s for s in test_extra if re.match(rf"{tool}\b", s)]
        assert re.fullmatch(rf"{tool}==[0-9.]+", spec.split(";")[0].strip()), spec


def contributing_layers() -> dict[str, set[str]]:
    """What each module may import, from CONTRIBUTING.md's layout table."""
    text = (ROOT / "CONTRIBUTING.md").read_text()
    layers = {}
    for line in text.splitlines():
        row = re.match(r"\| `langchain_jockey/(\w+)\.py` \|.*\| (.+) \|$", line)
        if row:
            layers[row.group(1)] = set(re.findall(r"`(\w+)`", row.group(2)))
    return layers


def _package_imports(path: Path) -> set[str]:
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "langchain_jockey":
                names.update(alias.name for alias in node.names)
            elif node.module.startswith("langchain_jockey."):
                names.add(node.module.split(".")[1])
    return names


def test_each_layer_imports_only_what_contributing_md_allows():
    package = ROOT / "langchain_jockey"
    layers = contributing_layers()
    modules = {p.stem for p in package.glob("*.py")} - {"__init__", "_version"}
    assert set(layers) == modules, "every module has one row in CONTRIBUTING.md"
    for name, allowed in layers.items():
        found = _package_imports(package / f"{name}.py")
        assert found <= allowed, f"{name} imports {found - allowed}"
    for path in (package / "emulator").glob("*.py"):
        assert _package_imports(path) <= {"emulator", "_media"}, path
    web = re.search(
        r"\| `langchain_jockey/web/` \|.*\| (.+) \|$",
        (ROOT / "CONTRIBUTING.md").read_text(),
        re.MULTILINE,
    )
    assert web, "langchain_jockey/web/ has a row in CONTRIBUTING.md"
    allowed = set(re.findall(r"`(\w+)`", web.group(1)))
    for path in (package / "web").glob("*.py"):
        assert _package_imports(path) <= allowed, path
