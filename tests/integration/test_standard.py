"""langchain-tests' ChatModelIntegrationTests, replayed from cassettes."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_jockey import ChatJockey
from tests.integration.conftest import target
from tests.support import NoClientTools

pytestmark = pytest.mark.vcr


class TestChatJockeyIntegration(NoClientTools, ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[ChatJockey]:
        return ChatJockey

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "jockey1.0", **target().chat_kwargs()}

    @property
    def enable_vcr_tests(self) -> bool:
        return True

    @property
    def structured_output_kwargs(self) -> dict[str, Any]:
        return {"method": "json_schema"}

    @property
    def supports_json_mode(self) -> bool:
        return False

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        # The only documented model: exercises the per-call `model=` plumbing.
        return "jockey1.0"
