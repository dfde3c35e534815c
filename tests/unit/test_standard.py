"""langchain-tests' standard unit suite for ChatJockey."""

from __future__ import annotations

from typing import Any

from langchain_tests.unit_tests import ChatModelUnitTests

from langchain_jockey import ChatJockey
from tests.support import NoClientTools


class TestChatJockeyStandard(NoClientTools, ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatJockey]:
        return ChatJockey

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "jockey1.0", "knowledge_store_id": "ks_test"}

    @property
    def init_from_env_params(
        self,
    ) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {
                "TWELVE_LABS_API_KEY": "tlk_from_env",
                "TWELVE_LABS_KNOWLEDGE_STORE_ID": "ks_from_env",
                "TWELVELABS_BASE_URL": "http://127.0.0.1:8600/v1.3",
            },
            {},
            {
                "api_key": "tlk_from_env",
                "knowledge_store_id": "ks_from_env",
                "base_url": "http://127.0.0.1:8600/v1.3",
                "model": "jockey1.0",
            },
        )
