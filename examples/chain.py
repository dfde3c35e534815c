"""ChatJockey as a drop-in model in an LCEL chain: prompt | ChatJockey | StrOutputParser."""

from __future__ import annotations

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from _common import jockey

prompt = ChatPromptTemplate.from_messages(
    [
        ("system", "You are a sports analyst. Answer with bullet points."),
        ("human", "In the {event}, {question}"),
    ]
)

with jockey() as llm:
    chain = prompt | llm | StrOutputParser()
    for token in chain.stream(
        {
            "event": "football final",
            "question": "who saves the penalty, and what happens next?",
        }
    ):
        print(token, end="", flush=True)
    print()
