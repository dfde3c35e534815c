"""The page as a person sees it, in Chromium: asking, progress, cards, playing, adding.

Every test runs on loopback only: the `page` fixture fails a test whose browser
asked for anything else.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from langchain_jockey._media import sample_video
from langchain_jockey.emulator import DEMO_STORE_ID, Emulator
from langchain_jockey.web import WebSettings, create_app
from tests.web.conftest import KEY, serve, settings_for
from tests.web.scripted import STORE, answer_with, media_server, scripted_jockey

# Records, in the page, when the newest turn first showed a step of progress,
# and each length its answer grew to.
WATCH = """() => {
  window.seen = {progressAt: null, lengths: []};
  const look = () => {
    const turns = document.querySelectorAll('.turn');
    const turn = turns[turns.length - 1];
    if (!turn) return;
    const step = turn.querySelector('[aria-label=Progress] li');
    if (window.seen.progressAt === null && step)
      window.seen.progressAt = performance.now();
    const answer = turn.querySelector('[aria-label=Answer]');
    const n = answer ? answer.textContent.length : 0;
    const l = window.seen.lengths;
    if (n && (!l.length || l[l.length - 1].n !== n)) l.push({at: performance.now(), n});
  };
  new MutationObserver(look).observe(document.body,
    {subtree: true, childList: true, characterData: true});
}"""


# Records each value the upload's progress bar had: a number, or none.
BARS = """() => { window.bars = [];
  new MutationObserver(() => { for (const b of document.querySelectorAll('progress'))
    window.bars.push(b.hasAttribute('value') ? 'value' : 'none'); })
  .observe(document.body, {subtree: true, childList: true, attributes: true}); }"""

# Records where the player was when it started playing and when it paused.
PLAYED = """() => { const v = document.getElementById('video'); window.played = [];
  v.addEventListener('playing', () => window.played.push(['playing', v.currentTime]));
  v.addEventListener('pause', () => window.played.push(['pause', v.currentTime])); }"""


def ask(page: Any, question: str) -> None:
    box = page.get_by_label("Question")
    box.fill(question)
    box.press("Enter")


def wait_answered(page: Any, turns: int) -> None:
    """Until `turns` answers are on the page and none is streaming."""
    page.wait_for_function(
        "n => document.querySelectorAll('.turn').length === n"
        " && document.getElementById('stop').hidden",
        arg=turns,
    )


def open_page(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_function("() => !document.getElementById('ask').disabled")


def test_progress_shows_before_the_first_token_and_the_answer_grows_in_steps(
    page, site
) -> None:
    open_page(page, site.url)
    page.evaluate(WATCH)
    ask(page, "Who scores first?")
    wait_answered(page, 1)
    seen = page.evaluate("window.seen")
    assert seen["progressAt"] is not None
    assert seen["progressAt"] < seen["lengths"][0]["at"]  # steps before the answer
    assert len(seen["lengths"]) >= 5  # token by token, not all at once
    answer = page.get_by_label("Answer")
    assert "corner kick" in answer.inner_text()
    # The steps fold into a closed disclosure that stays with the answer.
    steps = page.locator(".turn details.steps")
    assert steps.count() == 1
    assert steps.get_attribute("open") is None
    assert steps.get_by_label("Progress").locator("li").count() >= 2
    assert page.get_by_role("button", name="Stop").is_hidden()


def test_each_citation_is_a_card_without_a_picture_when_it_has_no_media(
    page, site
) -> None:
    open_page(page, site.url)
    ask(page, "Who scores first?")
    wait_answered(page, 1)
    cards = page.get_by_label("Cited moments").get_by_role("button")
    assert cards.count() == 1
    assert cards.first.inner_text().split("\n") == [
        "Under-12 football final",
        "01:10\u201301:35",
    ]
    assert cards.first.locator("img").count() == 0  # the emulator's URLs are null
    marker = page.get_by_label("Answer").get_by_role("link", name="[1]")
    marker.click()
    assert page.evaluate("document.activeElement.id") == cards.first.get_attribute("id")


def test_a_follow_up_continues_the_session_and_new_chat_starts_another(
    page, site, jockey: Emulator
) -> None:
    open_page(page, site.url)
    ask(page, "Who scores first? (follow-up test)")
    wait_answered(page, 1)
    ask(page, "What happens next? (follow-up test)")
    wait_answered(page, 2)
    assert "equalises" in page.get_by_label("Answer").nth(1).inner_text()
    page.get_by_role("button", name="New chat").click()
    assert page.locator(".turn").count() == 0  # the conversation is cleared
    ask(page, "What happens next? (after new chat)")
    wait_answered(page, 1)
    bodies = [
        r.body for r in jockey.requests if r.path.endswith("/responses") and r.raw
    ]
    first, follow_up, fresh = (
        next(b for b in bodies if q in b["input"][0]["content"])
        for q in ("(follow-up test)", "next? (follow-up", "(after new chat)")
    )
    assert "session_id" not in first
    assert follow_up["session_id"].startswith("sess_")
    assert "session_id" not in fresh


@pytest.mark.slow
def test_a_video_added_from_the_page_is_cited_and_its_hostile_name_stays_text(
    page, browser, tmp_path
) -> None:
    hostile = "<img src=x onerror=window.pwned=1> lighthouse"
    with Emulator(asset_time=0.1, index_time=0.3, api_keys=(KEY,)) as emu:
        app = create_app(settings_for(emu))
        with serve(app) as url:
            open_page(page, url)
            store = page.get_by_label("Knowledge store", exact=True)
            assert "6 videos" in store.inner_text()
            page.evaluate(BARS)
            video = sample_video(tmp_path / "v.mp4", seconds=40)
            page.get_by_label("Add videos").set_input_files(
                [
                    {
                        "name": f"{hostile}.mp4",
                        "mimeType": "video/mp4",
                        "buffer": video.read_bytes(),
                    }
                ]
            )
            bar = page.get_by_role("progressbar")
            assert bar.count() == 1
            row = page.locator(".upload")
            row.get_by_text("ready").wait_for(timeout=20_000)
            page.wait_for_function(
                "() => document.getElementById('store').textContent.includes('7 vid')"
            )
            assert row.locator(".file-name").inner_text() == f"{hostile}.mp4"
            bars = page.evaluate("window.bars")
            assert "value" in bars  # a value while uploading,
            assert "none" in bars  # none while indexing
            assert bar.get_attribute("value") == "1"  # the bar stays, full
            ask(page, "Show me the lighthouse")
            wait_answered(page, 1)
            card = page.get_by_label("Cited moments").get_by_role("button").first
            assert card.locator(".title").inner_text() == hostile.capitalize()
    assert page.evaluate("window.pwned") is None
    assert page.locator("img[src='x']").count() == 0


def test_an_error_is_shown_as_an_alert_and_the_text_so_far_stays(page) -> None:
    text, notes = answer_with("https://media.example")
    with scripted_jockey(text, notes, cut=True) as upstream:
        app = create_app(
            settings_for_url(upstream.url, STORE)  # a stream that breaks
        )
        with serve(app) as url:
            open_page(page, url)
            ask(page, "Who saves the penalty?")
            wait_answered(page, 1)
            alert = page.get_by_role("alert")
            assert "connection to Jockey broke" in alert.inner_text()
            assert "ask again" in alert.inner_text()
            assert "Traceback" not in alert.inner_text()
            assert (
                page.get_by_label("Answer").inner_text().startswith("The keeper saves")
            )


def settings_for_url(base_url: str, store: str) -> Any:
    connection = {"base_url": base_url, "api_key": KEY, "max_retries": 0}
    return WebSettings(connection=connection, knowledge_store_id=store)


@pytest.fixture
def media_site(tmp_path) -> Any:
    with media_server(tmp_path) as media:
        text, notes = answer_with(media)
        with scripted_jockey(text, notes) as upstream:
            app = create_app(settings_for_url(upstream.url, STORE))
            with serve(app) as url:
                yield url


@pytest.mark.parametrize("player", ["native HLS", "hls.js"])
def test_a_card_shows_its_thumbnail_and_plays_its_moment_from_the_cited_start(
    page, media_site, tmp_path, player, request
) -> None:
    if player == "hls.js":  # as in a browser without HLS: Firefox
        page.add_init_script("HTMLMediaElement.prototype.canPlayType = () => ''")
    open_page(page, media_site)
    ask(page, "Who saves the penalty?")
    wait_answered(page, 1)
    cards = page.get_by_label("Cited moments").get_by_role("button")
    assert cards.count() == 2
    thumb = cards.first.get_by_role("img", name="Penalty shoot-out, 00:02\u201300:03")
    thumb.wait_for()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle()
    )
    page.evaluate(PLAYED)
    cards.first.focus()
    page.keyboard.press("Enter")  # a card is a button: the keyboard plays it too
    page.wait_for_function(
        "() => window.played.some(e => e[0] === 'pause')", timeout=20_000
    )
    (_, started), *_ = [e for e in page.evaluate("window.played") if e[0] == "playing"]
    (_, paused), *_ = [e for e in page.evaluate("window.played") if e[0] == "pause"]
    assert 1.9 <= started < 2.5  # from the cited start...
    assert 3.0 <= paused < 3.6  # ...to its end
    traffic = request.node.traffic.requests
    vendored = [u for u in traffic if u.endswith("/static/vendor/hls.light.min.js")]
    assert len(vendored) == (player == "hls.js")  # loaded only when needed
    if player == "hls.js":
        assert page.evaluate("document.getElementById('video').src").startswith("blob:")
    shot = str(tmp_path / "web.png")
    if player == "native HLS":
        shot = os.environ.get("JOCKEY_WEB_SCREENSHOT") or shot
    page.screenshot(path=shot, full_page=True)
    assert Path(shot).stat().st_size > 10_000


class Recorder:
    """An ASGI wrapper that keeps every byte the page's server sends."""

    def __init__(self, app: Any) -> None:
        self.app, self.sent = app, bytearray()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def record(message: Any) -> None:
            if message["type"] == "http.response.start":
                for name, value in message.get("headers", []):
                    self.sent += name + b": " + value + b"\n"
            self.sent += message.get("body", b"")
            await send(message)

        await self.app(scope, receive, record)


