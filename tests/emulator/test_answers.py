"""Answers: drawn from the demo store, deterministic, cited, shaped by instructions and history."""

from __future__ import annotations

import json

import pytest

from langchain_jockey.emulator import DEMO_STORE_ID, MEDIA_PATH, STORES
from tests.emulator.conftest import answer_text, body, stream_events

STORE = STORES[DEMO_STORE_ID]
DURATION = {v.item_id: v.duration for v in STORE.videos}
QUESTIONS = [
    "When do the fishing boats leave?",
    "What happens after the corner kick?",
    "How does the baker check the loaf is done?",
    "Where does the rider crash?",
    "How is the casualty brought on board?",
    "What does the auctioneer do?",
    "Summarise the lifeboat drill",
    "What videos are in the store?",
]


def final_response(events):
    return events[-1]["response"]


def annotations(response):
    part = response["output"][-1]["content"][0]
    return part["text"], part["annotations"]


def test_demo_store_has_at_least_five_videos_with_a_dozen_moments() -> None:
    assert STORE.store_id.startswith("ks_")
    assert len(STORE.videos) >= 5
    for video in STORE.videos:
        assert video.item_id.startswith("ksi_")
        assert video.title and video.duration > 0
        assert len(video.moments) >= 12
    assert all(c.startswith("ksic_") for c in STORE.collections)


@pytest.mark.parametrize("question", QUESTIONS)
def test_every_citation_slices_its_marker_and_fits_its_video(client, question) -> None:
    text, notes = annotations(final_response(stream_events(client, body(question))))
    assert notes, question
    for number, note in enumerate(notes, 1):
        assert (
            text[note["start_index"] : note["end_index"] + 1] == f"[{number}]"
        )  # inclusive end
        assert note["type"] == "video_citation"
        assert 0 <= note["start_sec"] < note["end_sec"] <= DURATION[note["item_id"]]
        assert note["title"] == STORE.video(note["item_id"]).title
        # Media of the moment on the emulator itself (tests/emulator/test_media.py)
        media = f"{client.base_url.scheme}://{client.base_url.netloc.decode()}"
        media += MEDIA_PATH
        assert note["thumbnail_url"].startswith(media)
        assert note["thumbnail_url"].endswith(
            f"/{note['item_id']}/thumb_{int(note['start_sec'])}.jpg"
        )
        assert note["hls_url"].startswith(media)
        assert note["hls_url"].endswith(f"/{note['item_id']}/index.m3u8")


def test_code_point_offsets_survive_non_ascii_text(client) -> None:
    # The en dash in time ranges is one code point but three UTF-8 bytes.
    text, notes = annotations(
        final_response(stream_events(client, body("Who saves the penalty?")))
    )
    assert "\u2013" in text
    assert text[notes[0]["start_index"] : notes[0]["end_index"] + 1] == "[1]"


def test_answer_is_drawn_from_matching_moments(client) -> None:
    text = answer_text(stream_events(client, body("When do the fishing boats leave?")))
    assert "the fishing boats leave the harbour just before dawn" in text
    assert "Harbour at dawn" in text


def test_same_request_and_state_give_the_same_text(client) -> None:
    first = answer_text(
        stream_events(client, body("What happens after the corner kick?"))
    )
    second = answer_text(
        stream_events(client, body("What happens after the corner kick?"))
    )
    assert first == second


def test_streamed_and_non_streamed_text_are_equal(client) -> None:
    streamed = answer_text(stream_events(client, body("Where does the rider crash?")))
    plain = client.post("/responses", json=body("Where does the rider crash?")).json()
    assert plain["output"][0]["content"][0]["text"] == streamed


def test_unmatched_question_says_so_without_citations(client) -> None:
    text, notes = annotations(
        final_response(
            stream_events(client, body("Tell me about quantum chromodynamics"))
        )
    )
    assert text.startswith("I could not find anything about that")
    assert notes == []


