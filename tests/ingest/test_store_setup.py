"""A store made as the platform makes them: its metadata and enrichment (#32 item 8).

`KnowledgeStore.create` sends `metadata` and `ingestion_config.enrichment_config`
(a description, or a JSON schema from a dict or a Pydantic model), `info()`
reads them back, the emulator keeps and checks them as the API documents, the
official SDK parses what it returns, and the command line takes `--enrich` and
`--enrich-schema`.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest
from pydantic import BaseModel, Field
from twelvelabs import TwelveLabs
from twelvelabs.knowledge_stores.types.knowledge_stores_list_response import (
    KnowledgeStoresListResponse,
)
from twelvelabs.types import (
    EnrichmentConfig_Description,
    EnrichmentConfig_JsonSchema,
    IngestionConfig,
)
from typing_extensions import TypedDict

from langchain_jockey import KnowledgeStore
from langchain_jockey.__main__ import main
from langchain_jockey.emulator import Emulator
from langchain_jockey.errors import JockeyInputError
from tests.ingest.conftest import connect, run_ingest, videos
from tests.support import undeclared

WORDS = "Who scores each goal, and in which minute."
MOOD = {
    "type": "object",
    "properties": {
        "mood": {
            "type": "string",
            "description": "The clip's mood.",
            "enum": ["calm", "tense"],
        }
    },
    "required": ["mood"],
}


class Player(BaseModel):
    name: str = Field(description="The player's name.")


class Goal(BaseModel):
    """A goal in the clip."""

    scorer: Player = Field(description="Who scored.")
    minute: int | None = Field(default=None, description="The minute of the match.")


GOAL = {  # Goal as the platform takes it: the $ref inlined, the optional plain
    "title": "Goal",
    "description": "A goal in the clip.",
    "type": "object",
    "properties": {
        "scorer": {
            "title": "Player",
            "description": "Who scored.",
            "type": "object",
            "properties": {
                "name": {
                    "title": "Name",
                    "type": "string",
                    "description": "The player's name.",
                }
            },
            "required": ["name"],
        },
        "minute": {
            "title": "Minute",
            "type": "integer",
            "description": "The minute of the match.",
        },
    },
    "required": ["scorer"],
}


class Shot(TypedDict):
    """A shot on goal.

    Args:
        taker: Who took it.
    """

    taker: str


def create(mode: str, name: str, **kwargs: Any) -> KnowledgeStore:
    if mode == "sync":
        return KnowledgeStore.create(name, **kwargs)
    return asyncio.run(KnowledgeStore.acreate(name, **kwargs))


def info(mode: str, store: KnowledgeStore) -> Any:
    return store.info() if mode == "sync" else asyncio.run(store.ainfo())


def store_posts(emu: Emulator) -> list[dict[str, Any]]:
    """The bodies of the store creations the emulator received."""
    return [
        json.loads(r.raw or b"null")
        for r in emu.requests
        if (r.method, r.path) == ("POST", "/v1.3/knowledge-stores")
    ]


# -- the library -------------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        (WORDS, "description", WORDS),
        (MOOD, "json_schema", MOOD),
        (Goal, "json_schema", GOAL),
    ],
    ids=["description", "dict-schema", "pydantic-model"],
)
def test_a_store_made_with_metadata_and_an_enrichment_reports_them_in_info(
    mode, emulator, tmp_path, case
):
    enrichment, kind, sent = case
    store = create(
        mode,
        "matches",
        description="The season's matches.",
        metadata={"team": "Harbour FC", "season": 2024, "tags": ["league"]},
        enrichment=enrichment,
        **connect(emulator, tmp_path),
    )
    found = info(mode, store)
    assert found.metadata == {"team": "Harbour FC", "season": 2024, "tags": ["league"]}
    assert found.enrichment == sent
    assert (found.name, found.description) == ("matches", "The season's matches.")
    [body] = store_posts(emulator)
    assert body["ingestion_config"] == {"enrichment_config": {"type": kind, kind: sent}}


def test_a_store_made_without_an_enrichment_has_none(mode, emulator, tmp_path):
    store = create(mode, "plain", **connect(emulator, tmp_path))
    found = info(mode, store)
    assert (found.enrichment, found.metadata) == (None, {})
    [body] = store_posts(emulator)
    assert body == {"name": "plain"}


def test_a_typeddict_and_a_dict_with_annotations_are_taken(mode, emulator, tmp_path):
    store = create(mode, "shots", enrichment=Shot, **connect(emulator, tmp_path))
    assert info(mode, store).enrichment == {
        "title": "Shot",
        "description": "A shot on goal.",
        "type": "object",
        "properties": {"taker": {"type": "string", "description": "Who took it."}},
        "required": ["taker"],
    }
    annotated = {**MOOD, "title": "Mood", "$schema": "https://json-schema.org/draft"}
    annotated["properties"] = {
        "mood": {**MOOD["properties"]["mood"], "default": "calm"}
    }
    store = create(mode, "moods", enrichment=annotated, **connect(emulator, tmp_path))
    assert info(mode, store).enrichment == {**MOOD, "title": "Mood"}  # as it takes it


class Undescribed(BaseModel):
    name: str


class Recursive(BaseModel):
    children: list[Recursive] = Field(description="Its children.")


class Patterned(BaseModel):
    code: str = Field(description="A code.", pattern="^[A-Z]+$")


@pytest.mark.parametrize(
    ("enrichment", "says"),
    [
        ("   ", "not an empty string"),
        (42, "takes a Pydantic model"),
        (Undescribed, "property 'name': has no description"),
        (Recursive, "'Recursive' contains itself"),
        (Patterned, "property 'code': 'pattern' is not a keyword"),
        ({"type": "array", "items": {"type": "string"}}, "root is an object"),
        (
            {"type": "object", "properties": {"a": {"type": "string"}}},
            "property 'a': has no description",
        ),
        (
            {
                "type": "object",
                "properties": {
                    "a": {
                        "type": "object",
                        "description": "A.",
                        "properties": {"b": {"type": "string"}},
                    }
                },
            },
            "property 'a.b': has no description",
        ),
        (
            {
                "type": "object",
                "properties": {
                    "a": {
                        "anyOf": [{"type": "string"}, {"type": "integer"}],
                        "description": "A.",
                    }
                },
            },
            "'anyOf' is not taken",
        ),
        (
            {
                "type": "object",
                "properties": {
                    "a": {"type": ["string", "integer"], "description": "A."}
                },
            },
            "'type' is one of",
        ),
        (
            {
                "type": "object",
                "properties": {},
                "additionalProperties": {"type": "string"},
            },
            "'additionalProperties' is true or false",
        ),
    ],
)
def test_a_bad_enrichment_is_an_input_error_before_any_request(
    mode, emulator, tmp_path, enrichment, says
):
    with pytest.raises(JockeyInputError, match=says):
        create(mode, "bad", enrichment=enrichment, **connect(emulator, tmp_path))
    assert list(emulator.requests) == []


@pytest.mark.parametrize(
    ("metadata", "says"),
    [
        ({f"k{i}": "v" for i in range(11)}, "at most 10 pairs"),
        ({"note": "x" * 2049}, "over 2,048 characters"),
        ({"nested": {"a": 1}}, "values are strings"),
    ],
)
def test_store_metadata_over_the_api_limits_is_an_input_error_before_any_request(
    mode, emulator, tmp_path, metadata, says
):
    with pytest.raises(JockeyInputError, match=says):
        create(mode, "bad", metadata=metadata, **connect(emulator, tmp_path))
    assert list(emulator.requests) == []


# -- the emulator, raw and through the official SDK --------------------------------


@pytest.fixture
def http(emulator: Emulator):
    with httpx.Client(
        base_url=emulator.base_url, headers={"x-api-key": emulator.api_key}, timeout=10
    ) as client:
        yield client


@pytest.mark.parametrize(
    ("config", "status"),
    [
        ("describe it", 400),
        ({}, 400),
        ({"enrichment_config": {"type": "words", "description": "x"}}, 400),
        ({"enrichment_config": {"type": "description", "description": ""}}, 400),
        ({"enrichment_config": {"type": "description", "description": 3}}, 400),
        ({"enrichment_config": {"type": "json_schema", "json_schema": "{}"}}, 400),
        (
            {
                "enrichment_config": {
                    "type": "json_schema",
                    "json_schema": {"type": "array"},
                }
            },
            422,
        ),
        (
            {
                "enrichment_config": {
                    "type": "json_schema",
                    "json_schema": {
                        "type": "object",
                        "properties": {"a": {"type": "string"}},
                    },
                }
            },
            422,
        ),
        (
            {
                "enrichment_config": {
                    "type": "json_schema",
                    "json_schema": {
                        "type": "object",
                        "properties": {
                            "a": {"type": "string", "description": "A.", "default": "x"}
                        },
                    },
                }
            },
            422,
        ),
        (
            {
                "enrichment_config": {
                    "type": "json_schema",
                    "json_schema": {
                        "type": "object",
                        "properties": {},
                        "prefixItems": 3,
                    },
                }
            },
            422,
        ),
    ],
)
def test_the_emulator_refuses_an_ingestion_config_the_api_would(http, config, status):
    response = http.post(
        "/knowledge-stores", json={"name": "x", "ingestion_config": config}
    )
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"]
    assert (
        "enrichment_config" in body["message"] or "ingestion_config" in body["message"]
    )
    listed = http.get("/knowledge-stores", params={"page_limit": 50}).json()["data"]
    assert "x" not in [s["name"] for s in listed]


def parsed(what: str, value: Any) -> Any:
    """`value`, after asserting the SDK parsed it with no undeclared field."""
    assert undeclared(value) == [], f"{what}: {undeclared(value)}"
    return value


def test_the_sdk_parses_a_store_with_its_enrichment_and_metadata(emulator):
    sdk = TwelveLabs(api_key=emulator.api_key, base_url=emulator.base_url)
    schema = {"type": "object", "properties": MOOD["properties"]}
    try:
        worded = sdk.knowledge_stores.create(
            name="worded",
            metadata={"team": "Harbour FC"},
            ingestion_config=IngestionConfig(
                enrichment_config=EnrichmentConfig_Description(description=WORDS)
            ),
        )
        shaped = sdk.knowledge_stores.create(
            name="shaped",
            ingestion_config=IngestionConfig(
                enrichment_config=EnrichmentConfig_JsonSchema(json_schema=schema)
            ),
        )
        fetched = [sdk.knowledge_stores.retrieve(s.id) for s in (worded, shaped)]
        pages = list(sdk.knowledge_stores.list(page_limit=50).iter_pages())
    except pydantic.ValidationError as exc:
        pytest.fail(f"the SDK cannot parse the emulator's store:\n{exc}")
    assert fetched == [worded, shaped]
    for store in fetched:
        parsed("GET /knowledge-stores/{id}", store)
    config = fetched[0].ingestion_config.enrichment_config
    assert isinstance(config, EnrichmentConfig_Description)
    assert config.description == WORDS
    assert fetched[0].metadata == {"team": "Harbour FC"}
    config = fetched[1].ingestion_config.enrichment_config
    assert isinstance(config, EnrichmentConfig_JsonSchema)
    assert config.json_schema.type == "object"
    assert config.json_schema.properties == MOOD["properties"]
    for page in pages:
        body = page.response._response.json()
        from twelvelabs.core.pydantic_utilities import parse_obj_as  # noqa: PLC0415

        parsed("GET /knowledge-stores", parse_obj_as(KnowledgeStoresListResponse, body))
    listed = {s.id: s for page in pages for s in page.items or []}
    assert listed[worded.id] == worded
    assert listed[shaped.id] == shaped


# -- the command line ----------------------------------------------------------------


def the_store(emu: Emulator, name: str) -> KnowledgeStore:
    [found] = KnowledgeStore.find(name, base_url=emu.base_url, api_key=emu.api_key)
    return KnowledgeStore(
        knowledge_store_id=found, base_url=emu.base_url, api_key=emu.api_key
    )


@pytest.mark.slow  # the command polls at its own rate
def test_enrich_sets_the_new_stores_description(
    cli_on_emulator, emulator, capsys, tmp_path
):
    folder = videos(tmp_path / "v", "a.mp4")
    code, out, err = run_ingest(
        capsys, str(folder), "--create", "worded", "--enrich", WORDS
    )
    assert code == 0, out + err
    assert the_store(emulator, "worded").info().enrichment == WORDS


def test_enrich_schema_reads_the_schema_from_a_file(
    cli_on_emulator, emulator, capsys, tmp_path
):
    folder = videos(tmp_path / "v", "a.mp4")
    schema = tmp_path / "mood.json"
    schema.write_text(json.dumps({**MOOD, "$schema": "https://json-schema.org/draft"}))
    code, out, err = run_ingest(
        capsys,
        str(folder),
        "--create",
        "shaped",
        "--enrich-schema",
        str(schema),
        "--no-wait",
    )
    assert code == 0, out + err
    assert the_store(emulator, "shaped").info().enrichment == MOOD


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ('{"type": "object", "properties": {', "is not valid JSON"),
        (
            '{"type": "object", "properties": {"a": {"type": "string"}}}',
            "has no description",
        ),
        ('["not", "a schema"]', "takes a Pydantic model"),
    ],
)
@pytest.mark.usefixtures("cli_on_emulator")
def test_a_bad_schema_file_is_named_before_any_request(
    emulator, capsys, tmp_path, content, says
):
    folder = videos(tmp_path / "v", "a.mp4")
    schema = tmp_path / "bad.json"
    schema.write_text(content)
    code, _, err = run_ingest(
        capsys, str(folder), "--create", "x", "--enrich-schema", str(schema)
    )
    assert code == 2
    assert str(schema) in err
    assert says in err
    assert list(emulator.requests) == []


def test_a_missing_schema_file_is_named(cli_on_emulator, emulator, capsys, tmp_path):
    folder = videos(tmp_path / "v", "a.mp4")
    missing = tmp_path / "nowhere.json"
    code, _, err = run_ingest(
        capsys, str(folder), "--create", "x", "--enrich-schema", str(missing)
    )
    assert code == 2
    assert f"{missing}: the schema cannot be read" in err
    assert list(emulator.requests) == []


def test_enrich_needs_create(cli_on_emulator, emulator, capsys, tmp_path):
    folder = videos(tmp_path / "v", "a.mp4")
    code, _, err = run_ingest(capsys, str(folder), "--store", "ks_x", "--enrich", WORDS)
    assert code == 2
    assert "use them with --create" in err
    assert list(emulator.requests) == []


def test_enrich_and_enrich_schema_are_one_or_the_other(
    cli_on_emulator, capsys, tmp_path
):
    with pytest.raises(SystemExit) as caught:
        main(
            [
                "ingest",
                "a.mp4",
                "--create",
                "x",
                "--enrich",
                "w",
                "--enrich-schema",
                "f",
            ]
        )
    assert caught.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


def test_reusing_a_store_made_with_another_enrichment_is_an_error_before_any_upload(
    cli_on_emulator, emulator, capsys, tmp_path
):
    folder = videos(tmp_path / "v", "a.mp4")
    made = KnowledgeStore.create(
        "matches",
        enrichment=WORDS,
        base_url=emulator.base_url,
        api_key=emulator.api_key,
    )
    code, out, err = run_ingest(
        capsys, str(folder), "--create", "matches", "--enrich", "Other."
    )
    assert code == 2, out + err
    assert made.knowledge_store_id in err
    assert "another enrichment" in err
    assert not [r for r in emulator.requests if r.path.endswith("/assets")]
    code, out, err = run_ingest(
        capsys, str(folder), "--create", "matches", "--enrich", WORDS, "--no-wait"
    )
    assert code == 0, out + err
    assert f"Using knowledge store {made.knowledge_store_id}" in out


def test_the_enrichment_given_to_create_needs_no_network_to_be_checked(tmp_path):
    # No server at all: the error comes from the arguments alone.
    with pytest.raises(JockeyInputError, match="has no description"):
        KnowledgeStore.create(
            "x",
            enrichment=Undescribed,
            base_url="http://127.0.0.1:9/v1.3",
            api_key="k",
            state_dir=Path(tmp_path),
        )
