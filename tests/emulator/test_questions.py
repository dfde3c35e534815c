"""The emulator answers like Jockey: a table of natural questions, the moment a
good answer cites first, and what it must not cite."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from langchain_jockey._messages import MAX_CONTENT_CHARS, _fold
from langchain_jockey.emulator._answers import Session, Turn, compose
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

# The prompts chains send, written in our own words after LangChain's common
# shapes. Context lines are what KnowledgeStoreRetriever's `page_content` holds
# (title and time range, or what was said) or a passage list.
RAG = (
    "You are an assistant for question-answering tasks. Use the following pieces "
    "of retrieved context to answer the question. If you don't know the answer, "
    "just say that you don't know. Use three sentences maximum and keep the "
    "answer concise. Question: {question} Context: {context} Answer:"
)
ONLY_CONTEXT = (
    "Answer the question based only on the following context:\n{context}\n\n"
    "Question: {question}\n"
)
FENCED = (
    "Context information is below.\n---------------------\n{context}\n"
    "---------------------\nGiven the context information and not prior "
    "knowledge, answer the query.\nQuery: {question}\nAnswer: "
)
# The README retriever example (examples/retriever.py): clips in the system message.
EXAMPLE_QUESTION = (
    "When do the fishing boats come back, and what happens to their catch?"
)
EXAMPLE_SYSTEM = (
    "Answer from these clips, citing them:\n"
    "- Harbour at dawn (timelapse), 03:25\u201303:45\n"
    "- Fish market walkthrough, 02:45\u201303:10\n"
    "- Harbour at dawn (timelapse), 03:45\u201304:00\n"
    "- Mountain bike trail: Ridge Loop, 04:50\u201305:30"
)
QUICKSTART = "When do the fishing boats leave, and where do they unload their catch?"
PENALTY_CLIPS = "Under-12 football final, 03:05\u201303:50\n\nUnder-12 football final, 01:10\u201301:35"


def folded(*turns: str) -> str:
    """The user message ChatJockey sends for a history it folds (`_fold`)."""
    messages = [
        (HumanMessage if i % 2 == 0 else AIMessage)(text)
        for i, text in enumerate(turns)
    ]
    return _fold(messages)


def said(question: str) -> str:
    """The emulator's own answer to `question`, as a transcript would hold it."""
    return compose(STORE, question, None, instructions=None, within=None).text


FILLER = "".join(
    f"Document {n}: minutes of the harbour town council, item {n}: the budget "
    "for street lights, bins and the summer fair was discussed and approved.\n\n"
    for n in range(1, 200)
)[: MAX_CONTENT_CHARS - 400]

