"""A multi-turn conversation through message history: Jockey keeps the session.

Each answer carries its session id; passing the history back continues the
session, and only the new question is sent.
"""

from __future__ import annotations

from langchain_core.messages import HumanMessage

from _common import jockey

QUESTIONS = [
    "When does the first goal come after the corner kick?",
    "What happens next?",
    "And after that?",
]

with jockey(instructions="Be brief.") as llm:
    history: list = []
    for question in QUESTIONS:
        history.append(HumanMessage(question))
        answer = llm.invoke(history)
        history.append(answer)
        print(
            f"You: {question}\nJockey: {answer.text}\n  (session {answer.response_metadata['session_id']})\n"
        )