def test_no_request_leaves_loopback_and_no_response_holds_the_key_or_a_session(
    page, jockey: Emulator, request
) -> None:
    recorder = Recorder(create_app(settings_for(jockey)))
    with serve(recorder) as url:
        open_page(page, url)
        ask(page, "Who scores first?")
        wait_answered(page, 1)
        ask(page, "What happens next?")
        wait_answered(page, 2)
    traffic = request.node.traffic
    assert len(traffic.requests) >= 5  # the page, its files, the store, two answers
    assert not [u for u in traffic.requests if ".invalid" in u]
    assert b"corner kick" in recorder.sent  # the answers went through
    assert KEY.encode() not in recorder.sent
    assert b"sess_" not in recorder.sent  # sessions stay on the server


@pytest.mark.parametrize("width", [360, 1280])
def test_the_page_has_no_horizontal_scroll(page, site, width) -> None:
    page.set_viewport_size({"width": width, "height": 800})
    open_page(page, site.url)
    ask(page, "What happens next after the corner kick, and who saves the penalty?")
    wait_answered(page, 1)
    assert page.evaluate("document.documentElement.scrollWidth") <= width


@pytest.mark.slow
def test_stop_halts_the_stream_and_the_emulator_sees_the_connection_close(
    page,
) -> None:
    with Emulator(delta_delay=0.1, keepalive_interval=0.05, api_keys=(KEY,)) as emu:

        def answering() -> int:  # the emulator's connections busy with a request
            server = emu.server
            return len(set(server._tasks) - set(server._waiting))

        with serve(create_app(settings_for(emu))) as url:
            open_page(page, url)
            ask(page, "Who scores first?")
            answer = page.get_by_label("Answer")
            page.wait_for_function(
                "() => document.querySelector('[aria-label=Answer]').textContent"
            )
            assert answering() == 1
            stop = page.get_by_role("button", name="Stop")
            assert stop.is_visible()
            assert stop.is_enabled()
            stop.click()
            stopped = time.monotonic()
            while answering() and time.monotonic() - stopped < 1.0:
                time.sleep(0.02)
            assert answering() == 0  # the upstream connection closed within 1 s
            text = answer.inner_text()
            time.sleep(0.5)  # five more deltas' worth: nothing more arrives
            assert answer.inner_text() == text
            assert page.get_by_text("Stopped.").is_visible()
            assert stop.is_hidden()


