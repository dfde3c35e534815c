"""What the README and docs pages say about langchain and the package, checked.

The trial of #35 found claims that were not true; each is pinned here: what
`init_chat_model` does with Jockey, when `create_agent(ChatJockey(...),
tools=[...])` raises, the errors page naming every error class, and the retry
defaults as the classes declare them.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from langchain.agents import create_agent
from langchain.chat_models import init_chat_model

from langchain_jockey import ChatJockey, KnowledgeStore, errors
from langchain_jockey._sources import FileChangedError

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
AGENTS = (ROOT / "docs" / "agents.md").read_text(encoding="utf-8")


def section(text: str, title: str) -> str:
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def flat(text: str) -> str:
    return " ".join(text.split())


# -- init_chat_model: langchain's provider list is closed ----------------------


def test_init_chat_model_refuses_jockey_in_every_form_the_docs_name() -> None:
    with pytest.raises(ValueError, match="Unable to infer model provider"):
        init_chat_model("twelvelabs:jockey1.0")
    with pytest.raises(ValueError, match="Unsupported provider='twelvelabs'"):
        init_chat_model("jockey1.0", model_provider="twelvelabs")
    with pytest.raises(TypeError, match="must be a string"):
        init_chat_model(ChatJockey)  # type: ignore[call-overload]
    page = flat(section(CONFIGURATION, "`init_chat_model`"))
    for said in ("Unable to infer model provider", "Unsupported provider='twelvelabs'"):
        assert said in page
    assert "closed" in page
    assert "closed" in flat(README.split("### Chat and streaming", 1)[1][:1200])


def test_the_line_to_use_instead_of_init_chat_model_makes_a_chat_model() -> None:
    (line,) = re.findall(r"```python\n(llm = ChatJockey\(.*\))\n```", CONFIGURATION)
    namespace = {"ChatJockey": ChatJockey, "STORE_ID": "ks_1"}
    exec(line.replace("ChatJockey(", "ChatJockey(api_key='k', "), namespace)  # noqa: S102
    assert isinstance(namespace["llm"], ChatJockey)
    assert namespace["llm"].model == "jockey1.0"


# -- create_agent with ChatJockey and tools: it builds, its first call raises ---


def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def test_create_agent_with_chat_jockey_and_tools_builds_then_raises_on_first_call(
    mode, emulator
) -> None:
    agent = create_agent(ChatJockey(**emulator.chat_kwargs()), tools=[weather])
    before = len(emulator.requests)
    question = {"messages": [("user", "Who saves the penalty?")]}
    call = (
        (lambda: agent.invoke(question))
        if mode == "sync"
        else (lambda: asyncio.run(agent.ainvoke(question)))
    )
    with pytest.raises(errors.JockeyInputError, match="JockeyTool"):
        call()
    assert len(emulator.requests) == before  # raised before any request
    for page in (flat(AGENTS), flat(README)):
        assert "builds" in page
        assert "first call raises" in page


# -- the errors page: every class, and when it is raised ---------------------


@pytest.mark.parametrize(
    "name", [*errors.__all__, FileChangedError.__name__], ids=lambda n: n
)
def test_the_errors_section_says_when_each_error_class_is_raised(name: str) -> None:
    page = section(CONFIGURATION, "Errors")
    assert f"- **`{name}`**" in page  # its own entry saying when
    assert re.search(rf"[├└]── {name}\b", page) or name == "JockeyError"  # the tree


# -- retry defaults: as the classes declare them, and why -------------------------


def test_the_retry_defaults_table_matches_the_classes() -> None:
    page = section(CONFIGURATION, "Retry defaults")
    chat = ChatJockey.model_fields
    store = KnowledgeStore.model_fields
    chat_row = (
        f"| {chat['max_retries'].default} | {chat['max_retry_wait'].default:.0f} s |"
    )
    store_row = (
        f"| {store['max_retries'].default} | {store['max_retry_wait'].default:.0f} s |"
    )
    assert f"| `ChatJockey`, `KnowledgeStoreRetriever` {chat_row}" in page
    assert f"| `KnowledgeStore` {store_row}" in page
    assert "interactive" in page
    assert "unattended" in page
