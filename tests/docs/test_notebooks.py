"""The docs notebooks run, keyless, on the built-in emulator, and keep their outputs.

CI executes each one as a reader would (`tests.docs.refresh.execute`: a kernel of
this interpreter, no TwelveLabs key, nothing written under the home directory);
any error in a cell fails the test. The saved copies must read well on GitHub:
executed in order, no errors, no run-specific ports or temporary paths.
"""

from __future__ import annotations

import re
import sys

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

from tests.docs.refresh import DOCS, PAGES, execute

NOTEBOOKS = sorted(PAGES.values())
# What changes from run to run and means nothing to a reader.
RUN_SPECIFIC = re.compile(r"127\.0\.0\.1:\d+|localhost:\d+|/tmp/|jockey-test-data-")


def outputs(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]


def text(output: nbformat.NotebookNode) -> str:
    if output.output_type == "stream":
        return str(output.text)
    return "\n".join(str(v) for v in output.get("data", {}).values())


@pytest.mark.slow
@pytest.mark.parametrize("page", NOTEBOOKS)
def test_the_notebook_runs_without_a_key_on_the_emulator_writing_nothing_at_home(
    page, monkeypatch, tmp_path
):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TWELVE_LABS_API_KEY", "tlk_never_sent")  # execute unsets it
    ran = execute(DOCS / page)  # raises CellExecutionError on any error
    printed = "".join(text(o) for o in outputs(ran))
    assert "using the built-in Jockey emulator" in printed
    assert not [o for o in outputs(ran) if o.output_type == "error"]
    assert not list(home.iterdir()), "the run wrote under the home directory"


@pytest.mark.parametrize("page", NOTEBOOKS)
def test_the_saved_notebook_keeps_the_outputs_of_one_full_run(page):
    notebook = nbformat.read(DOCS / page, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code, f"docs/{page} has no code"
    counts = [c.execution_count for c in code]
    assert counts == list(range(1, len(code) + 1)), (
        f"docs/{page} was not saved from one run in order: "
        "run `python -m tests.docs.refresh --execute`"
    )
    assert all(o.output_type != "error" for o in outputs(notebook))
    assert "using the built-in Jockey emulator" in text(code[0].outputs[0])


@pytest.mark.parametrize("page", NOTEBOOKS)
def test_the_saved_outputs_hold_no_ports_or_temporary_paths(page):
    notebook = nbformat.read(DOCS / page, as_version=4)
    found = [
        m.group() for o in outputs(notebook) for m in RUN_SPECIFIC.finditer(text(o))
    ]
    assert not found, f"docs/{page} shows run-specific values: {found}"


def test_a_cell_that_raises_fails_the_run_in_a_keyless_kernel_of_this_python(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("TWELVE_LABS_API_KEY", "tlk_never_sent")
    checks = (
        "import os, sys\n"
        'assert "TWELVE_LABS_API_KEY" not in os.environ\n'
        f"assert sys.executable == {sys.executable!r}, sys.executable"
    )
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(checks),
            nbformat.v4.new_code_cell('raise ValueError("the last cell")'),
        ]
    )
    path = tmp_path / "broken.ipynb"
    nbformat.write(notebook, path)
    # The first cell's checks passed: the error is the last cell's.
    with pytest.raises(CellExecutionError, match="the last cell"):
        execute(path)