PROMPTS = [
    # Greetings, a name for the assistant, sign-offs.
    ("Hey Jockey, who saves the penalty?", None, (FOOTBALL, "03:05"), ALL - {FOOTBALL}),
    (
        "Hi! Quick one: where does the rider crash? Cheers",
        None,
        (BIKE, "02:20"),
        ALL - {BIKE},
    ),
    (
        "Good morning Jockey! When does the fog lift? Thank you so much.",
        None,
        (HARBOUR, "01:55"),
        ALL - {HARBOUR},
    ),
    (
        "Jockey, how is the casualty rescued?",
        None,
        (LIFEBOAT, "03:50"),
        ALL - {LIFEBOAT},
    ),
    (
        "Hello, I'm Sam. Who won the final? Thanks in advance!",
        None,
        (FOOTBALL, "05:20"),
        ALL - {FOOTBALL},
    ),
    # Instructions in the message.
    (
        "Answer in one sentence. When does the helicopter appear?",
        None,
        (LIFEBOAT, "05:20"),
        ALL - {LIFEBOAT},
    ),
    (
        "Who scores first? If you don't know, say so.",
        None,
        (FOOTBALL, "01:10"),
        ALL - {FOOTBALL},
    ),
    (
        "Please answer briefly and cite the clip: when does the rider cross the stream?",
        None,
        (BIKE, "03:15"),
        ALL - {BIKE},
    ),
    # Ranking reads the intent: parts in order, topic words, time order.
    (QUICKSTART, None, (HARBOUR, "00:42"), {FOOTBALL, BIKE, BREAD}),
    (EXAMPLE_QUESTION, None, (HARBOUR, "03:25"), {FOOTBALL, BIKE, BREAD}),
    (
        "When do the boats leave? Where do they unload their catch?",
        None,
        (HARBOUR, "00:42"),
        {FOOTBALL, BIKE, BREAD},
    ),
    (
        "List the steps of the bread video in order",
        None,
        (BREAD, "00:00"),
        ALL - {BREAD},
    ),
    (
        "When does the football match start?",
        None,
        (FOOTBALL, "00:00"),
        ALL - {FOOTBALL},
    ),
    # The README retriever example's RAG prompt.
    (EXAMPLE_QUESTION, EXAMPLE_SYSTEM, (HARBOUR, "03:25"), {FOOTBALL, BIKE, BREAD}),
    # Common RAG templates.
    (
        RAG.format(question="Who saves the penalty?", context=PENALTY_CLIPS),
        None,
        (FOOTBALL, "03:05"),
        ALL - {FOOTBALL},
    ),
    (
        f"Context:\n{PENALTY_CLIPS}\n\nQuestion: Who saves the penalty?",
        None,
        (FOOTBALL, "03:05"),
        ALL - {FOOTBALL},
    ),
    (
        ONLY_CONTEXT.format(
            question="When is the bread done?",
            context="Listen: if it sounds hollow, it is done.\n\n"
            "Sourdough bread masterclass, 04:40\u201305:10",
        ),
        None,
        (BREAD, "05:50"),
        ALL - {BREAD},
    ),
    (
        "Documents:\n1. Fish market walkthrough, 02:20\u201302:45\n"
        "2. Fish market walkthrough, 04:20\u201304:40\n\nWhere is the salmon filleted?",
        None,
        (MARKET, "02:20"),
        ALL - {MARKET},
    ),
    (
        "- Harbour at dawn (timelapse), 01:30\u201301:55\n"
        "- Harbour at dawn (timelapse), 01:55\u201302:10\n\n"
        "Based on the clips above, when does the fog lift?",
        None,
        (HARBOUR, "01:55"),
        ALL - {HARBOUR},
    ),
    (
        FENCED.format(
            question="How do buyers bid at the auction?",
            context="Lot one, fresh cod, who will start me at forty?\n"
            "Fish market walkthrough, 01:20\u201301:50",
        ),
        None,
        (MARKET, "01:20"),
        ALL - {MARKET},
    ),
    (
        "<context>\nLifeboat rescue drill, 05:20\u201306:00\n</context>\n"
        "<question>When does the helicopter appear?</question>",
        None,
        (LIFEBOAT, "05:20"),
        ALL - {LIFEBOAT},
    ),
    (
        "Context:\nUnder-12 football final, 05:20\u201306:20\n\n"
        "Who scores the winning goal?",
        None,
        (FOOTBALL, "05:20"),
        ALL - {FOOTBALL},
    ),
    (
        "Document 1:\nTitle: Lifeboat rescue drill\nContent: the crew hauls the "
        "casualty on board with a rescue sling\n\nQuestion: How is the casualty "
        "rescued?\nHelpful answer:",
        None,
        (LIFEBOAT, "03:50"),
        ALL - {LIFEBOAT},
    ),
    # Retrieved context narrows towards its videos, and never replaces the store.
    (
        "Context:\n- Lifeboat rescue drill, 01:15\u201301:50\n"
        "- Lifeboat rescue drill, 06:00\u201306:40\n\n"
        "Question: When does the boat go down the slipway?",
        None,
        (LIFEBOAT, "01:15"),
        ALL - {LIFEBOAT},
    ),
    (
        "Context:\n- Mountain bike trail: Ridge Loop, 02:20\u201302:45\n\n"
        "Question: Who saves the penalty?",
        None,
        (FOOTBALL, "03:05"),
        ALL - {FOOTBALL},
    ),
    (
        "Context:\n- Pasta night, 00:10\u201300:20: the chef drains the spaghetti\n\n"
        "Question: What does the chef buy?",
        None,
        (MARKET, "01:50"),
        ALL - {MARKET},
    ),
    # Instructions in a system message.
    (
        "Who scores first?",
        "You are a helpful assistant for a sports club. Answer in one sentence.",
        (FOOTBALL, "01:10"),
        ALL - {FOOTBALL},
    ),
    (
        "When is the bread done?",
        "Use the following pieces of retrieved context to answer the question.\n\n"
        "Context:\nSourdough bread masterclass, 05:50\u201306:30",
        (BREAD, "05:50"),
        ALL - {BREAD},
    ),
    (
        "Hey there! Which videos are about food? Thanks!",
        "You are a chef.",
        (MARKET, "00:50"),
        ALL - {MARKET, BREAD},
    ),
    # Folded transcripts whose last question refers back.
    (
        folded(
            "Who saves the penalty?", said("Who saves the penalty?"), "and after that?"
        ),
        None,
        (FOOTBALL, "03:50"),
        ALL - {FOOTBALL},
    ),
    (
        folded(
            "When do the fishing boats leave?",
            said("When do the fishing boats leave?"),
            "What happens next?",
        ),
        None,
        (HARBOUR, "01:15"),
        ALL - {HARBOUR},
    ),
    (
        folded(
            "When does the helicopter appear?",
            said("When does the helicopter appear?"),
            "Thanks! And then?",
        ),
        None,
        (LIFEBOAT, "06:00"),
        ALL - {LIFEBOAT},
    ),
    (
        folded(
            "Who scores first?",
            said("Who scores first?"),
            "Hey Jockey, what happens after that?",
        ),
        "Answer in one sentence.",
        (FOOTBALL, "01:35"),
        ALL - {FOOTBALL},
    ),
    # Long prompts near the 10,000-character limit.
    (
        f"Context:\n{FILLER}\nQuestion: Who saves the penalty?",
        None,
        (FOOTBALL, "03:05"),
        ALL - {FOOTBALL},
    ),
    (
        folded(
            *[
                text
                for q in ["Who scores first?", "When is the bread done?"] * 29
                for text in (q, said(q))
            ],
            "Where does the rider crash?",
        ),
        None,
        (BIKE, "02:20"),
        ALL - {BIKE},
    ),
]

