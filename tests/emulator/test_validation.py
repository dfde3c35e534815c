"""Request validation like the real API, with flat `{code, message, docs_url}` bodies."""

from __future__ import annotations

import pytest

from langchain_jockey.emulator import DEMO_API_KEY, DEMO_STORE_ID, KITCHEN_STORE_ID
from tests.emulator.conftest import body, stream_events


def post(client, payload, **headers):
    response = client.post("/responses", json=payload, headers=headers)
    error = response.json()
    assert set(error) == {"code", "message", "docs_url"}, error
    return response.status_code, error


def test_missing_key_is_401(emulator) -> None:
    import httpx

    response = httpx.post(f"{emulator.base_url}/responses", json=body())
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


def test_wrong_key_is_401(client) -> None:
    status, error = post(client, body(), **{"x-api-key": "tlk_wrong"})
    assert (status, error["code"]) == (401, "api_key_invalid")


@pytest.mark.parametrize(
    ("payload", "code", "fragment"),
    [
        (
            {"input": [{"type": "message", "role": "user", "content": "q"}]},
            "parameter_not_provided",
            "knowledge_store_id",
        ),
        ({"knowledge_store_id": DEMO_STORE_ID}, "parameter_not_provided", "input"),
        (body() | {"input": []}, "parameter_invalid", "non-empty"),
        (
            body()
            | {"input": [{"type": "message", "role": "assistant", "content": "q"}]},
            "parameter_invalid",
            "role must be 'user'",
        ),
        (
            body() | {"input": [{"type": "message", "role": "system", "content": "q"}]},
            "parameter_invalid",
            "role must be 'user'",
        ),
        (
            body()
            | {
                "input": [
                    {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": "q"}],
                    }
                ]
            },
            "parameter_invalid",
            "content must be a string",
        ),
        (body(""), "parameter_invalid", "1 to 10,000"),
        (body("x" * 10_001), "parameter_invalid", "1 to 10,000"),
        (
            body(text={"format": {"type": "json_object"}}),
            "parameter_invalid",
            "text.format.type",
        ),
        (
            body(text={"format": {"type": "json_schema", "schema": {}}}),
            "parameter_invalid",
            "name",
        ),
        (
            body(
                text={
                    "format": {"type": "json_schema", "name": "bad name!", "schema": {}}
                }
            ),
            "parameter_invalid",
            "name",
        ),
        (
            body(text={"format": {"type": "json_schema", "name": "ok"}}),
            "parameter_invalid",
            "schema",
        ),
        (
            body(selections=[{"kind": "item", "id": "ksic_x"}]),
            "parameter_invalid",
            "selections[0]",
        ),
        (
            body(selections=[{"kind": "video", "id": "ksi_x"}]),
            "parameter_invalid",
            "selections[0]",
        ),
        (body(selections="ksi_x"), "parameter_invalid", "array"),
        (
            body(
                "{{sel:3}}",
                selections=[
                    {"kind": "item", "id": "ksi_0195d0e0-0000-7000-8000-0000000000a1"}
                ],
            ),
            "parameter_invalid",
            "selections[3]",
        ),
        (
            body(
                selections=[
                    {"kind": "item", "id": "ksi_0195d0e0-0000-7000-8000-0000000000ff"}
                ]
            ),
            "parameter_invalid",
            "not in knowledge store",
        ),
        (body(include=["everything"]), "parameter_invalid", "intermediate_outputs"),
        (body(model="gpt-4"), "parameter_invalid", "jockey1.0"),
        (body(temperature=0), "parameter_unknown", "temperature"),
        (body(stream="yes"), "parameter_invalid", "stream"),
    ],
)
def test_bad_requests_are_400_with_the_api_codes(
    client, payload, code, fragment
) -> None:
    status, error = post(client, payload)
    assert status == 400
    assert error["code"] == code
    assert fragment in error["message"]


def test_invalid_json_is_400(client) -> None:
    response = client.post(
        "/responses", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400


def test_unknown_store_is_404(client) -> None:
    status, error = post(
        client,
        body() | {"knowledge_store_id": "ks_0195d0e0-0000-7000-8000-0000000000ee"},
    )
    assert (status, error["code"]) == (404, "resource_not_exist")


def test_documented_legacy_fields_are_accepted(client) -> None:
    events = stream_events(client, body(model="jockey1.0", metadata={"k": "v"}))
    assert events[-1]["response"]["status"] == "completed"


def test_max_output_tokens_is_accepted_and_has_no_effect(client) -> None:
    # Undocumented: the live API takes it, and nothing says what it does.
    plain = stream_events(client, body())
    capped = stream_events(client, body(max_output_tokens=4))
    assert capped[-1]["response"]["status"] == "completed"
    deltas = [
        [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
        for events in (plain, capped)
    ]
    assert deltas[0] == deltas[1]


def test_session_with_another_store_is_400(client) -> None:
    session = stream_events(client, body())[0]["response"]["session_id"]
    status, error = post(
        client, body(session_id=session) | {"knowledge_store_id": KITCHEN_STORE_ID}
    )
    assert status == 400
    assert session in error["message"]
    assert "must match" in error["message"]


def test_unknown_session_is_400_invalid_session(client) -> None:
    status, error = post(
        client, body(session_id="sess_0195d0e0-0000-7000-8000-00000000beef")
    )
    assert status == 400
    assert error["message"].startswith("Invalid session")


def test_wrong_path_and_method(client) -> None:
    assert client.post("/nope", json={}).status_code == 404
    assert client.get("/responses").status_code == 405


def test_requests_are_recorded_without_the_key(emulator, client) -> None:
    stream_events(client, body("recorded?"))
    seen = emulator.requests[-1]
    assert seen.body["input"][0]["content"] == "recorded?"
    assert seen.key_accepted
    assert seen.headers["x-api-key"] == "<redacted>"
    assert DEMO_API_KEY not in repr(emulator.requests)
