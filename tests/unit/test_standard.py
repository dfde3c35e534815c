"""langchain-tests' standard unit suite for ChatJockey."""

from __future__ import annotations

import os
from typing import Any
from unittest import mock

import pytest
from langchain_core.load import dumpd, load
from langchain_tests.unit_tests import ChatModelUnitTests
from syrupy.assertion import SnapshotAssertion

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

    @pytest.mark.xfail(
        reason="the suite loads with allowed_objects='all', which admits only the "
        "classes in langchain-core's own mapping, where no partner outside it can "
        "be; test_serdes_round_trips_when_the_class_is_named covers the rest",
        strict=True,
    )
    def test_serdes(self, model: ChatJockey, snapshot: SnapshotAssertion) -> None:
        super().test_serdes(model, snapshot)

    def test_serdes_round_trips_when_the_class_is_named(
        self, model: ChatJockey
    ) -> None:
        env_params, _, _ = self.init_from_env_params
        with mock.patch.dict(os.environ, env_params):
            serialized = dumpd(model)
            loaded = load(
                serialized,
                valid_namespaces=model.get_lc_namespace()[:1],
                allowed_objects=[ChatJockey],
                secrets_from_env=True,
            )
        assert serialized["kwargs"]["api_key"] == {
            "lc": 1,
            "type": "secret",
            "id": ["TWELVE_LABS_API_KEY"],
        }
        assert (
            loaded._identifying_params == model._identifying_params
        )  # what .dict() was
        assert loaded.api_key is not None
        assert loaded.api_key.get_secret_value() == "tlk_from_env"
