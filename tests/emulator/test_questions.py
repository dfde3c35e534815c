"""The emulator answers like Jockey: a table of natural questions, the moment a
good answer cites first, and what it must not cite."""

from __future__ import annotations

import pytest

from langchain_jockey.emulator._answers import compose
from langchain_jockey.emulator._store import DEMO_STORE_ID, STORES

STORE = STORES[DEMO_STORE_ID]
HARBOUR, MARKET, FOOTBALL, BREAD, BIKE, LIFEBOAT = (v.title for v in STORE.videos)
ALL = {HARBOUR, MARKET, FOOTBALL, BREAD, BIKE, LIFEBOAT}
SPORTS = "You are a sports analyst."

# (question, instructions, first cited (video, start mm:ss), must not cite)
TABLE = [
    ("Who scores first?", None, (FOOTBALL, "01:10"), ALL - {FOOTBALL}),
    ("Who scores the winning goal?", None, (FOOTBALL, "05:20"), ALL - {FOOTBALL}),
    ("What is the final score?", None, (FOOTBALL, "05:20"), ALL - {FOOTBALL}),
    ("Who saves the penalty?", None, (FOOTBALL, "03:05"), ALL - {FOOTBALL}),
    ("When is the yellow card shown?", None, (FOOTBALL, "02:20"), ALL - {FOOTBALL}),
    (
        "What happens after the corner kick?",
        None,
        (FOOTBALL, "01:10"),
        ALL - {FOOTBALL},
    ),
    (
        "What happens before the penalty save?",
        None,
        (FOOTBALL, "01:10"),
        ALL - {FOOTBALL},
    ),
    (
        "What happens last in the football final?",
        None,
        (FOOTBALL, "08:20"),
        ALL - {FOOTBALL},
    ),
    ("Summarize the football final", None, (FOOTBALL, "00:00"), ALL - {FOOTBALL}),
    ("Summarize the key plays", SPORTS, (FOOTBALL, "00:00"), ALL - {FOOTBALL}),
    ("How is the bread shaped?", None, (BREAD, "03:00"), ALL - {BREAD}),
    ("When is the bread done?", None, (BREAD, "05:50"), ALL - {BREAD}),
    (
        "How does the baker check the loaf is baked?",
        None,
        (BREAD, "05:50"),
        ALL - {BREAD},
    ),
    ("What happens first in the bread video?", None, (BREAD, "00:00"), ALL - {BREAD}),
    ("Where does the rider crash?", None, (BIKE, "02:20"), ALL - {BIKE}),
    ("Does anyone fall off their bike?", None, (BIKE, "02:20"), ALL - {BIKE}),
    ("When does the rider cross the stream?", None, (BIKE, "03:15"), ALL - {BIKE}),
    (
        "When do the fishing boats leave?",
        None,
        (HARBOUR, "00:42"),
        {FOOTBALL, BIKE, BREAD},
    ),
    ("When does the fog lift?", None, (HARBOUR, "01:55"), ALL - {HARBOUR}),
    ("Where is the salmon filleted?", None, (MARKET, "02:20"), ALL - {MARKET}),
    ("How do buyers bid at the auction?", None, (MARKET, "01:20"), ALL - {MARKET}),
    ("What does the chef buy?", None, (MARKET, "01:50"), ALL - {MARKET}),
    ("Give me an overview of the market", None, (MARKET, "00:00"), ALL - {MARKET}),
    ("How is the casualty rescued?", None, (LIFEBOAT, "03:50"), ALL - {LIFEBOAT}),
    ("When does the helicopter appear?", None, (LIFEBOAT, "05:20"), ALL - {LIFEBOAT}),
    ("Summarise the lifeboat drill", None, (LIFEBOAT, "00:00"), ALL - {LIFEBOAT}),
    (
        "What happens at the end of the lifeboat drill?",
        None,
        (LIFEBOAT, "07:20"),
        ALL - {LIFEBOAT},
    ),
    ("Which videos show boats?", None, (HARBOUR, "03:25"), {FOOTBALL, BIKE, BREAD}),
    (
        "Which videos show the lighthouse?",
        None,
        (HARBOUR, "01:30"),
        ALL - {HARBOUR, LIFEBOAT},
    ),
    ("Which videos have gulls?", None, (HARBOUR, "03:45"), ALL - {HARBOUR}),
    ("Describe what happens in these videos", None, (HARBOUR, "00:42"), set()),
    ("What are the key moments?", None, (HARBOUR, "00:42"), set()),
    (
        "What do the videos show?",
        "You are a chef.",
        (MARKET, "00:50"),
        ALL - {MARKET, BREAD},
    ),
    ("Who won the final?", None, (FOOTBALL, "05:20"), ALL - {FOOTBALL}),
    ("When does the keeper make a save?", None, (FOOTBALL, "03:05"), ALL - {FOOTBALL}),
    ("How many goals are scored?", None, (FOOTBALL, "01:10"), ALL - {FOOTBALL}),
    ("What does the crumb look like?", None, (BREAD, "06:30"), ALL - {BREAD}),
    ("Is there a river crossing on the trail?", None, (BIKE, "03:15"), ALL - {BIKE}),
    (
        "What happens at the start of the bike ride?",
        None,
        (BIKE, "00:00"),
        ALL - {BIKE},
    ),
    ("What happens when the fog comes in?", None, (HARBOUR, "01:15"), ALL - {HARBOUR}),
    ("Which videos are about food?", None, (MARKET, "00:50"), ALL - {MARKET, BREAD}),
    ("How much does the lobster cost?", None, (MARKET, "04:00"), ALL - {MARKET}),
    (
        "What is the last thing in the lifeboat drill?",
        None,
        (LIFEBOAT, "07:20"),
        ALL - {LIFEBOAT},
    ),
    ("How do you cook a crab?", None, (MARKET, "03:35"), ALL - {MARKET}),
    ("What happens right after the save?", None, (FOOTBALL, "03:50"), ALL - {FOOTBALL}),
]

