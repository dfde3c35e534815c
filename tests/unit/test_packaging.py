"""The declared dependency floors are the ones CI tests (.ci/lowest.txt)."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.version import Version

import langchain_jockey

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


def _import_graph() -> dict[str, set[str]]:
    """Each module of the package → the package modules it imports.

    Every import counts, wherever it is: `if TYPE_CHECKING:` blocks and
    imports inside functions too. `from a import b`, where `a.b` is a module,
    is an import of `a.b` (a package's `__init__` runs first either way; that
    is not a circle).
    """
    package = ROOT / "langchain_jockey"
    modules = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in modules:
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    found.add(sub if sub in modules else node.module)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name in modules)
        graph[name] = found - {name}
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of `graph`: each a path that comes back to its start."""
    circles, done = [], set()

    def visit(name: str, path: list[str]) -> None:
        for target in sorted(graph[name]):
            if target in path:
                circles.append([*path[path.index(target) :], target])
            elif target not in done:
                visit(target, [*path, target])
        done.add(name)

    for name in sorted(graph):
        if name not in done:
            visit(name, [name])
    return circles


def test_no_module_of_the_package_imports_itself_in_a_circle() -> None:
    # Type-only imports included: a circle of them still ties the modules'
    # meaning together, and one untyped import away from failing at run time.
    graph = _import_graph()
    assert "langchain_jockey.emulator._server" in graph
    assert _circles(graph) == []


def test_the_circle_finder_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _circles(graph) == [["a", "b", "c", "a"]]


def _loaded_after(code: str) -> set[str]:
    """The package's modules loaded by `code`, run in a fresh interpreter."""
    script = (
        f"import sys\n{code}\n"
        "print(' '.join(m for m in sys.modules if m.startswith('langchain_jockey')))"
    )
    result = subprocess.run(  # noqa: S603 - this interpreter, this code
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return set(result.stdout.split())


def test_importing_the_package_loads_no_public_module() -> None:
    loaded = _loaded_after("import langchain_jockey")
    # and the translator of Jockey messages' content blocks, registered at once
    light = {"", "._version", "._blocks", "._output"}
    assert loaded == {f"langchain_jockey{m}" for m in light}


def test_chat_jockey_alone_loads_neither_ingestion_nor_the_tool_nor_the_retriever():
    loaded = _loaded_after("from langchain_jockey import ChatJockey")
    assert "langchain_jockey.chat_models" in loaded
    for module in ("knowledge_stores", "_ingest", "_progress", "tools", "retrievers"):
        assert f"langchain_jockey.{module}" not in loaded, module


def test_every_public_name_resolves_lazily_alike_and_is_listed() -> None:
    names = set(langchain_jockey.__all__)
    assert set(langchain_jockey.errors.__all__) <= names
    assert names == {"__version__", *langchain_jockey._MODULE_OF}
    for name, module in langchain_jockey._MODULE_OF.items():
        assert (
            getattr(langchain_jockey, name).__module__ == f"langchain_jockey.{module}"
        )
        assert name in dir(langchain_jockey)
    for module in langchain_jockey._MODULES:
        public = getattr(langchain_jockey, module)
        assert public is importlib.import_module(f"langchain_jockey.{module}")
        assert module in dir(langchain_jockey)
    star: dict[str, object] = {}
    exec("from langchain_jockey import *", star)  # noqa: S102 - the import itself
    assert names <= set(star)
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        _ = langchain_jockey.Nothing


def test_docs_and_code_cite_no_document_outside_the_repository() -> None:
    # docs/protocol.md is the wire reference; the notes it was written from
    # (a PROTOCOL file and its numbered sections) are not in the repository.
    outside = re.compile(r"PROTOCOL(\.md| §| section)")
    paths = [ROOT / "CONTRIBUTING.md", *(ROOT / "docs").glob("*.md")]
    for folder in ("langchain_jockey", "tests"):
        paths += (ROOT / folder).rglob("*.py")
    cited = [
        p.name
        for p in paths
        if p != Path(__file__) and outside.search(p.read_text(encoding="utf-8"))
    ]
    assert cited == []