# Issue #34: the shapes that were still wrong, in general form. A person's name
# in a greeting, an introduction or a signature is not the subject; "what does X
# <verb>" cites the moment where X does it; "right after that" / "next" cite the
# moment after the last one cited, in the session or in a folded transcript
# (also when its answer names the moment in other words); a context-only prompt
# whose context holds the answer cites it (the ones that cannot: CONTEXT_ONLY_MISSES).
SHAPES = [
    (
        "Hi Jockey! Quick one from Priya: who saves the penalty?",
        None,
        (FOOTBALL, "03:05"),
        ALL - {FOOTBALL},
    ),
    (
        "Quick question from Priya - when does the helicopter appear?",
        None,
        (LIFEBOAT, "05:20"),
        ALL - {LIFEBOAT},
    ),
    ("When does the fog lift? \u2014 Priya", None, (HARBOUR, "01:55"), ALL - {HARBOUR}),
    (
        "This is Sam from the Leeds club. Where does the rider crash?",
        None,
        (BIKE, "02:20"),
        ALL - {BIKE},
    ),
    (
        "What does the rider inspect before setting off?",
        None,
        (BIKE, "00:00"),
        ALL - {BIKE},
    ),
    (
        "What does the chef inspect before buying it?",
        None,
        (MARKET, "01:50"),
        ALL - {MARKET},
    ),
    ("What is the crew pulling on?", None, (LIFEBOAT, "00:35"), ALL - {LIFEBOAT}),
    ("What did the buyers bid for?", None, (MARKET, "01:20"), ALL - {MARKET}),
    (
        folded(
            "Who saves the penalty?",
            "Zoe, the red keeper, saves it by diving to her left (03:05\u201303:50) [1].",
            "And what happens right after that?",
        ),
        None,
        (FOOTBALL, "03:50"),
        ALL - {FOOTBALL},
    ),
    (
        folded(
            "Who saves the penalty?",
            "The red keeper Zoe dives to her left and saves it.",
            "Next?",
        ),
        None,
        (FOOTBALL, "03:50"),
        ALL - {FOOTBALL},
    ),
    (
        folded(
            "When does the fog lift?",
            said("When does the fog lift?"),
            "What comes next?",
        ),
        None,
        (HARBOUR, "02:10"),
        ALL - {HARBOUR},
    ),
    (
        "Answer using only the context.\nContext:\nThe keeper dives to her left "
        "and saves the penalty.\n\nQuestion: Who saves the penalty?",
        None,
        (FOOTBALL, "03:05"),
        ALL - {FOOTBALL},
    ),
    (
        "When does the helicopter appear?",
        "Use only the documents below to answer. If the documents do not contain "
        "the answer, say so.\n\nDocuments:\n1. Lifeboat rescue drill, "
        "05:20\u201306:00",
        (LIFEBOAT, "05:20"),
        ALL - {LIFEBOAT},
    ),
]
PROMPTS += SHAPES
TABLE += PROMPTS

