"""Each public class has its page, and each page's API reference is current."""

from __future__ import annotations

import inspect
from types import FunctionType

import nbformat
import pytest
import yaml
from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel

import langchain_jockey
from langchain_jockey import ChatJockey
from tests.docs.refresh import DOCS, PAGES, api_reference, reference_cell

ENTRY = "integration_external_docs.yaml"  # for langchain-ai/docs
PUBLIC_CLASSES = (
    "ChatJockey",
    "JockeyTool",
    "KnowledgeStoreRetriever",
    "KnowledgeStore",
)


def test_every_public_class_of_the_package_has_a_page():
    exported = {
        name
        for name in langchain_jockey.__all__
        if inspect.isclass(getattr(langchain_jockey, name))
        and not issubclass(getattr(langchain_jockey, name), Exception)
    }
    assert exported == set(PUBLIC_CLASSES)
    assert set(PAGES) == exported
    for name, page in PAGES.items():
        assert (DOCS / page).is_file(), f"{name} has no page docs/{page}"


@pytest.mark.parametrize("name", PUBLIC_CLASSES)
def test_the_page_names_its_class_in_its_title(name):
    notebook = nbformat.read(DOCS / PAGES[name], as_version=4)
    assert notebook.cells[0].source.startswith(f"# {name}\n")


@pytest.mark.parametrize("name", PUBLIC_CLASSES)
def test_the_api_reference_lists_each_public_method_with_its_first_docstring_line(
    name,
):
    cls = getattr(langchain_jockey, name)
    cell = reference_cell(nbformat.read(DOCS / PAGES[name], as_version=4)).source
    ours = {
        member
        for klass in cls.__mro__
        if klass.__module__.startswith("langchain_jockey")
        for member, raw in vars(klass).items()
        if not member.startswith("_")
        and not hasattr(BaseModel, member)  # pydantic's own API and hooks
        and isinstance(raw, (property, classmethod, staticmethod, FunctionType))
    }
    assert ours or name == "JockeyTool"  # the tool adds settings, no methods
    for member in ours:
        raw = inspect.getattr_static(cls, member)
        doc = inspect.getdoc(
            raw.fget if isinstance(raw, property) else getattr(cls, member)
        )
        assert doc, f"{name}.{member} has no docstring"
        first = doc.split("\n\n", 1)[0].replace("\n", " ")
        assert f"`{member}" in cell, f"docs/{PAGES[name]} does not list {member}"
        assert first.replace("|", "\\|") in cell, f"{name}.{member}: {first!r}"


@pytest.mark.parametrize("name", PUBLIC_CLASSES)
def test_the_api_reference_is_what_the_code_makes_now(name):
    cell = reference_cell(nbformat.read(DOCS / PAGES[name], as_version=4)).source
    assert cell == api_reference(name), (
        f"docs/{PAGES[name]}'s API reference is stale: "
        "run `python -m tests.docs.refresh`"
    )


def test_the_integrations_entry_lists_each_component_with_the_flags_the_code_has():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    entry = yaml.safe_load((DOCS / "integration" / ENTRY).read_text(encoding="utf-8"))
    rows = entry["python"]
    project = tomllib.loads((DOCS.parent / "pyproject.toml").read_text())["project"]
    listed = {
        section: [row["name"] for row in section_rows]
        for section, section_rows in rows.items()
    }
    assert listed == {
        "chat": ["ChatJockey"],
        "tools": ["JockeyTool"],
        "retrievers": ["KnowledgeStoreRetriever"],
    }
    for row in (r for section_rows in rows.values() for r in section_rows):
        assert row["pypi"] == project["name"]
        assert row["docs_url"].startswith("https://")
    (chat,) = rows["chat"]
    profile = ChatJockey(api_key="tlk_unused", knowledge_store_id="ks_unused").profile
    assert profile is not None
    inputs = ("image_inputs", "audio_inputs", "video_inputs", "pdf_inputs")
    assert chat["stream"] is (ChatJockey._stream is not BaseChatModel._stream)
    assert chat["tool_calling"] is profile["tool_calling"]
    assert chat["structured_output"] is profile["structured_output"]
    assert chat["multimodal"] is any(profile[key] for key in inputs)
