"""langchain-tests' RetrieversIntegrationTests for KnowledgeStoreRetriever,
replayed from cassettes like the chat model's suite."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import RetrieversIntegrationTests

from langchain_jockey import KnowledgeStoreRetriever
from tests.integration.conftest import target

pytestmark = pytest.mark.vcr


class TestKnowledgeStoreRetrieverIntegration(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[KnowledgeStoreRetriever]:
        return KnowledgeStoreRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return target().chat_kwargs()

    @property
    def retriever_query_example(self) -> str:
        return "boats in the harbour"