# "Answer only from the context", and the context does not hold the answer.
CONTEXT_ONLY_MISSES = [
    (
        ONLY_CONTEXT.format(
            question="Who saves the penalty?",
            context="Sourdough bread masterclass, 04:40\u201305:10",
        ),
        None,
    ),
    (
        FENCED.format(
            question="How do buyers bid at the auction?",
            context="Lot one, fresh cod, who will start me at forty?",
        ),
        None,
    ),
    (
        "Who saves the penalty?",
        "Use only the documents below to answer. If the documents do not contain "
        "the answer, say so.\n\nDocuments:\n1. Lifeboat rescue drill, "
        "05:20\u201306:00",
    ),
]

OUT_OF_SCOPE = [
    "What is the capital of France?",
    "Explain the rules of cricket",
    "What is the weather in Paris?",
    "Tell me about quantum chromodynamics",
    "Who is the president of the United States?",
    "Write me a poem about cats",
    "Hi Jockey! What is the weather in Paris today? Thanks",
    "Context:\n- Pasta night, 00:10\u201300:20: the chef drains the spaghetti\n\n"
    "Question: When is the spaghetti drained?",
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
    assert len(PROMPTS) >= 25
    assert len(SHAPES) >= 10


def test_the_long_prompts_are_near_the_limit() -> None:
    long = [q for q, *_ in PROMPTS if len(q) > MAX_CONTENT_CHARS * 0.85]
    assert len(long) == 2
    assert all(len(q) <= MAX_CONTENT_CHARS for q in long)


def test_a_question_in_parts_is_answered_in_the_order_asked() -> None:
    assert cited(QUICKSTART, None)[:2] == [(HARBOUR, "00:42"), (MARKET, "02:45")]


def test_in_order_tells_one_video_in_time_order() -> None:
    moments = cited("What does the baker do to the dough, in order?", None)
    assert [video for video, _ in moments] == [BREAD] * len(moments)
    assert moments == sorted(moments)
    assert len(moments) >= 2


def test_an_instruction_in_the_message_shapes_the_answer() -> None:
    question = "How is the casualty rescued?"
    assert len(cited(f"{question} Answer in one sentence.", None)) == 1
    assert len(cited(question, None)) > 1


def test_context_and_instructions_are_not_searched() -> None:
    # Only the question is: the clips' titles do not pull in their videos.
    prompt = RAG.format(
        question="When does the rider cross the stream?",
        context="Under-12 football final, 03:05\u201303:50\n\nSourdough bread masterclass",
    )
    assert {video for video, _ in cited(prompt, None)} == {BIKE}


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


@pytest.mark.parametrize(("question", "instructions"), CONTEXT_ONLY_MISSES)
def test_a_context_only_prompt_whose_context_cannot_answer_says_so_citing_nothing(
    question, instructions
) -> None:
    answer = compose(STORE, question, None, instructions=instructions, within=None)
    assert answer.cited == ()
    assert answer.annotations == []
    assert "in the context given" in answer.text


@pytest.mark.parametrize(
    "follow_up", ["And what happens right after that?", "Next?", "What comes next?"]
)
def test_right_after_that_in_a_session_cites_the_moment_after_the_last_cited(
    follow_up,
) -> None:
    session = Session("sess_test", STORE.store_id)
    first = compose(
        STORE, "Who saves the penalty?", session, instructions=None, within=None
    )
    session.turns.append(Turn("Who saves the penalty?", first.text, first.cited))
    answer = compose(STORE, follow_up, session, instructions=None, within=None)
    after = first.cited[-1]
    assert answer.cited[0] == after.video.moments[after.index + 1]


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