OUT_OF_SCOPE = [
    "What is the capital of France?",
    "Explain the rules of cricket",
    "What is the weather in Paris?",
    "Tell me about quantum chromodynamics",
    "Who is the president of the United States?",
    "Write me a poem about cats",
]


def cited(question: str, instructions: str | None) -> list[tuple[str, str]]:
    answer = compose(STORE, question, None, instructions=instructions, within=None)
    return [(m.video.title, m.time_range.split("\u2013")[0]) for m in answer.cited]


@pytest.mark.parametrize(("question", "instructions", "first", "never"), TABLE)
def test_a_natural_question_cites_the_right_moment_first(
    question, instructions, first, never
) -> None:
    moments = cited(question, instructions)
    assert moments, f"{question!r}: nothing cited"
    assert moments[0] == first, f"{question!r}: {moments}"
    assert not {video for video, _ in moments} & never, f"{question!r}: {moments}"


def test_the_table_is_at_least_thirty_questions() -> None:
    assert len(TABLE) >= 30


@pytest.mark.parametrize(
    "question", ["Describe what happens in these videos", "What are the key moments?"]
)
def test_overviews_spread_over_every_video(question) -> None:
    assert {video for video, _ in cited(question, None)} == ALL


def test_which_videos_cites_each_relevant_video_once() -> None:
    videos = [video for video, _ in cited("Which videos show boats?", None)]
    assert sorted(videos) == sorted({HARBOUR, MARKET, LIFEBOAT})


def test_a_domain_instruction_narrows_the_overview() -> None:
    videos = {v for v, _ in cited("Summarize the key plays", SPORTS)}
    assert videos == {FOOTBALL}
    assert {v for v, _ in cited("What are the key moments?", SPORTS)} <= {
        FOOTBALL,
        BIKE,
    }


@pytest.mark.parametrize("question", OUT_OF_SCOPE)
def test_questions_not_about_the_videos_say_so_without_citations(question) -> None:
    answer = compose(STORE, question, None, instructions=None, within=None)
    assert answer.cited == ()
    assert answer.text.startswith("I could not find anything about that")


@pytest.mark.parametrize(("question", "instructions", "first", "never"), TABLE)
def test_nothing_in_the_table_is_answered_nothing_found(
    question, instructions, first, never
) -> None:
    answer = compose(STORE, question, None, instructions=instructions, within=None)
    assert "could not find" not in answer.text


def test_end_up_asks_where_not_for_the_last_moment() -> None:
    question = "When do the fishing boats leave, and where does their catch end up?"
    moments = cited(question, None)
    assert (HARBOUR, "00:42") in moments  # the boats leaving
    assert (HARBOUR, "03:45") not in moments  # the video's last moment (gulls)


def test_a_moment_earlier_in_the_same_video_is_told_as_earlier_not_then() -> None:
    answer = compose(
        STORE, "How is the casualty rescued?", None, instructions=None, within=None
    )
    first, second = answer.cited[:2]
    assert first.video == second.video
    assert second.start_sec < first.start_sec
    assert f"Earlier, {second.description}" in answer.text
    assert f"Then {second.description}" not in answer.text
