"""The docs notebooks' API reference sections, made from the code, and their runs.

    python -m tests.docs.refresh            # rewrite each page's "API reference"
    python -m tests.docs.refresh --execute  # also run each notebook and save it

Each public class has one page (`PAGES`). Its markdown cell starting "## API
reference" lists the public methods and properties langchain-jockey defines for
the class, with their docstrings' first lines, then names the LangChain base
class and its Runnable methods. `tests/docs/test_pages.py` checks that the cell
is what this script writes now.

`execute` runs a notebook the way CI does: in a kernel of this interpreter,
without any TwelveLabs key or base URL (so the notebooks use the built-in
emulator), with the data, cache, IPython and Jupyter directories in a temporary
directory (nothing is written under the home directory).
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from pydantic import BaseModel

import langchain_jockey

DOCS = Path(__file__).resolve().parents[2] / "docs"

PAGES = {
    "ChatJockey": "chat.ipynb",
    "JockeyTool": "tool.ipynb",
    "KnowledgeStoreRetriever": "retriever.ipynb",
    "KnowledgeStore": "knowledge_store.ipynb",
}

HEADING = "## API reference"
GENERATED = (
    "Made from the code by `python -m tests.docs.refresh`; "
    "`tests/docs/test_pages.py` checks it is current."
)
KERNEL = "langchain-jockey-docs"
# Keyless: the notebooks then use the emulator, as the quickstart does. The
# planner keys would let an example pick a paid model instead of the scripted one.
UNSET = (
    "TWELVE_LABS_API_KEY",
    "TWELVELABS_API_KEY",
    "TWELVE_LABS_BASE_URL",
    "TWELVELABS_BASE_URL",
    "TWELVE_LABS_KNOWLEDGE_STORE_ID",
    "TWELVELABS_KNOWLEDGE_STORE_ID",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
)
# The Runnable methods every page names (not their docstrings: those are
# LangChain's, and change with its releases).
INTERFACE = ("invoke", "ainvoke", "stream", "astream", "batch", "abatch", "run", "arun")
TIMEOUT = 120  # seconds per cell: generous; a cell takes well under one


# -- the API reference ----------------------------------------------------------


def _first_line(obj: Any) -> str:
    doc = inspect.getdoc(obj.fget if isinstance(obj, property) else obj) or ""
    return doc.strip().split("\n\n", 1)[0].replace("\n", " ").strip()


def _members(cls: type, owner: type) -> list[tuple[str, str]]:
    """`(name, first line)` of the public methods and properties `cls` has from `owner`.

    `owner` is one class of `cls`'s MRO; a name counts for the first class of
    the MRO that defines it, as Python looks it up. Pydantic's own model API
    (`model_copy`, `dict`, the `model_post_init` hook) is left out.
    """
    found = []
    for name in sorted(vars(owner)):
        if name.startswith("_") or hasattr(BaseModel, name):
            continue
        if next(c for c in cls.__mro__ if name in vars(c)) is not owner:
            continue
        raw = vars(owner)[name]
        if isinstance(raw, property):
            found.append((f"`{name}` (property)", _first_line(raw)))
        elif isinstance(raw, (classmethod, staticmethod)) or inspect.isfunction(raw):
            found.append((f"`{name}()`", _first_line(getattr(cls, name))))
    return found


def _ordered(rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Alphabetical, each async twin (`aadd`) right after its sync method (`add`)."""
    names = {label.split("`")[1] for label, _ in rows}

    def key(row: tuple[str, str]) -> tuple[str, int]:
        name = row[0].split("`")[1]
        if name.startswith("a") and name[1:] in names:
            return (name[1:], 1)
        return (name, 0)

    return sorted(rows, key=key)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _table(rows: list[tuple[str, str]]) -> list[str]:
    lines = ["| Method | What it does |", "| --- | --- |"]
    lines += [f"| {label} | {_cell(line)} |" for label, line in rows]
    return lines


def _fields(cls: type) -> list[str]:
    """The settings (pydantic fields) langchain-jockey's classes declare."""
    if not issubclass(cls, BaseModel):
        return []
    ours = set()
    for base in cls.__mro__:
        if base.__module__.startswith("langchain_jockey"):
            ours.update(getattr(base, "__annotations__", {}))
    return [name for name in cls.model_fields if name in ours]


