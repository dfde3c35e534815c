"""Fault injection: what a raw httpx client receives for each fault mode."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from langchain_jockey.emulator import FAULT_HEADER, Emulator
from tests.emulator.conftest import body, frames, stream_events


@pytest.fixture
def fresh():
    """A client on an emulator of its own (fault counters start at zero)."""
    with (
        Emulator(keepalive_interval=0.05, max_stall=5) as emu,
        httpx.Client(
            base_url=emu.base_url, headers={"x-api-key": emu.api_key}, timeout=10
        ) as c,
    ):
        yield c


def kinds(events):
    return [e["type"] for e in events]


def raw_lines(client, fault, *, timeout=10.0, limit_seconds=None):
    """Read a faulty stream line by line; return (lines, the exception that ended it)."""
    lines, error = [], None
    started = time.monotonic()
    try:
        with client.stream(
            "POST",
            "/responses",
            json=body(stream=True),
            headers={FAULT_HEADER: fault},
            timeout=timeout,
        ) as r:
            for line in r.iter_lines():
                lines.append(line)
                if (
                    limit_seconds is not None
                    and time.monotonic() - started > limit_seconds
                ):
                    break
    except httpx.HTTPError as exc:
        error = exc
    return lines, error


def test_status_fault_answers_the_first_k_requests_then_recovers(fresh) -> None:
    fault = {FAULT_HEADER: "status=503;times=2"}
    statuses = [
        fresh.post("/responses", json=body(), headers=fault).status_code
        for _ in range(3)
    ]
    assert statuses == [503, 503, 200]
    error = fresh.post(
        "/responses", json=body(), headers={FAULT_HEADER: "status=502"}
    ).json()
    assert set(error) == {"code", "message", "docs_url"}


def test_429_fault_with_retry_after(fresh) -> None:
    response = fresh.post(
        "/responses", json=body(), headers={FAULT_HEADER: "status=429;retry_after=1"}
    )
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert response.json()["code"] == "too_many_requests"


def test_plan_limit_fault_keeps_its_code(fresh) -> None:
    response = fresh.post(
        "/responses",
        json=body(),
        headers={FAULT_HEADER: "status=429;code=plan_limit_exceeded;times=9"},
    )
    assert (response.status_code, response.json()["code"]) == (
        429,
        "plan_limit_exceeded",
    )


def test_fail_after_sends_response_failed_then_done(client) -> None:
    events = stream_events(client, body(), **{FAULT_HEADER: "fail_after=3"})
    assert kinds(events).count("response.output_text.delta") == 3
    assert kinds(events)[-1] == "response.failed"
    failed = events[-1]["response"]
    assert failed["status"] == "failed"
    assert failed["incomplete_details"] is None
    assert "usage" not in failed


def test_error_after_sends_error_event_then_response_failed(client) -> None:
    events = stream_events(client, body(), **{FAULT_HEADER: "error_after=2"})
    assert kinds(events)[-2:] == ["error", "response.failed"]
    assert kinds(events).count("response.output_text.delta") == 2
    assert set(events[-2]["error"]) == {"type", "code", "message", "param"}


def test_drop_after_closes_the_connection_without_terminal_event(client) -> None:
    lines, error = raw_lines(client, "drop_after=6")
    assert isinstance(error, httpx.RemoteProtocolError)  # incomplete chunked read
    events = [json.loads(x[6:]) for x in lines if x.startswith("data: {")]
    assert len(events) == 6
    assert "data: [DONE]" not in lines
    assert "response.completed" not in kinds(events)


def test_malformed_after_writes_one_unparseable_event_then_goes_on(client) -> None:
    response = client.post(
        "/responses",
        json=body(stream=True),
        headers={FAULT_HEADER: "malformed_after=2"},
    )
    bad = []
    for _, data in frames(response.text):
        if data == "[DONE]":
            continue
        try:
            json.loads(data)
        except ValueError:
            bad.append(data)
    assert len(bad) == 1
    assert response.text.endswith("data: [DONE]\n\n")


def test_unknown_events_are_interleaved(client) -> None:
    events = stream_events(client, body(), **{FAULT_HEADER: "unknown_events"})
    unknown = [
        k
        for k in kinds(events)
        if not (k.startswith("response.") and k != "response.emulator_trace")
    ]
    assert {"acme:debug"} <= set(unknown)
    assert "response.emulator_trace" in kinds(events)
    assert kinds(events)[-1] == "response.completed"


def test_stall_sends_only_keepalives(fresh) -> None:
    lines, _ = raw_lines(fresh, "stall_after=1", limit_seconds=0.6)
    events = [json.loads(x[6:]) for x in lines if x.startswith("data: {")]
    first_delta = kinds(events).index("response.output_text.delta")
    after = kinds(events)[first_delta + 1 :]
    assert len(after) >= 3
    assert set(after) == {"keepalive"}


def test_silent_stall_sends_nothing_until_the_read_timeout(fresh) -> None:
    lines, error = raw_lines(fresh, "silent_stall_after=1", timeout=0.5)
    assert isinstance(error, httpx.ReadTimeout)
    events = [json.loads(x[6:]) for x in lines if x.startswith("data: {")]
    assert kinds(events)[-1] == "response.output_text.delta"  # nothing after it
    assert kinds(events).count("response.output_text.delta") == 1


def test_truncate_after_ends_incomplete(client) -> None:
    events = stream_events(client, body(), **{FAULT_HEADER: "truncate_after=3"})
    final = events[-1]["response"]
    assert final["status"] == "incomplete"
    assert final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert kinds(events).count("response.output_text.delta") == 3


def test_server_wide_faults_apply_to_every_request() -> None:
    with (
        Emulator(faults=["fail_after=1"]) as emu,
        httpx.Client(base_url=emu.base_url, headers={"x-api-key": emu.api_key}) as c,
    ):
        for _ in range(2):
            assert kinds(stream_events(c, body()))[-1] == "response.failed"


def test_invalid_fault_header_is_a_clear_400(client) -> None:
    response = client.post(
        "/responses", json=body(), headers={FAULT_HEADER: "explode=1"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "emulator_fault_invalid"
    assert "explode" in response.json()["message"]