@pytest.mark.parametrize(
    ("instructions", "check"),
    [
        (
            "Answer with bullet points.",
            lambda text, n: text.startswith("- ") and text.count("\n- ") == n - 1,
        ),
        ("Be brief.", lambda text, n: n == 1),
        ("Answer in detail.", lambda text, n: n == 5),
        ("Answer without timestamps.", lambda text, n: "\u2013" not in text and n == 3),
        (
            'Start your answer with "Ticket 42:".',
            lambda text, n: text.startswith("Ticket 42: In ") and n == 3,
        ),
    ],
)
def test_instructions_change_the_answer_observably(client, instructions, check) -> None:
    plain = answer_text(
        stream_events(client, body("What happens in the football final?"))
    )
    shaped = final_response(
        stream_events(
            client,
            body("What happens in the football final?", instructions=instructions),
        )
    )
    text, notes = annotations(shaped)
    assert text != plain
    assert check(text, len(notes)), text


def test_follow_up_continues_from_the_last_cited_moment(client) -> None:
    first = final_response(
        stream_events(
            client,
            body(
                "When does the first goal come after the corner kick?",
                instructions="Be brief.",
            ),
        )
    )
    _, first_notes = annotations(first)
    session = first["session_id"]
    nxt = final_response(
        stream_events(
            client,
            body("What happens next?", session_id=session, instructions="Be brief."),
        )
    )
    assert nxt["session_id"] == session
    _, notes = annotations(nxt)
    assert notes[0]["item_id"] == first_notes[-1]["item_id"]
    assert notes[0]["start_sec"] == first_notes[-1]["end_sec"]  # the very next moment
    earlier = final_response(
        stream_events(
            client,
            body("And before that?", session_id=session, instructions="Be brief."),
        )
    )
    assert annotations(earlier)[1][0]["end_sec"] == notes[0]["start_sec"]


def test_item_numbers_count_across_the_session(client) -> None:
    first = stream_events(client, body())
    session = first[0]["response"]["session_id"]
    second = stream_events(client, body("And then?", session_id=session))
    assert second[2]["item"]["id"] == f"msg_{session}_1"


def test_selections_narrow_retrieval_to_the_referenced_item(client) -> None:
    market = STORE.videos[1]
    response = final_response(
        stream_events(
            client,
            body(
                "What happens to the boats in {{sel:0}}?",
                selections=[{"kind": "item", "id": market.item_id}],
            ),
        )
    )
    _, notes = annotations(response)
    assert notes
    assert {n["item_id"] for n in notes} == {market.item_id}


def test_collection_selections_narrow_to_their_members(client) -> None:
    collection, members = next(iter(STORE.collections.items()))
    response = final_response(
        stream_events(
            client,
            body(
                "Show me the boats in {{sel:0}}",
                selections=[{"kind": "collection", "id": collection}],
            ),
        )
    )
    _, notes = annotations(response)
    assert notes
    assert {n["item_id"] for n in notes} <= set(members)


def test_intermediate_outputs_show_commentary_and_tool_steps_before_the_answer(
    client,
) -> None:
    events = stream_events(client, body(include=["intermediate_outputs"]))
    added = [e["item"] for e in events if e["type"] == "response.output_item.added"]
    assert [(i["type"], i.get("phase")) for i in added] == [
        ("message", "commentary"),
        ("function_call", None),
        ("function_call_output", None),
        ("message", "final_answer"),
    ]
    args_done = next(
        e for e in events if e["type"] == "response.function_call_arguments.done"
    )
    assert json.loads(args_done["arguments"])["query"]
    final = final_response(events)
    assert [o["type"] for o in final["output"]] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
    ]
    results = json.loads(final["output"][2]["output"])
    assert results and all(r["item_id"].startswith("ksi_") for r in results)
    plain = answer_text(stream_events(client, body()))
    assert answer_text(events) == plain  # the answer is unchanged


def test_the_search_step_names_the_prompts_question_not_its_template(client) -> None:
    prompt = (
        "Use the following pieces of retrieved context to answer the question.\n"
        "Context:\nUnder-12 football final, 03:05\u201303:50\n\n"
        "Question: Who saves the penalty?\nAnswer:"
    )
    events = stream_events(client, body(prompt, include=["intermediate_outputs"]))
    calls = [
        json.loads(e["item"]["arguments"])
        for e in events
        if e["type"] == "response.output_item.done"
        and e["item"]["type"] == "function_call"
    ]
    assert calls == [{"query": "Who saves the penalty?", "limit": 1}]
