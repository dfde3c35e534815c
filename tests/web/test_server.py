"""The page's server over HTTP: its events, its doors, its limits, its store picker."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from langchain_jockey import KnowledgeStore
from langchain_jockey._media import sample_video
from langchain_jockey.emulator import DEMO_STORE_ID, Emulator
from langchain_jockey.errors import (
    JockeyAuthenticationError,
    JockeyRateLimitError,
    JockeyStreamInterruptedError,
)
from langchain_jockey.web import WebSettings, create_app
from langchain_jockey.web._chat import failure_message
from langchain_jockey.web._settings import media_url
from tests.web.conftest import KEY, serve, settings_for


def events(response: httpx.Response) -> list[tuple[str, Any]]:
    """The (event, data) pairs of an SSE response, in order."""
    found, name = [], "message"
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            found.append((name, json.loads(line.split(":", 1)[1])))
            name = "message"
    return found


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@pytest.fixture
def url(jockey: Emulator, tmp_path: Path) -> Any:
    with serve(create_app(settings_for(jockey, upload_dir=tmp_path))) as served:
        yield served


def test_an_answer_streams_as_progress_then_tokens_then_citations_then_done(
    url,
) -> None:
    with httpx.stream(
        "POST", f"{url}/api/ask", json={"question": "Who scores first?"}
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        found = events(response)
    names = [name for name, _ in found]
    assert names[0] == "conversation"
    assert names.index("progress") < names.index("token")
    assert names[-2:] == ["citations", "done"]
    kinds = {data["kind"] for name, data in found if name == "progress"}
    assert kinds == {"commentary", "tool_call", "tool_result"}
    text = "".join(data["text"] for name, data in found if name == "token")
    citations = found[-2][1]
    assert "".join(s["text"] for s in citations["segments"]) == text
    (marker,) = [s for s in citations["segments"] if "cite" in s]
    assert marker == {"text": "[1]", "cite": 0}
    assert citations["citations"] == [
        {
            "title": "Under-12 football final",
            "start_sec": 70.0,
            "end_sec": 95.0,
            "range": "01:10\u201301:35",
            "thumbnail_url": None,  # the emulator's .invalid URLs: never loaded
            "hls_url": None,
        }
    ]
    assert found[-1][1]["status"] == "completed"


def test_a_conversation_id_is_all_the_page_holds_and_it_continues_the_session(
    url, jockey: Emulator
) -> None:
    def ask(question: str, conversation: str | None) -> list[tuple[str, Any]]:
        body = {"question": question, "conversation_id": conversation}
        with httpx.stream("POST", f"{url}/api/ask", json=body) as response:
            return events(response)

    first = ask("Who scores first? (server test)", None)
    conversation = first[0][1]["conversation_id"]
    assert "sess_" not in json.dumps(first)
    again = ask("What happens next? (server test)", conversation)
    assert again[0][1]["conversation_id"] == conversation
    (request,) = [
        r.body
        for r in jockey.requests
        if r.raw and "next? (server test)" in r.raw.decode()
    ]
    assert request["session_id"].startswith("sess_")


def test_an_unknown_conversation_gets_404_and_a_busy_one_409(url, jockey) -> None:
    answer = httpx.post(
        f"{url}/api/ask", json={"question": "Hi", "conversation_id": "nope"}
    )
    assert answer.status_code == 404
    assert "New chat" in answer.json()["message"]
    slow = Emulator(first_token_delay=5, keepalive_interval=0.05, api_keys=(KEY,))
    with slow, serve(create_app(settings_for(slow))) as served:
        with httpx.stream(
            "POST", f"{served}/api/ask", json={"question": "Who scores first?"}
        ) as response:
            lines = response.iter_lines()
            line = next(lines)
            while not line.startswith("data:"):
                line = next(lines)
            conversation = json.loads(line[5:])["conversation_id"]
            body = {"question": "And then?", "conversation_id": conversation}
            busy = httpx.post(f"{served}/api/ask", json=body)
        assert busy.status_code == 409


@pytest.mark.parametrize(
    "host",
    ["evil.example", "evil.example:{port}", "127.0.0.1:1", "localhost.evil:{port}"],
)
def test_a_foreign_host_gets_403_on_every_route(url, host) -> None:
    header = {"host": host.format(port=port_of(url))}
    for method, path in [
        ("GET", "/"),
        ("GET", "/static/app.js"),
        ("GET", "/api/store"),
        ("POST", "/api/ask"),
    ]:
        answer = httpx.request(method, f"{url}{path}", headers=header, json={})
        assert answer.status_code == 403, (host, path)
        assert "content-security-policy" in answer.headers


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "null", "http://127.0.0.1:1", "file://"]
)
def test_a_cross_origin_request_gets_403_get_and_post(url, origin) -> None:
    header = {"origin": origin}
    ask = httpx.post(f"{url}/api/ask", json={"question": "Hi"}, headers=header)
    store = httpx.get(f"{url}/api/store", headers=header)
    assert (ask.status_code, store.status_code) == (403, 403)


def test_the_page_own_names_and_origins_are_served(url) -> None:
    port = port_of(url)
    for name in ("127.0.0.1", "localhost"):
        own = {"host": f"{name}:{port}", "origin": f"http://{name}:{port}"}
        answer = httpx.get(f"{url}/api/store", headers=own)
        assert answer.status_code == 200
        assert answer.json()["store"]["item_count"] == 6


def test_the_page_sends_a_strict_csp_and_no_inline_script(url) -> None:
    page = httpx.get(url)
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp
    assert "default-src 'none'" in csp
    assert "unsafe" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in page.text  # every script is a file the package serves
    assert "http" not in page.text.replace("http-equiv", "")  # no CDN, no link out


def test_with_a_token_every_request_needs_it_and_it_becomes_a_strict_cookie(
    jockey,
) -> None:
    settings = settings_for(jockey, token="s3cret-token", allowed_hosts=("jockey.lan",))
    with serve(create_app(settings)) as served:
        port = port_of(served)
        assert httpx.get(served).status_code == 403
        assert httpx.get(f"{served}/api/store").status_code == 403
        assert httpx.get(f"{served}/?token=wrong").status_code == 403
        first = httpx.get(f"{served}/?token=s3cret-token")
        assert first.status_code == 303
        assert first.headers["location"] == "/"  # the token leaves the address bar
        cookie = first.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        jar = {"jockey_token": "s3cret-token"}
        assert httpx.get(served, cookies=jar).status_code == 200
        lan = {"host": f"jockey.lan:{port}"}
        assert httpx.get(served, cookies=jar, headers=lan).status_code == 200
        other = {"host": f"other.lan:{port}"}
        assert httpx.get(served, cookies=jar, headers=other).status_code == 403


def _files(*named: tuple[str, bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("file", (name, data, "video/mp4")) for name, data in named]


def test_uploads_past_the_limits_get_413_and_leave_nothing_on_disk(
    jockey, tmp_path
) -> None:
    settings = settings_for(
        jockey, max_files=2, max_file_bytes=1000, upload_dir=tmp_path
    )
    with serve(create_app(settings)) as served:
        three = _files(("a.mp4", b"x"), ("b.mp4", b"y"), ("c.mp4", b"z"))
        too_many = httpx.post(f"{served}/api/uploads", files=three)
        assert too_many.status_code == 413
        assert "At most 2 files" in too_many.json()["message"]
        big = httpx.post(f"{served}/api/uploads", files=_files(("a.mp4", b"x" * 1001)))
        assert big.status_code == 413
        assert "a.mp4" in big.json()["message"]
        port = port_of(served)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                f"POST /api/uploads HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                "Content-Type: multipart/form-data; boundary=b\r\n"
                f"Content-Length: {10**12}\r\n\r\n".encode()
            )
            declared = sock.recv(4096).decode()
        assert declared.startswith("HTTP/1.1 413")  # refused before any byte of it
        none = httpx.post(f"{served}/api/uploads", data={"title": "no file"})
        assert none.status_code == 400
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_an_uploaded_file_is_added_under_its_own_name_and_its_copy_deleted(
    tmp_path,
) -> None:
    video = sample_video(tmp_path / "v.mp4", seconds=20).read_bytes()
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    with Emulator(asset_time=0.1, index_time=0.2, api_keys=(KEY,)) as emu:
        settings = settings_for(emu, upload_dir=uploads)
        with serve(create_app(settings)) as served:
            sent = _files(("../../escape harbour.mp4", video))
            batch = httpx.post(f"{served}/api/uploads", files=sent).json()
            assert [f["name"] for f in batch["files"]] == ["escape harbour.mp4"]
            with httpx.stream(
                "GET", f"{served}/api/uploads/{batch['batch_id']}/events", timeout=30
            ) as response:
                found = events(response)
            phases = [data["phase"] for name, data in found if name == "file"]
            assert phases[-1] == "ready", found
            assert "indexing" in phases
            assert found[-1] == ("end", {})
            info = httpx.get(f"{served}/api/store").json()["store"]
            assert info["item_count"] == 7
    assert list(uploads.iterdir()) == []  # the copy is gone once added


def test_with_a_key_and_no_store_the_page_lists_picks_and_creates_stores(
    jockey,
) -> None:
    with serve(create_app(settings_for(jockey, knowledge_store_id=None))) as served:
        store = httpx.get(f"{served}/api/store").json()
        assert store["store"] is None
        assert store["pickable"] is True
        assert (
            httpx.post(f"{served}/api/ask", json={"question": "Hi"}).status_code == 409
        )
        listed = httpx.get(f"{served}/api/stores").json()["stores"]
        assert DEMO_STORE_ID in [s["id"] for s in listed]
        picked = httpx.put(f"{served}/api/store", json={"id": DEMO_STORE_ID}).json()
        assert picked["store"]["item_count"] == 6
        made = httpx.post(f"{served}/api/stores", json={"name": "From the page"}).json()
        assert made["store"]["name"] == "From the page"
        assert made["store"]["item_count"] == 0
        blank = httpx.post(f"{served}/api/stores", json={"name": " "})
        assert blank.status_code == 400
        assert blank.json()["message"] == "A knowledge store needs a name."
        missing = httpx.put(f"{served}/api/store", json={"id": "ks_missing"})
        assert missing.status_code == 502
        assert "did not find" in missing.json()["message"]


def test_a_store_given_at_start_cannot_be_changed_from_the_page(url) -> None:
    answer = httpx.put(f"{url}/api/store", json={"id": DEMO_STORE_ID})
    assert answer.status_code == 409


def test_stores_lists_the_accounts_stores_newest_first(jockey, mode) -> None:
    connection = {"base_url": jockey.base_url, "api_key": KEY}
    made = KnowledgeStore.create("listed store", **connection)
    if mode == "sync":
        found = KnowledgeStore.stores(**connection)
    else:
        found = asyncio.run(KnowledgeStore.astores(**connection))
    assert found[0].knowledge_store_id == made.knowledge_store_id
    assert found[0].name == "listed store"
    assert DEMO_STORE_ID in [s.knowledge_store_id for s in found]


@pytest.mark.parametrize(
    ("value", "passes"),
    [
        ("https://d1.cloudfront.net/v/index.m3u8?Signature=abc", True),
        ("https://cdn.jockey-emulator.invalid/ksi_1/thumb_70.jpg", False),
        ("https://x.invalid./a.jpg", False),
        ("http://cdn.example.com/a.jpg", False),
        ("javascript:alert(1)", False),
        ("data:image/png;base64,AAAA", False),
        ("//cdn.example.com/a.jpg", False),
        ("https:///a.jpg", False),
        ("https://a.example/a b.jpg", False),
        (None, False),
        (42, False),
    ],
)
def test_media_urls_pass_only_when_https_and_resolvable(value, passes) -> None:
    assert media_url(value) == (value if passes else None)


@pytest.mark.parametrize(
    ("err", "advice"),
    [
        (JockeyAuthenticationError("401 api_key_invalid"), "TWELVE_LABS_API_KEY"),
        (JockeyRateLimitError("429 too_many_requests"), "wait, then ask again"),
        (JockeyStreamInterruptedError("the stream ended"), "ask again"),
        (RuntimeError("a bug"), "terminal has the details"),
    ],
)
def test_a_failure_says_what_happened_and_what_to_do(err, advice) -> None:
    message = failure_message(err)
    assert advice in message
    assert "Traceback" not in message
    if not isinstance(err, RuntimeError):
        assert str(err) in message  # what happened, in Jockey's words


def test_create_app_without_settings_reads_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("TWELVE_LABS_KNOWLEDGE_STORE_ID", "ks_from_env")
    app = create_app()
    assert app.app.state.page.store().knowledge_store_id == "ks_from_env"
    assert isinstance(app.settings, WebSettings)
    assert "api_key" not in repr(app.settings)


async def test_twenty_conversations_at_once_keep_their_own_text_and_sessions(
    url, jockey: Emulator
) -> None:
    async def conversation(n: int, client: httpx.AsyncClient) -> tuple[str, str]:
        texts, conversation = [], None
        for question in (f"Who scores first? [c{n}]", f"What happens next? [c{n}]"):
            body = {"question": question, "conversation_id": conversation}
            async with client.stream("POST", f"{url}/api/ask", json=body) as response:
                async for line in response.aiter_lines():
                    texts.append(line)
                    if line.startswith("data:") and conversation is None:
                        conversation = json.loads(line[5:])["conversation_id"]
        return str(conversation), "\n".join(texts)

    async with httpx.AsyncClient(timeout=30) as client:
        found = await asyncio.gather(*(conversation(n, client) for n in range(20)))
    assert len({c for c, _ in found}) == 20
    for n, (_, text) in enumerate(found):
        assert f"[c{n}]" in text
        assert not [m for m in range(20) if m != n and f"[c{m}]" in text]
        (follow_up,) = [
            r.body
            for r in jockey.requests
            if r.raw and f"next? [c{n}]" in r.raw.decode()
        ]
        first = jockey.server.sessions[follow_up["session_id"]].turns[0]
        assert f"[c{n}]" in first.question
