"""`KnowledgeStoreRetriever`: a knowledge store's search as a LangChain retriever.

`POST /knowledge-stores/{id}/search` returns ranked video clips; each becomes a
`Document`, ready for a RAG chain or a hybrid retriever. Requests go through
the same layers as `ChatJockey` (`_client`, `_http`): one place for auth,
retries, timeouts and errors.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

import httpx
from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from langchain_jockey import _http
from langchain_jockey._client import JockeyConnection
from langchain_jockey._output import seconds, time_range
from langchain_jockey.errors import JockeyInputError

__all__ = ["KnowledgeStoreRetriever"]

logger = logging.getLogger("langchain_jockey")

_FILTER_KEYS = {"asset_type", "item_id"}
_PAGE_MAX = 50  # the API's largest page_size


class KnowledgeStoreRetriever(JockeyConnection, BaseRetriever):
    """Video clips of a TwelveLabs knowledge store that match a query.

    ```python
    from langchain_jockey import KnowledgeStoreRetriever

    retriever = KnowledgeStoreRetriever(knowledge_store_id="ks_…", k=5)
    docs = retriever.invoke("the penalty save")
    docs[0].metadata  # item_id, title, start_sec, end_sec, rank, modalities, …
    ```

    Each matching clip is a `Document`: its `page_content` is what was said in
    the clip when the API returns a transcription, else a line made from its
    title and time range; its `metadata` holds `item_id`, `title`,
    `start_sec`, `end_sec`, `rank`, `modalities`, `transcription`,
    `knowledge_store_id`, `source` and the item's user metadata
    (`user_metadata`); its `id` is stable per clip.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    k: int = Field(default=4, ge=1)
    """How many clips to return (pages are fetched until there are `k`)."""

    filter: dict[str, Any] | None = None
    """The API's filter: `{"asset_type": {"eq"|"in": …}, "item_id": {"eq"|"in": …}}`."""

    modalities: list[Literal["visual", "audio"]] | None = None
    """What videos are matched on (`["visual"]` by default, the API's default)."""

    group_by: Literal["none", "item"] = "none"
    """`"item"` asks the API to group clips under their video; each clip is
    still its own Document."""

    def _pages(self, query: str, kwargs: dict[str, Any]) -> _Pages:
        """The pages of one search; bad input is an error before any request."""
        k = kwargs.pop("k", self.k)
        if kwargs:
            msg = f"KnowledgeStoreRetriever takes k=… per call, not {sorted(kwargs)}."
            raise JockeyInputError(msg)
        if not isinstance(query, str) or not query.strip():
            msg = "KnowledgeStoreRetriever needs a non-empty query."
            raise JockeyInputError(msg)
        if type(k) is not int or k < 1:
            msg = f"k must be an integer of at least 1, not {k!r}."
            raise JockeyInputError(msg)
        if self.filter:
            unknown = set(self.filter) - _FILTER_KEYS
            if unknown:
                msg = f"filter takes {sorted(_FILTER_KEYS)}, not {sorted(unknown)}."
                raise JockeyInputError(msg)
            for name, value in self.filter.items():
                if (
                    not isinstance(value, Mapping)
                    or len(value) != 1
                    or (not {"eq", "in"} >= set(value))
                ):
                    msg = f"filter[{name!r}] takes exactly one of 'eq' or 'in'."
                    raise JockeyInputError(msg)
        return _Pages(self, query, k)

    def _body(self, query: str, k: int, token: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"query": {"text": query}}
        if self.filter:
            body["filter"] = self.filter
        if self.modalities:
            body["search_options"] = {"video": {"modalities": list(self.modalities)}}
        if self.group_by != "none":
            body["group_by"] = self.group_by
        body["page_size"] = min(k, _PAGE_MAX)
        body["include_metadata"] = True
        if token:
            body["page_token"] = token
        return body

    def _request(
        self, client: httpx.Client | httpx.AsyncClient, body: dict[str, Any]
    ) -> httpx.Request:
        if not self.knowledge_store_id:
            msg = (
                "KnowledgeStoreRetriever needs a knowledge store: pass "
                "knowledge_store_id='ks_…' or set TWELVE_LABS_KNOWLEDGE_STORE_ID."
            )
            raise JockeyInputError(msg)
        path = f"knowledge-stores/{self.knowledge_store_id}/search"
        return self._build(client, path, body=body, accept=_http.JSON)

    def _documents(self, page: Any) -> tuple[list[Document], str | None]:
        docs: list[Document] = []
        hits = page.get("data") if isinstance(page, dict) else None
        for hit in hits if isinstance(hits, list) else ():
            if not isinstance(hit, dict) or not isinstance(hit.get("matches"), list):
                continue  # an image hit, or nothing readable
            meta = hit.get("metadata")
            user = meta.get("user") if isinstance(meta, dict) else None
            user = user if isinstance(user, dict) else {}
            item_id = str(hit.get("item_id"))
            title = str(user.get("title") or item_id)
            for match in hit["matches"]:
                doc = self._document(hit, match, item_id, title, user)
                if doc is not None:
                    docs.append(doc)
        token = page.get("next_page_token") if isinstance(page, dict) else None
        return docs, token if isinstance(token, str) and token else None

    def _document(
        self,
        hit: dict[str, Any],
        match: Any,
        item_id: str,
        title: str,
        user: dict[str, Any],
    ) -> Document | None:
        """One clip as a `Document`; `None` for a match that is not a clip."""
        if not isinstance(match, dict):
            return None
        start = seconds(match.get("start_sec", 0))
        end = seconds(match.get("end_sec", 0))
        if start is None or end is None:  # not a clip anyone can play
            logger.debug("Jockey search clip dropped, times unreadable: %.200r", match)
            return None
        said = match.get("transcription")
        span = time_range(start, end)
        content = said if isinstance(said, str) and said else f"{title}, {span}"
        metadata = {
            "item_id": item_id,
            "title": title,
            "start_sec": start,
            "end_sec": end,
            "rank": hit.get("rank"),
            "modalities": match.get("modalities") or [],
            "transcription": said if isinstance(said, str) else None,
            "knowledge_store_id": self.knowledge_store_id,
            "source": f"{item_id}#t={start:g},{end:g}",
            "user_metadata": user,
        }
        for key in ("thumbnail_url", "hls_url"):
            if isinstance(match.get(key), str):
                metadata[key] = match[key]
        return Document(
            id=f"{item_id}:{start:g}-{end:g}", page_content=content, metadata=metadata
        )

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        **kwargs: Any,
    ) -> list[Document]:
        del run_manager
        pages = self._pages(query, kwargs)
        client = self._clients.sync(self.http_client)
        while (body := pages.next_body()) is not None:
            request = self._request(client, body)
            pages.take(_http.call_json(client, request, self._policy))
        return pages.docs[: pages.k]

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        **kwargs: Any,
    ) -> list[Document]:
        del run_manager
        pages = self._pages(query, kwargs)
        client = await self._clients.async_(self.http_async_client)
        while (body := pages.next_body()) is not None:
            request = self._request(client, body)
            pages.take(await _http.acall_json(client, request, self._policy))
        return pages.docs[: pages.k]


class _Pages:
    """Search pages until there are `k` clips or no more pages. No I/O."""

    def __init__(self, retriever: KnowledgeStoreRetriever, query: str, k: int) -> None:
        self.retriever, self.query, self.k = retriever, query, k
        self.docs: list[Document] = []
        self.token: str | None = None
        self.done = False

    def next_body(self) -> dict[str, Any] | None:
        """The next request body, or `None` when done."""
        if self.done or len(self.docs) >= self.k:
            return None
        return self.retriever._body(self.query, self.k - len(self.docs), self.token)  # noqa: SLF001

    def take(self, page: Any) -> None:
        """Add a page's clips."""
        found, self.token = self.retriever._documents(page)  # noqa: SLF001
        self.docs += found
        self.done = not self.token or not found