@pytest.mark.slow
def test_20_conversations_in_20_tabs_never_see_each_others_text_or_sessions(
    browser, site, jockey: Emulator
) -> None:
    context = browser.new_context()
    try:
        tabs = [context.new_page() for _ in range(20)]
        for tab in tabs:
            open_page(tab, site.url)
        for n, tab in enumerate(tabs):
            ask(tab, f"Who scores first? (tab {n})")
        for tab in tabs:
            wait_answered(tab, 1)
        for n, tab in enumerate(tabs):
            ask(tab, f"What happens next? (tab {n})")
        for n, tab in enumerate(tabs):
            wait_answered(tab, 2)
            text = tab.locator("#conversation").inner_text()
            assert f"(tab {n})" in text
            others = [m for m in range(20) if m != n and f"(tab {m})" in text]
            assert others == []
    finally:
        context.close()
    sessions = jockey.server.sessions
    for n in range(20):
        (follow_up,) = [
            r.body
            for r in jockey.requests
            if r.path.endswith("/responses")
            and r.raw
            and f"next? (tab {n})" in r.body["input"][0]["content"]
        ]
        session = sessions[follow_up["session_id"]]  # the tab's own first answer's
        assert f"first? (tab {n})" in session.turns[0].question


DROP = """bytes => {
  const file = new File(
    [new Uint8Array(bytes)], 'dropped harbour.mp4', {type: 'video/mp4'});
  const files = new DataTransfer();
  files.items.add(file);
  document.body.dispatchEvent(
    new DragEvent('drop', {dataTransfer: files, bubbles: true, cancelable: true}));
}"""


