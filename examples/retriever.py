"""A RAG chain over a knowledge store: retriever -> prompt -> chat model.

`KnowledgeStoreRetriever` finds the video clips that match the question (the
store's search endpoint); the chain hands them to a chat model as context, and
prints the clips it found with their timestamps. The chat model here is
ChatJockey; any LangChain chat model fits the same place.
"""

from __future__ import annotations

from _common import jockey, mmss
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough

from langchain_jockey import KnowledgeStoreRetriever

QUESTION = "When do the fishing boats come back, and what happens to their catch?"

prompt = ChatPromptTemplate.from_messages(
    [
        ("system", "Answer from these clips, citing them:\n{clips}"),
        ("human", "{question}"),
    ]
)


def clips(docs: list) -> str:
    """One line per clip: title and time range, or what was said."""
    return "\n".join(f"- {d.page_content}" for d in docs)


with jockey() as llm:
    retriever = KnowledgeStoreRetriever(
        base_url=llm.base_url,
        api_key=llm.api_key,
        knowledge_store_id=llm.knowledge_store_id,
        k=4,
    )
    found = retriever.invoke(QUESTION)
    print("Clips found:")
    for doc in found:
        meta = doc.metadata
        span = f"{mmss(meta['start_sec'])}–{mmss(meta['end_sec'])}"
        print(f"  {meta['rank']}. {meta['title']} {span}")
    chain = (
        {"clips": retriever | clips, "question": RunnablePassthrough()}
        | prompt
        | llm
        | StrOutputParser()
    )
    print("\nAnswer: ", end="")
    for token in chain.stream(QUESTION):
        print(token, end="", flush=True)
    print()