def api_reference(name: str) -> str:
    """The markdown of the "API reference" cell of the class `name`'s page."""
    cls = getattr(langchain_jockey, name)
    ours = [c for c in cls.__mro__ if c.__module__.startswith("langchain_jockey")]
    core = next(
        (c for c in cls.__mro__ if c.__module__.startswith("langchain_core")), None
    )
    lines = [
        HEADING,
        "",
        GENERATED,
        "",
        f"`from langchain_jockey import {name}`: {_first_line(cls)}",
    ]
    if fields := _fields(cls):
        settings = ", ".join(f"`{f}`" for f in fields)
        lines += ["", f"Settings (constructor arguments): {settings}."]
    rows = _ordered([row for owner in ours for row in _members(cls, owner)])
    if rows:
        lines += ["", "Methods and properties of langchain-jockey:", "", *_table(rows)]
    if core is not None:
        runnable = ", ".join(f"`{m}()`" for m in INTERFACE if hasattr(cls, m))
        where = f"{core.__module__}.{core.__name__}"
        sentence = (
            f"And, as a LangChain `{core.__name__}`, the Runnable interface: "
            f"{runnable}, and the rest of `{where}`."
        )
        lines += ["", sentence]
    return "\n".join(lines)


def reference_cell(notebook: Any) -> Any:
    """The notebook's markdown cell that starts with `HEADING`."""
    cells = [
        cell
        for cell in notebook.cells
        if cell.cell_type == "markdown" and cell.source.startswith(HEADING)
    ]
    if len(cells) != 1:
        msg = f"expected one markdown cell starting {HEADING!r}, found {len(cells)}"
        raise ValueError(msg)
    return cells[0]


# -- running a notebook ---------------------------------------------------------


@contextlib.contextmanager
def _kernel_home() -> Iterator[dict[str, str]]:
    """The kernel's environment, and a kernel spec for this interpreter.

    The spec names `sys.executable`, so the notebook runs in the Python that
    runs the tests (the virtual environment's), whatever kernels the machine
    has. Jupyter's runtime files (connection files) and IPython's directory
    are in the temporary directory too, for this process as well as the kernel.
    """
    with tempfile.TemporaryDirectory(prefix="jockey-docs-") as tmp:
        root = Path(tmp)
        spec = root / "jupyter" / "kernels" / KERNEL
        spec.mkdir(parents=True)
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        kernel = {"argv": argv, "display_name": "Python", "language": "python"}
        (spec / "kernel.json").write_text(json.dumps(kernel), encoding="utf-8")
        dirs = {
            "JUPYTER_PATH": str(root / "jupyter"),
            "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
            "IPYTHONDIR": str(root / "ipython"),
            "XDG_CACHE_HOME": str(root / "cache"),
        }
        # This process finds the kernel spec (Jupyter reads IPython's directory
        # for it, making it if missing) and writes the connection file.
        parent = ("JUPYTER_PATH", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR")
        saved = {k: os.environ.get(k) for k in parent}
        os.environ.update({k: dirs[k] for k in saved})
        try:
            env = {k: v for k, v in os.environ.items() if k not in UNSET}
            env.update(dirs)
            # The keyless library, where the tests' run has put it, else here.
            env.setdefault("XDG_DATA_HOME", str(root / "data"))
            yield env
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def execute(path: Path) -> Any:
    """Run the notebook at `path` from its directory; return it with its outputs.

    Raises:
        nbclient.exceptions.CellExecutionError: a cell raised.
    """
    notebook = nbformat.read(path, as_version=4)
    with _kernel_home() as env:
        client = NotebookClient(
            notebook,
            timeout=TIMEOUT,
            kernel_name=KERNEL,
            resources={"metadata": {"path": str(path.parent)}},
            record_timing=False,
        )
        client.execute(env=env)
    return notebook


def _joined(outputs: list[Any]) -> list[Any]:
    """Consecutive prints to one stream as one output, as a reader sees them."""
    joined: list[Any] = []
    for output in outputs:
        last = joined[-1] if joined else None
        if (
            output.output_type == "stream"
            and last is not None
            and last.output_type == "stream"
            and last.name == output.name
        ):
            last.text += output.text
        else:
            joined.append(output)
    return joined


def refresh(path: Path, name: str, *, run: bool) -> None:
    """Rewrite the page's API reference; with `run`, execute it and keep the outputs."""
    notebook = execute(path) if run else nbformat.read(path, as_version=4)
    if run:
        for cell in notebook.cells:
            if cell.cell_type == "code":
                cell.outputs = _joined(cell.outputs)
    reference_cell(notebook).source = api_reference(name)
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(notebook, path)


def main(argv: list[str] | None = None) -> None:
    """Rewrite the pages' API references (and run them, with `--execute`)."""
    parser = argparse.ArgumentParser(prog="python -m tests.docs.refresh")
    parser.add_argument("--execute", action="store_true", help="run and save them")
    parser.add_argument("pages", nargs="*", help="only these (e.g. chat.ipynb)")
    args = parser.parse_args(argv)
    for name, page in PAGES.items():
        if args.pages and page not in args.pages:
            continue
        refresh(DOCS / page, name, run=args.execute)
        print(f"docs/{page}")


if __name__ == "__main__":
    main()
