"""A scripted tool-calling chat model, for offline agent demos and tests."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult

__all__ = ["ScriptedPlanner"]


class ScriptedPlanner(BaseChatModel):
    """A tool-calling model that follows a script: no network, no randomness.

    Each turn it makes the next call of `calls` (a tool name and its
    arguments); when they are all made it answers with `final`, formatted with
    `{first}` (the first paragraph of the first tool result) and `{last}` (the
    last tool result). The script starts again at each user message, so a
    conversation of several questions (a thread on LangGraph Server) runs it
    once per question; an argument that is exactly `"{question}"` becomes that
    message's text. It accepts any tools: it is a stand-in for a real planner,
    to run agents offline.
    """

    calls: list[tuple[str, dict[str, Any]]]
    """The tool calls to make, in order, one per turn."""

    final: str = "{first}"
    """The last answer, a format string (see the class docstring)."""

    @property
    def _llm_type(self) -> str:
        return "scripted-planner"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedPlanner:
        """Tools are accepted and ignored: the script says what to call."""
        del tools, kwargs
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        del stop, run_manager, kwargs
        asked = [i for i, m in enumerate(messages) if isinstance(m, HumanMessage)]
        turn = messages[asked[-1] :] if asked else messages
        question = turn[0].text if asked else ""
        results = [str(m.content) for m in turn if isinstance(m, ToolMessage)]
        if len(results) < len(self.calls):
            name, script = self.calls[len(results)]
            args = {k: question if v == "{question}" else v for k, v in script.items()}
            number = f"{len(asked) - 1}_" if len(asked) > 1 else ""  # unique per thread
            call = {"name": name, "args": args, "id": f"call_{number}{len(results)}"}
            message = AIMessage(content="", tool_calls=[call])
        else:
            first = results[0].split("\n\n")[0] if results else ""
            last = results[-1] if results else ""
            message = AIMessage(content=self.final.format(first=first, last=last))
        return ChatResult(generations=[ChatGeneration(message=message)])