def test_a_file_dropped_on_the_page_is_uploaded(page, tmp_path) -> None:
    data = sample_video(tmp_path / "d.mp4", seconds=5).read_bytes()
    with (
        Emulator(api_keys=(KEY,)) as emu,
        serve(create_app(settings_for(emu))) as url,
    ):
        open_page(page, url)
        with page.expect_response("**/api/uploads") as uploaded:
            page.evaluate(DROP, list(data))
        assert uploaded.value.status == 202
        row = page.locator(".upload")
        assert row.locator(".file-name").inner_text() == "dropped harbour.mp4"
        assert row.get_by_role("progressbar").count() == 1


def test_with_a_key_and_no_store_the_page_offers_the_accounts_stores(
    page, jockey: Emulator
) -> None:
    app = create_app(settings_for(jockey, knowledge_store_id=None))
    with serve(app) as url:
        page.goto(url)
        store = page.get_by_label("Knowledge store", exact=True)
        page.get_by_label("Stores in your account").select_option(DEMO_STORE_ID)
        assert page.get_by_role("button", name="Ask").is_disabled()
        page.get_by_role("button", name="Use this store").click()
        page.wait_for_function("() => !document.getElementById('ask').disabled")
        assert store.inner_text() == "Demo: harbour town \u00b7 6 videos"
        assert page.get_by_label("Choose a store").is_hidden()
