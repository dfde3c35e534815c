"""Structured values read from the cited moment (issue #34): the spec, as a table.

Each case is a store, a question, a schema (as users write it, in Pydantic)
and the exact JSON the emulator must give: a name for a name, a number for a
count, `null` (or the type's empty value) for what the moment does not say.
The stores are the two demo stores and videos added with a description and a
transcript, or with a file name only.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterator
from typing import Any, Literal, Optional

import httpx
import pytest
from pydantic import BaseModel, Field

from langchain_jockey import ChatJockey, KnowledgeStore
from langchain_jockey.emulator import (
    DEMO_STORE_ID,
    KITCHEN_STORE_ID,
    Emulator,
    sample_video,
)
from tests.emulator.conftest import answer_text, stream_events
from tests.support import run

ADDED: dict[str, tuple[str, dict[str, str]]] = {
    "birthday": (
        "birthday_party.mp4",
        {
            "description": "Mia's seventh birthday party in the garden.",
            "transcript": "00:05 Everyone sings happy birthday to Mia.\n"
            "00:20 Mia blows out seven candles on a chocolate cake.\n"
            "00:35 Grandpa Joe hands Mia a red bicycle with a silver bell.\n"
            "00:50 The children play musical chairs until Leo wins.",
        },
    ),
    # The new user's trial: a description, and no word about the cake.
    "trial": ("birthday_party.mp4", {"description": "Mia blows out seven candles."}),
    "bake_sale": (
        "bake_sale.mp4",
        {
            "description": "A school bake sale in the town hall.",
            "transcript": "00:00 Volunteers set out forty cupcakes on three long "
            "tables.\n00:15 Sam sells lemon muffins for 1.50 pounds each.\n"
            "00:30 A boy buys a strawberry tart because it is his sister's "
            "birthday.\n00:45 The sale closes at noon with 120 pounds raised.",
        },
    ),
    "file_name_only": ("kids_football_match_2024.mp4", {}),
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """An emulator with the demo stores and one store per added video."""
    tmp = tmp_path_factory.mktemp("added")
    with Emulator(asset_time=0.01, index_time=0.05) as emu:
        stores = {"harbour": DEMO_STORE_ID, "kitchen": KITCHEN_STORE_ID}
        for key, (name, metadata) in ADDED.items():
            store = KnowledgeStore.create(
                key,
                base_url=emu.base_url,
                api_key=emu.api_key,
                state_dir=tmp / "state",
                poll_interval=0.02,
            )
            folder = tmp / key
            folder.mkdir()
            video = sample_video(folder / name, seconds=60)
            (result,) = store.add(video, metadata=metadata or None)
            assert result.status == "ready", result
            stores[key] = store.knowledge_store_id
        with httpx.Client(
            base_url=emu.base_url, headers={"x-api-key": emu.api_key}, timeout=30
        ) as client:
            yield {"emulator": emu, "client": client, "stores": stores}


def ask(
    served: dict[str, Any], store: str, question: str, schema: dict[str, Any], **extra
) -> list[dict[str, Any]]:
    body = {
        "knowledge_store_id": served["stores"][store],
        "input": [{"type": "message", "role": "user", "content": question}],
        "text": {"format": {"type": "json_schema", "name": "a", "schema": schema}},
        **extra,
    }
    return stream_events(served["client"], body)


# -- the schemas, as users write them ------------------------------------------


class Keeper(BaseModel):
    name: str = Field(description="the keeper's first name")
    dive_direction: Literal["left", "right"]


class Party(BaseModel):
    child_name: str
    candles: int
    cake_flavor: str


class Card(BaseModel):
    card_colour: str
    reason: str
    minute: Optional[int]  # noqa: UP045 - the Optional form is what users write


class Opening(BaseModel):
    when: str
    opening_hour: int
    where: Optional[str]  # noqa: UP045


class Boats(BaseModel):
    leave_time: str = Field(description="when the boats leave")
    unload_place: str = Field(description="where the boats unload")


class Chef(BaseModel):
    inspected: str = Field(description="what the chef inspects")
    fish: str = Field(description="the fish the chef buys")
    who: str
    chef_name: Optional[str]  # noqa: UP045


class Scoring(BaseModel):
    why: str
    how: str
    tool: str = Field(description="what the baker scores the loaf with")


class Crash(BaseModel):
    rider_crashed: bool
    rider_hurt: bool
    where: str
    start_sec: float
    end_sec: float


class Gear(BaseModel):
    gear: list[str] = Field(description="what the crew pulls on")
    where: str


class Checks(BaseModel):
    checks: list[str] = Field(description="what the rider checks")


class Lobster(BaseModel):
    price: Optional[float]  # noqa: UP045


class Winner(BaseModel):
    scorer: str
    team: Literal["red", "blue"]
    goals: Optional[int]  # noqa: UP045


class Debrief(BaseModel):
    who: str
    drink: str = Field(description="what the crew drinks")
    summary: str


class Flag(BaseModel):
    flag: str = Field(description="what the harbour master raises")
    reason: str


class Videos(BaseModel):
    videos: list[str]


class Kind(str, enum.Enum):
    GOAL = "goal"
    SAVE = "save"
    OTHER = "other"


class Clip(BaseModel):
    title: str
    start_sec: float
    kind: Kind


class Match(BaseModel):
    title: str
    sport: Literal["football", "cycling", "baking"]


class Penalty(BaseModel):
    match: Match
    keeper: Keeper
    clip: Clip


class Trips(BaseModel):
    moments: list[Clip]
    start_times: list[float]


class Fog(BaseModel):
    start_sec: float
    duration: float
    time_range: str


class Sauce(BaseModel):
    simmer_minutes: int
    when: str


class Herbs(BaseModel):
    technique: str


class Knife(BaseModel):
    grip: str
    honed: bool
    on_whetstone: bool


class Age(BaseModel):
    age: int


class Gift(BaseModel):
    gift: str = Field(description="what Grandpa Joe hands Mia")
    bicycle_colour: str
    giver: str = Field(description="the name of who gives it")


class Game(BaseModel):
    winner: str
    game: str = Field(description="the game the children play")


class Cake(BaseModel):
    cake_colour: str
    summary: str


class Muffin(BaseModel):
    price: float
    seller: str
    flavour: str


class Raised(BaseModel):
    money_raised: int
    closing_time: str


class Tart(BaseModel):
    reason: str
    buyer: str


class Cupcakes(BaseModel):
    cupcakes: int
    tables: int
    place: str


class Venue(BaseModel):
    place: str


class TitleOnly(BaseModel):
    title: str
    sport: Literal["football", "tennis", "swimming"]
    winner: Optional[str]  # noqa: UP045
    is_football: bool
    year: int
    when: Optional[str]  # noqa: UP045


class Defaults(BaseModel):
    colour: str = "blue"  # the platform ignores `default` (docs/protocol.md, "Request")
    minute: int = 5


class CardNote(BaseModel):
    minute: Optional[int]  # noqa: UP045
    summary: str


class Trophy(BaseModel):
    lifted_by: str
    teams: Optional[int]  # noqa: UP045


class Doing(BaseModel):
    who: str
    doing: str = Field(description="what they do")
    where: Optional[str]  # noqa: UP045


class Count(BaseModel):
    count: int  # no word of its own: the question's ("cupcakes")


class Score(BaseModel):
    home: int
    away: int


class Result(BaseModel):
    final_score: Optional[Score]  # noqa: UP045
    winner: str


HARBOUR_DAWN, MARKET = "Harbour at dawn (timelapse)", "Fish market walkthrough"
FOOTBALL = "Under-12 football final"

# (store, question, schema, the exact JSON)
CASES: list[tuple[str, str, type[BaseModel], dict[str, Any]]] = [
    # The examples.
    (
        "harbour",
        "Who saves the penalty, and which way does she dive?",
        Keeper,
        {"name": "Zoe", "dive_direction": "left"},
    ),
    (
        "birthday",
        "Whose birthday is it, and how many candles does she blow out?",
        Party,
        {"child_name": "Mia", "candles": 7, "cake_flavor": "chocolate"},
    ),
    (
        "trial",
        "Whose birthday is it, and how many candles does she blow out?",
        Party,
        {"child_name": "Mia", "candles": 7, "cake_flavor": ""},
    ),
    # The demo harbour store: phrases by kind, numbers, truth, options.
    (
        "harbour",
        "When is the yellow card shown?",
        Card,
        {"card_colour": "yellow", "reason": "for a late tackle", "minute": None},
    ),
    (
        "harbour",
        "When does the fish market open?",
        Opening,
        {"when": "at six in the morning", "opening_hour": 6, "where": None},
    ),
    (
        "harbour",
        "When do the fishing boats leave, and where do they unload their catch?",
        Boats,
        {"leave_time": "just before dawn", "unload_place": "the market quay"},
    ),
    (
        "harbour",
        "What does the chef inspect before buying?",
        Chef,
        {
            "inspected": "the gills of a large turbot",
            "fish": "a large turbot",
            "who": "a chef",
            "chef_name": None,
        },
    ),
    (
        "harbour",
        "Why does the baker score the loaf?",
        Scoring,
        {"why": "to control the rise", "how": "with a razor", "tool": "a razor"},
    ),
    (
        "harbour",
        "Where does the rider crash?",
        Crash,
        {
            "rider_crashed": True,
            "rider_hurt": False,
            "where": "a wet root",
            "start_sec": 140.0,
            "end_sec": 165.0,
        },
    ),
    (
        "harbour",
        "What does the crew pull on?",
        Gear,
        {"gear": ["dry suits", "helmets"], "where": "the changing room"},
    ),
    (
        "harbour",
        "What does the rider check at the trailhead?",
        Checks,
        {"checks": ["tyre pressure", "brakes"]},
    ),
    ("harbour", "How much does the lobster cost?", Lobster, {"price": 40.0}),
    (
        "harbour",
        "Who scores the winning goal?",
        Winner,
        {"scorer": "the red striker", "team": "red", "goals": None},
    ),
    (
        "harbour",
        "What happens at the end of the lifeboat drill?",
        Debrief,
        {
            "who": "the coxswain",
            "drink": "",
            "summary": "In Lifeboat rescue drill, the coxswain debriefs the crew over "
            "tea (07:20\u201308:00). Not found: drink.",
        },
    ),
    (
        "harbour",
        "What does the harbour master raise?",
        Flag,
        {"flag": "the weather flag", "reason": "for a strong wind"},
    ),
    (
        "harbour",
        "Which videos show the lighthouse?",
        Videos,
        {"videos": [HARBOUR_DAWN, "Lifeboat rescue drill"]},
    ),
    (
        "harbour",
        "Who saves the penalty?",
        Penalty,
        {
            "match": {"title": FOOTBALL, "sport": "football"},
            "keeper": {"name": "Zoe", "dive_direction": "left"},
            "clip": {"title": FOOTBALL, "start_sec": 185.0, "kind": "save"},
        },
    ),
    (
        "harbour",
        "When do the fishing boats leave and return?",
        Trips,
        {
            "moments": [
                {"title": HARBOUR_DAWN, "start_sec": 42.0, "kind": "other"},
                {"title": HARBOUR_DAWN, "start_sec": 205.0, "kind": "other"},
            ],
            "start_times": [42.0, 205.0],
        },
    ),
    (
        "harbour",
        "When does the fog lift?",
        Fog,
        {"start_sec": 115.0, "duration": 15.0, "time_range": "01:55\u201302:10"},
    ),
    (
        "harbour",
        "Who won the final?",
        Result,
        {"final_score": None, "winner": "the red striker"},
    ),
    (
        "harbour",
        "Who lifts the trophy?",
        Trophy,
        {"lifted_by": "the captains", "teams": None},
    ),
    (
        "harbour",
        "What do the kayakers do?",
        Doing,
        {
            "who": "kayakers",
            "doing": "kayakers paddle past the moored yachts",
            "where": "the moored yachts",
        },
    ),
    # The demo kitchen store.
    (
        "kitchen",
        "How long does the sauce simmer?",
        Sauce,
        {"simmer_minutes": 40, "when": "for forty minutes"},
    ),
    (
        "kitchen",
        "How are the herbs chopped?",
        Herbs,
        {"technique": "with a rocking motion"},
    ),
    (
        "kitchen",
        "How do you hold a chef's knife?",
        Knife,
        {"grip": "a pinch grip", "honed": False, "on_whetstone": False},
    ),
    (
        "kitchen",
        "Is the knife honed on a steel?",
        Knife,
        {"grip": "", "honed": True, "on_whetstone": False},
    ),
    # A video added with a description and a transcript.
    ("birthday", "How old is Mia?", Age, {"age": 7}),
    (
        "birthday",
        "What does Grandpa Joe give Mia?",
        Gift,
        {"gift": "a red bicycle", "bicycle_colour": "red", "giver": "Grandpa Joe"},
    ),
    (
        "birthday",
        "Who wins musical chairs?",
        Game,
        {"winner": "Leo", "game": "musical chairs"},
    ),
    (
        "birthday",
        "What colour is the cake?",
        Cake,
        {
            "cake_colour": "",
            "summary": "In Birthday party, Mia blows out seven candles on a chocolate "
            "cake (00:20\u201300:35). Not found: cake colour.",
        },
    ),
    (
        "bake_sale",
        "How much does a lemon muffin cost?",
        Muffin,
        {"price": 1.5, "seller": "Sam", "flavour": "lemon"},
    ),
    (
        "bake_sale",
        "How much money is raised?",
        Raised,
        {"money_raised": 120, "closing_time": "at noon"},
    ),
    (
        "bake_sale",
        "Why does the boy buy a strawberry tart?",
        Tart,
        {"reason": "because it is his sister's birthday", "buyer": "a boy"},
    ),
    (
        "bake_sale",
        "How many cupcakes are set out?",
        Cupcakes,
        {"cupcakes": 40, "tables": 3, "place": ""},
    ),
    ("bake_sale", "Where is the bake sale?", Venue, {"place": "the town hall"}),
    ("bake_sale", "How many cupcakes are set out?", Count, {"count": 40}),
    (
        "harbour",
        "When is the yellow card shown?",
        CardNote,
        {
            "minute": None,
            "summary": "In Under-12 football final, the referee shows a yellow card "
            "for a late tackle (02:20\u201303:05). Not found: minute.",
        },
    ),
    (
        "harbour",
        "When is the yellow card shown?",
        Defaults,
        {"colour": "yellow", "minute": 0},
    ),
    # A video added with a file name only: its title, and nothing else.
    (
        "file_name_only",
        "Who wins the kids football match?",
        TitleOnly,
        {
            "title": "Kids football match 2024",
            "sport": "football",
            "winner": None,
            "is_football": True,
            "year": 2024,
            "when": None,
        },
    ),
    (
        "file_name_only",
        "Whose birthday is it, and how many candles does she blow out?",
        Party,
        {"child_name": "", "candles": 0, "cake_flavor": ""},
    ),
]


@pytest.mark.parametrize(
    ("store", "question", "model", "expected"),
    CASES,
    ids=[f"{c[0]}-{c[2].__name__}-{i}" for i, c in enumerate(CASES)],
)
def test_each_field_holds_the_value_the_cited_moment_gives(
    served, store, question, model, expected
) -> None:
    events = ask(served, store, question, model.model_json_schema())
    value = json.loads(answer_text(events))
    assert value == expected, question
    model.model_validate(value)  # what the user's schema accepts


def test_the_table_covers_every_type_in_thirty_cases() -> None:
    assert len(CASES) >= 30
    types = {
        kind
        for _, _, model, _ in CASES
        for prop in _properties(model.model_json_schema())
        for kind in _types(prop)
    }
    expected = {"string", "integer", "number", "boolean", "enum", "array", "object"}
    assert expected | {"null"} <= types
    stores = {store for store, *_ in CASES}
    assert {"harbour", "kitchen", "birthday", "file_name_only"} <= stores


def _properties(schema: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for definition in [schema, *schema.get("$defs", {}).values()]:
        found.extend(definition.get("properties", {}).values())
    return found


def _types(prop: dict[str, Any]) -> set[str]:
    out = {"enum"} if "enum" in prop or "$ref" in prop else set()
    if "type" in prop:
        out.add(prop["type"])
    for option in prop.get("anyOf", []):
        out |= _types(option)
    if prop.get("type") == "array" or "$ref" in prop:
        out.add("object" if "$ref" in prop else "array")
    return out


def test_what_was_not_found_is_said_in_the_commentary(served) -> None:
    events = ask(
        served,
        "trial",
        "Whose birthday is it, and how many candles does she blow out?",
        Party.model_json_schema(),
        include=["intermediate_outputs"],
    )
    final = events[-1]["response"]["output"]
    notes = [o["content"][0]["text"] for o in final if o.get("phase") == "commentary"]
    assert notes[-1] == (
        "Reading the fields from: Birthday party (00:00\u201301:00). "
        "Not found: cake flavor."
    )
    assert json.loads(final[-1]["content"][0]["text"])["cake_flavor"] == ""


def test_the_keepers_name_and_dive_reach_with_structured_output(
    mode, llm: ChatJockey
) -> None:
    structured = llm.with_structured_output(Keeper)
    question = "Who saves the penalty, and which way does she dive?"
    result = run(mode, structured, question)
    assert result == Keeper(name="Zoe", dive_direction="left")
