"""The README's RAG chain, end to end against the emulator: KnowledgeStoreRetriever
-> ChatPromptTemplate -> ChatJockey answers with a citation of the right moment."""

from __future__ import annotations

import pytest
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough

from langchain_jockey import ChatJockey, KnowledgeStoreRetriever
from tests.support import run

TEMPLATES = {
    "context-then-question": ChatPromptTemplate.from_template(
        "Context:\n{context}\n\nQuestion: {question}"
    ),
    "rag-instructions": ChatPromptTemplate.from_template(
        "You are an assistant for question-answering tasks. Use the following "
        "pieces of retrieved context to answer the question. If you don't know "
        "the answer, say that you don't know. Keep the answer short.\n"
        "Question: {question}\nContext: {context}\nAnswer:"
    ),
    "clips-in-system": ChatPromptTemplate.from_messages(
        [
            ("system", "Answer from these clips, citing them:\n{context}"),
            ("human", "Hey Jockey, {question}"),
        ]
    ),
}
# (question, title of the video cited first, its start in seconds)
QUESTIONS = [
    ("Who saves the penalty?", "Under-12 football final", 185.0),
    ("When do the fishing boats leave?", "Harbour at dawn (timelapse)", 42.0),
    ("When is the bread done?", "Sourdough bread masterclass", 350.0),
]


def docs(found: list) -> str:
    """The retrieved clips as numbered passages, titles first."""
    return "\n".join(
        f"{n}. {d.metadata['title']}: {d.page_content}" for n, d in enumerate(found, 1)
    )


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("case", QUESTIONS, ids=[q for q, *_ in QUESTIONS])
def test_retriever_prompt_chat_chain_cites_the_right_moment(
    mode, emulator, template, case
) -> None:
    question, title, start = case
    llm = ChatJockey(**emulator.chat_kwargs())
    retriever = KnowledgeStoreRetriever(**emulator.chat_kwargs(), k=4)
    chain = (
        {"context": retriever | docs, "question": RunnablePassthrough()}
        | TEMPLATES[template]
        | llm
    )
    answer = run(mode, chain, question)
    assert "could not find" not in answer.text
    citations = answer.response_metadata["annotations"]
    assert citations, answer.text
    assert (citations[0]["title"], citations[0]["start_sec"]) == (title, start)
    assert {c["title"] for c in citations} == {title}
