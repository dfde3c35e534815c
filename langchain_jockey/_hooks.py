"""ChatJockey's answers to LangChain's hooks (the machinery, not the requests).

- Serialization: `dumpd`/`load` write and read a ChatJockey, the key as a
  secret reference (`JockeyConnection.lc_secrets`).
- Token estimates with no optional package, the `profile` create_agent and
  SummarizationMiddleware read.
- The LLM cache: its key is a digest of the settings, and an answer served from
  a cache continues no session (the policy is on `ChatJockey.cache`).
- No client tools: `bind_tools` with tools names `JockeyTool` instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.model_profile import ModelProfile
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.outputs import ChatGeneration, Generation
from langchain_core.runnables import Runnable

from langchain_jockey._messages import MAX_CONTENT_CHARS
from langchain_jockey.errors import JockeyInputError

__all__ = ["LangChainHooks"]

_CHARS_PER_TOKEN = 4  # the estimate of get_num_tokens and the profile


class LangChainHooks(BaseChatModel):
    """The hooks of `BaseChatModel` that ChatJockey answers (abstract: no model)."""

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """`dumpd` / `dumps` write a ChatJockey; the key as a secret reference."""
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        """`["langchain_jockey", "chat_models"]`, where `load` finds the class."""
        return ["langchain_jockey", "chat_models"]

    def get_num_tokens(self, text: str) -> int:
        """An estimate: one token per 4 characters, rounded up.

        Jockey publishes no tokenizer, so this is LangChain's usual rule of
        thumb for English text (`count_tokens_approximately`), and needs no
        optional package. Jockey reports the real counts in `usage_metadata`.
        """
        return -(-len(text) // _CHARS_PER_TOKEN)

    def get_num_tokens_from_messages(
        self, messages: list[BaseMessage], tools: Sequence[Any] | None = None
    ) -> int:
        """An estimate for `messages`, as `get_num_tokens` makes it.

        Each message counts its text at 4 characters per token, plus 3 tokens
        for its role (`langchain_core`'s `count_tokens_approximately`). `tools`
        are ignored: Jockey takes no client tools.
        """
        del tools
        return count_tokens_approximately(messages, chars_per_token=_CHARS_PER_TOKEN)

    def _get_llm_string(self, stop: list[str] | None = None, **kwargs: Any) -> str:
        # The LLM-cache key. Core writes the model's serialized settings into
        # it, and a cache may be a file or a shared database: a digest keeps
        # them out of it (equal settings still give equal keys).
        settings = super()._get_llm_string(stop, **kwargs)
        return "langchain_jockey:" + hashlib.sha256(settings.encode()).hexdigest()

    def _convert_cached_generations(
        self, cache_val: list[Generation]
    ) -> list[ChatGeneration]:
        # A cached answer is no turn of any session: without its session_id a
        # follow-up starts a new session instead of continuing the conversation
        # the answer was first given in (see the `cache` field).
        generations = super()._convert_cached_generations(cache_val)
        for generation in generations:
            message = generation.message
            if "session_id" in message.response_metadata:
                meta = {**message.response_metadata, "cached": True}
                del meta["session_id"]
                generation.message = message.model_copy(
                    update={"response_metadata": meta}
                )
        return generations

    def bind_tools(
        self,
        tools: Sequence[Any],
        *,
        tool_choice: Any = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Jockey calls no client tools: give them to the model that plans instead.

        With no tools (as `create_agent(ChatJockey(...))` binds), this binds
        `kwargs`, such as the `response_format` of native structured output.

        Raises:
            JockeyInputError: if `tools` is not empty. In an agent, Jockey is
                the expert a tool-calling model asks: give that model
                `JockeyTool(llm=ChatJockey(...))`.
        """
        del tool_choice
        if tools:
            msg = (
                "ChatJockey cannot call your tools: Jockey runs its own tools on the "
                "server. In an agent, let a tool-calling model plan and give it "
                "JockeyTool(llm=ChatJockey(...)) next to your other tools."
            )
            raise JockeyInputError(msg)
        return self.bind(**kwargs)

    def _resolve_model_profile(self) -> ModelProfile | None:
        # create_agent reads this: native structured output (Jockey's
        # text.format), no client tool calling, text in and out.
        # Jockey documents no context window in tokens. What it takes per
        # request is one message of at most 10,000 characters (the rest of a
        # conversation stays in its session): 2,500 tokens by get_num_tokens's
        # estimate. It documents no output limit either (an answer that hits
        # its undocumented one ends `incomplete`), so none is claimed here.
        return ModelProfile(
            max_input_tokens=MAX_CONTENT_CHARS // _CHARS_PER_TOKEN,
            text_inputs=True,
            image_inputs=False,
            pdf_inputs=False,
            audio_inputs=False,
            video_inputs=False,
            text_outputs=True,
            reasoning_output=True,
            tool_calling=False,
            tool_choice=False,
            structured_output=True,
        )
