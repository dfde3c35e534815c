"""How `ChatJockey` and `KnowledgeStoreRetriever` reach the API, written once.

- `JockeyConnection`, the Pydantic base both inherit: the settings (key, base
  URL, knowledge store, timeouts, retries, headers, your own httpx clients),
  bad arguments reported as `JockeyInputError` without their values, the key
  kept out of pickles, and `close` / `aclose` / `with` for the clients it made.
- `Clients` (in `_http`) owns those clients.
- `JockeyConnection._build` makes every request the same way (the client and
  the path, then keyword arguments: `body`, `accept`, `method`, …): URL, auth,
  headers, timeouts. The key goes only to the configured host: `_http` never
  follows redirects, so it cannot be replayed to another one.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping
from typing import Any

import httpx
from langchain_core.utils import from_env, secret_from_env
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
)
from typing_extensions import Self

from langchain_jockey._failures import RetryPolicy
from langchain_jockey._http import SSE, Clients
from langchain_jockey._sources import FileStream, url_problem
from langchain_jockey._version import __version__
from langchain_jockey.errors import JockeyInputError

__all__ = [
    "DEFAULT_BASE_URL",
    "Clients",
    "JockeyConnection",
    "construct",
]

DEFAULT_BASE_URL = "https://api.twelvelabs.io/v1.3"
# Jockey sends a keepalive about every 10 s while it works, so 60 s without a
# byte means a dead connection. The pool wait is bounded so that a client whose
# connections are all held by long answers says so (`_failures`).
DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=60.0, write=60.0, pool=60.0)

# Each setting is read from TWELVE_LABS_<NAME> (the spelling the official SDK
# documents for its key) and else TWELVELABS_<NAME> (common in community code).
_key_from_env = secret_from_env(
    ["TWELVE_LABS_API_KEY", "TWELVELABS_API_KEY"], default=None
)


def _env(name: str, default: str | None = None) -> Any:
    return from_env([f"TWELVE_LABS_{name}", f"TWELVELABS_{name}"], default=default)


def construct(
    init: Any, kwargs: dict[str, Any], owner: type[BaseModel], hint: str
) -> None:
    """`init(**kwargs)`; a bad argument raises `JockeyInputError`, naming it.

    The values are left out of the message and of the exception chain (a
    pydantic error shows them, and a mistyped argument could hold the key).
    An unknown argument close to a field's name says which (`did you mean`);
    `hint` is added when an argument is unknown or missing.
    """
    try:
        init(**kwargs)
    except ValidationError as exc:
        problems = exc.errors(include_input=False, include_url=False)
    else:
        return
    names = list(owner.model_fields)

    def problem(error: Any) -> str:
        where = ".".join(map(str, error["loc"])) or "input"
        close = difflib.get_close_matches(where, names, n=1)
        if error["type"] == "extra_forbidden" and close:
            return f"{where}: unknown, did you mean {close[0]!r}?"
        return f"{where}: {error['msg']}"

    msg = f"{owner.__name__} got bad argument(s): " + "; ".join(map(problem, problems))
    if hint and any(e["type"] in ("extra_forbidden", "missing") for e in problems):
        msg += f"{'' if msg.endswith('?') else '.'} {hint}"
    raise JockeyInputError(msg)  # outside the `except`: no chained values


class JockeyConnection(BaseModel):
    """The settings and clients every Jockey API object shares.

    Construction does no I/O, and bad arguments raise `JockeyInputError`.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    knowledge_store_id: str | None = Field(default_factory=_env("KNOWLEDGE_STORE_ID"))
    """The knowledge store (`ks_…`) to use. Required for every request.
    Default: env `TWELVE_LABS_KNOWLEDGE_STORE_ID`, else
    `TWELVELABS_KNOWLEDGE_STORE_ID`."""

    api_key: SecretStr | None = Field(default_factory=_key_from_env)
    """TwelveLabs API key, sent as `x-api-key`. Default: env `TWELVE_LABS_API_KEY`,
    else `TWELVELABS_API_KEY`. Never shown in reprs, logs, traces or pickles."""

    base_url: str = Field(
        default_factory=_env("BASE_URL", DEFAULT_BASE_URL), validate_default=True
    )
    """API root; requests go to `{base_url}/responses` and
    `{base_url}/knowledge-stores/…`. Default: env `TWELVE_LABS_BASE_URL`, else
    `TWELVELABS_BASE_URL`, else `https://api.twelvelabs.io/v1.3`. Checked when
    set, from the environment too: an http(s) URL with a host, and a port (if
    any) from 1 to 65535."""

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        problem = url_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    timeout: float | httpx.Timeout | None = None
    """The longest wait, in seconds, to connect or for the next bytes of a
    response; never a limit on a whole answer, which takes 30 s to 3 min.
    Answers stream and Jockey sends keepalives about every 10 s, so
    `timeout=60` fires only on a stalled connection. An `httpx.Timeout` sets
    each limit. Default (`None`): connect 10 s, read 60 s, write 60 s."""

    @field_validator("timeout")
    @classmethod
    def _positive(cls, value: float | httpx.Timeout | None) -> Any:
        limits = (
            (value.connect, value.read, value.write, value.pool)
            if isinstance(value, httpx.Timeout)
            else (value,)
        )
        if any(
            limit is not None and not (0 < limit < math.inf) for limit in limits
        ):  # NaN fails every comparison: it is refused too
            msg = "every limit must be a number of seconds more than 0 and finite "
            msg += "(None: the defaults)"
            raise ValueError(msg)
        return value

    max_retries: int = Field(default=2, ge=0)
    """Retries of a request that failed before any of its answer arrived (429
    except `plan_limit_exceeded`, 408, 5xx, connection failures). A stream is
    never retried once it has started. Few, because an answer is interactive:
    someone waits for it, so a failure is reported soon (`KnowledgeStore`,
    unattended, retries more; docs/configuration.md, "Retry defaults")."""

    max_retry_wait: float = Field(default=60.0, ge=0)
    """The most seconds spent waiting between retries, in total. A server that
    asks (`Retry-After`) for longer gets no retry: its error is raised at
    once, with `retry_after` set, and the caller decides what to do."""

    default_headers: dict[str, str] | None = Field(
        default=None, exclude=True, repr=False
    )
    """Extra HTTP headers for every request. They may hold credentials (a
    proxy's `Authorization`), so they are in no repr, `model_dump`, `dumpd`
    or cache key: give them again to a loaded model."""

    http_client: httpx.Client | None = Field(default=None, exclude=True)
    """An `httpx.Client` to use for sync calls (proxies, custom transports).
    Default: one created on first use and reused."""

    http_async_client: httpx.AsyncClient | None = Field(default=None, exclude=True)
    """An `httpx.AsyncClient` to use for async calls. Default: one created on
    first use in each event loop and reused."""

    _clients: Clients = PrivateAttr(default_factory=Clients)

    def __init__(self, **kwargs: Any) -> None:
        """Validate the arguments; a bad one raises `JockeyInputError`, naming it."""
        hint = ""
        if "extra_body" in type(self).model_fields:
            hint = (
                "Request fields Jockey documents are fields of ChatJockey; anything "
                "else can go in extra_body={…}."
            )
        construct(super().__init__, kwargs, type(self), hint)

    def model_post_init(self, context: Any, /) -> None:
        """Run the next class's hook too (LangChain's records `lc_versions`)."""
        # Pydantic gives a class with private attributes a hook of its own, which
        # would otherwise end the chain here, before BaseLanguageModel's.
        super().model_post_init(context)

    @property
    def lc_secrets(self) -> dict[str, str]:
        """Where the secret fields come from, for LangChain serialization."""
        return {"api_key": "TWELVE_LABS_API_KEY"}

    def _build(
        self,
        client: httpx.Client | httpx.AsyncClient,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        accept: str = SSE,
        method: str = "POST",
        params: Mapping[str, Any] | None = None,
        stream: FileStream | None = None,
        content_type: str = "application/json",
    ) -> httpx.Request:
        """`{method} {base_url}/{path}`: `body` as compact UTF-8 JSON, or `stream`.

        Raises `JockeyInputError` before any I/O: no key, a bad `base_url`, or
        a body JSON cannot carry (a lone surrogate, a set, NaN). A query string
        in `base_url` (`…/v1.3?tenant=t1`) is kept, after the path, and
        `params` are added to it. The body's bytes follow its key order: the
        same call gives the same bytes. `stream` (an upload) goes as it is,
        with `content_type`.
        """
        if self.api_key is None or not self.api_key.get_secret_value():
            msg = (
                "Jockey needs a TwelveLabs API key: pass api_key=… or set "
                "TWELVE_LABS_API_KEY."
            )
            raise JockeyInputError(msg)
        # Joined as text: parsing base_url into an httpx.URL on every request cost
        # about 60 us (measured), and httpx parses the result once anyway.
        if not self.base_url.startswith(("http://", "https://")):
            msg = f"base_url must be an http(s) URL, not {self.base_url!r}."
            raise JockeyInputError(msg)
        headers = {
            "x-api-key": self.api_key.get_secret_value(),
            "accept": accept,
            # A compressed stream could inflate past any limit unseen.
            "accept-encoding": "identity",
            "user-agent": f"langchain-jockey/{__version__}",
        }
        content: bytes | None = None
        if stream is not None:
            headers["content-type"] = content_type
            headers["content-length"] = str(stream.size)
        elif body is not None:
            try:
                content = json.dumps(
                    body, ensure_ascii=False, allow_nan=False, separators=(",", ":")
                ).encode()
            except (TypeError, ValueError) as exc:  # UnicodeEncodeError: ValueError
                msg = (
                    f"{type(self).__name__} cannot send this request as JSON "
                    f"({exc}): check the question, the instructions and extra_body."
                )
                raise JockeyInputError(msg) from None
            headers["content-type"] = content_type
        root, mark, query = self.base_url.partition("?")
        request = client.build_request(
            method,
            f"{root.rstrip('/')}/{path}{mark}{query}",
            content=content,
            params=params,
            headers={**headers, **(self.default_headers or {})},
            timeout=self._timeout,
        )
        if stream is not None:
            # Set after building: httpx would take it for a sync-only iterator.
            request.stream = stream
        return request

    @property
    def _timeout(self) -> httpx.Timeout:
        """The limits in use: `timeout`, else `DEFAULT_TIMEOUT`."""
        return DEFAULT_TIMEOUT if self.timeout is None else httpx.Timeout(self.timeout)

    @property
    def _policy(self) -> RetryPolicy:
        return RetryPolicy(max_retries=self.max_retries, max_wait=self.max_retry_wait)

    def __getstate__(self) -> dict[Any, Any]:
        """Pickle without the API key and without HTTP clients.

        The unpickled object reads its key from the environment again and
        creates its clients on first use. One given its own `http_client` or
        `http_async_client` cannot be pickled (httpx clients cannot be).
        """
        if self.http_client is not None or self.http_async_client is not None:
            msg = (
                f"A {type(self).__name__} with its own http_client / "
                "http_async_client cannot be pickled: httpx clients cannot be. "
                "Pickle one without them."
            )
            raise JockeyInputError(msg)
        state = super().__getstate__()
        state["__dict__"] = {**state["__dict__"], "api_key": None}
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        """Restore a pickled object; its key comes from the environment."""
        super().__setstate__(state)
        if self.api_key is None:
            self.api_key = _key_from_env()

    def close(self) -> None:
        """Close the sync HTTP client this object created (not one you passed in).

        It stays usable: a new client is created on the next call.
        """
        self._clients.close()

    async def aclose(self) -> None:
        """Close the clients this object created: this event loop's, and the sync one.

        Clients it created in other event loops close when those loops shut
        down. Clients you passed in are yours to close.
        """
        await self._clients.aclose()

    def __enter__(self) -> Self:
        """`with ChatJockey(...) as llm:` closes its clients at the end."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the clients this object created (see `close`)."""
        self.close()

    async def __aenter__(self) -> Self:
        """`async with ChatJockey(...) as llm:` closes its clients at the end."""
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Close the clients this object created (see `aclose`)."""
        await self.aclose()
