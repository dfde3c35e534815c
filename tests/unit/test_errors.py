"""Errors: one tree, built in one place, mixed into langchain-core's ModelError."""

from __future__ import annotations

import pickle
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest
from langchain_core import exceptions as core

from langchain_jockey import _failures, errors


def response(status: int, body=None, headers=None, text=None) -> httpx.Response:
    """A read response, as `send` gets it: with the request it answers."""
    request = httpx.Request("POST", "https://api.example/v1.3/responses")
    if text is not None:
        return httpx.Response(status, text=text, headers=headers or {}, request=request)
    return httpx.Response(status, json=body, headers=headers or {}, request=request)


@pytest.mark.parametrize(
    ("status", "cls", "core_cls", "retryable"),
    [
        (400, errors.JockeyBadRequestError, core.ModelInvalidRequestError, False),
        (401, errors.JockeyAuthenticationError, core.ModelAuthenticationError, False),
        (
            403,
            errors.JockeyPermissionDeniedError,
            core.ModelPermissionDeniedError,
            False,
        ),
        (404, errors.JockeyNotFoundError, core.ModelNotFoundError, False),
        (409, errors.JockeyBadRequestError, core.ModelInvalidRequestError, False),
        (422, errors.JockeyBadRequestError, core.ModelInvalidRequestError, False),
        (429, errors.JockeyRateLimitError, core.ModelRateLimitError, True),
        (500, errors.JockeyServerError, core.ModelAPIError, True),
        (503, errors.JockeyServerError, core.ModelAPIError, True),
    ],
)
def test_status_maps_to_a_jockey_error_that_is_also_the_core_error(
    status, cls, core_cls, retryable
) -> None:
    err = _failures.error_from_response(response(status, {"code": "x", "message": "m"}))
    assert type(err) is cls
    assert isinstance(err, core_cls)
    assert isinstance(err, errors.JockeyError)
    assert err.is_retryable is retryable
    assert err.status_code == status


def test_flat_error_body_is_parsed() -> None:
    err = _failures.error_from_response(
        response(
            401,
            {
                "code": "api_key_invalid",
                "message": "API Key is either invalid or expired.",
                "docs_url": "https://docs/x",
            },
        )
    )
    assert (err.code, err.message, err.docs_url) == (
        "api_key_invalid",
        "API Key is either invalid or expired.",
        "https://docs/x",
    )
    assert (
        str(err)
        == "401 api_key_invalid: API Key is either invalid or expired. (see https://docs/x)"
    )


def test_nested_error_body_is_parsed() -> None:
    err = _failures.error_from_response(
        response(400, {"error": {"type": "invalid_request_error", "message": "bad"}})
    )
    assert (err.code, err.message) == ("invalid_request_error", "bad")


def test_non_json_error_body_keeps_its_text() -> None:
    err = _failures.error_from_response(response(502, text="<html>Bad gateway</html>"))
    assert isinstance(err, errors.JockeyServerError)
    assert err.message == "<html>Bad gateway</html>"


def test_a_key_echoed_where_the_error_text_is_cut_leaves_no_piece_of_it() -> None:
    key = "tlk_cut_0123456789abcdefghij"
    request = httpx.Request(
        "POST", "https://api.example/v1.3/responses", headers={"x-api-key": key}
    )
    body = "x" * 1990 + key + "x" * 100  # the 2,000-character cap falls in the key
    err = _failures.error_from_response(httpx.Response(500, text=body, request=request))
    kept = [str(err), repr(err.body), err.response.text, repr(vars(err))]
    assert [view for view in kept if key[:8] in view] == []
    assert "[redacted]" in err.response.text


def test_plan_limit_exceeded_is_a_rate_limit_that_is_not_retryable() -> None:
    err = _failures.error_from_response(
        response(
            429,
            {"code": "plan_limit_exceeded", "message": "daily Response limit (15/day)"},
        )
    )
    assert isinstance(err, errors.JockeyRateLimitError)
    assert err.is_retryable is False
    assert errors.JockeyRateLimitError("x").is_retryable is True


def test_retry_after_seconds_ms_and_http_date() -> None:
    now = datetime(2026, 6, 23, 13, 46, 0, tzinfo=timezone.utc)
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert _failures.parse_retry_after({"Retry-After": "7"}) == 7.0
    assert (
        _failures.parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"})
        == 1.5
    )
    assert _failures.parse_retry_after(
        {"Retry-After": later}, now=now.timestamp()
    ) == pytest.approx(30.0)
    assert _failures.parse_retry_after({"Retry-After": "garbage"}) is None
    assert _failures.parse_retry_after({}) is None


def test_retry_after_from_a_reset_time_in_the_message() -> None:
    now = datetime(2026, 6, 23, 13, 46, 0, tzinfo=timezone.utc).timestamp()
    message = "You have exceeded the rate limit. Please try again later after 2026-06-23T13:46:59Z."
    assert _failures.parse_retry_after({}, message, now=now) == pytest.approx(59.0)
    err = _failures.error_from_response(
        response(429, {"code": "too_many_requests", "message": message})
    )
    assert err.retry_after is not None


def test_errors_pickle_without_their_response() -> None:
    err = _failures.error_from_response(
        response(
            429, {"code": "too_many_requests", "message": "slow"}, {"retry-after": "2"}
        )
    )
    err.partial_text, err.session_id = "abc", "sess_1"
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is errors.JockeyRateLimitError
    assert (clone.code, clone.retry_after, clone.partial_text, clone.session_id) == (
        "too_many_requests",
        2.0,
        "abc",
        "sess_1",
    )
    assert clone.response is None
    assert str(clone) == str(err)


def test_transport_errors_map_to_connection_timeout_and_interrupted() -> None:
    assert isinstance(
        _failures.error_from_transport(httpx.ConnectError("refused")),
        errors.JockeyConnectionError,
    )
    assert isinstance(
        _failures.error_from_transport(httpx.ReadTimeout("slow")),
        errors.JockeyTimeoutError,
    )
    assert isinstance(
        _failures.error_from_transport(httpx.ReadTimeout("slow")),
        core.ModelTimeoutError,
    )
    assert isinstance(
        _failures.error_from_transport(httpx.RemoteProtocolError("peer closed")),
        errors.JockeyStreamInterruptedError,
    )


def _status_error(status: int, headers=None, code="x"):
    return _failures.error_from_response(
        response(status, {"code": code, "message": "m"}, headers)
    )


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    from langchain_jockey._failures import RetryPolicy

    policy = RetryPolicy(max_retries=10, backoff=0.5, backoff_cap=4.0)
    err = _status_error(503)
    for attempt, step in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (6, 4.0)]:
        delays = {policy.delay(attempt, err) for _ in range(50)}
        assert all(step * 0.5 <= d <= step for d in delays), (attempt, delays)
        assert len(delays) > 1  # jittered
    assert policy.delay(10, err) is None


def test_retry_policy_decisions() -> None:
    from langchain_jockey._failures import RetryPolicy

    policy = RetryPolicy(max_retries=2)
    assert policy.delay(0, _status_error(429, {"retry-after": "3"})) == 3.0
    assert policy.delay(0, _status_error(429, {"retry-after": "61"})) is None
    assert policy.delay(0, _status_error(429, code="plan_limit_exceeded")) is None
    assert policy.delay(0, _status_error(400)) is None
    assert policy.delay(0, _status_error(408)) is not None
    connect = _failures.error_from_transport(httpx.ConnectError("refused"))
    read = _failures.error_from_transport(httpx.ReadTimeout("slow"))
    assert policy.delay(0, connect) is not None
    assert policy.delay(0, read) is None


@pytest.mark.parametrize(
    ("url", "failure", "where", "cause"),
    [
        (
            "http://127.0.0.1:8600/v1.3/responses",
            "[Errno 111] Connection refused",
            "127.0.0.1:8600",
            "is the local emulator running?",
        ),
        (
            "https://api.twelvelabs.io/v1.3/responses",
            "[Errno -2] Name or service not known",
            "api.twelvelabs.io:443",
            "did not resolve: check base_url and DNS",
        ),
        (
            "https://api.twelvelabs.io/v1.3/responses",
            "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed",
            "api.twelvelabs.io:443",
            "the TLS handshake failed",
        ),
        (
            "http://jockey.internal:8080/v1.3/responses",
            "[Errno 113] No route to host",
            "jockey.internal:8080",
            "check base_url and your network connection",
        ),
    ],
)
def test_a_connection_failure_names_where_it_tried_and_the_likely_cause(
    url, failure, where, cause
) -> None:
    request = httpx.Request("POST", url, headers={"x-api-key": "tlk_secret_key"})
    err = _failures.error_from_transport(httpx.ConnectError(failure), request)
    assert isinstance(err, errors.JockeyConnectionError)
    assert f"could not connect to Jockey at {where} ({failure})" in str(err)
    assert cause in str(err)
    assert "tlk_secret_key" not in str(err)


def test_an_ipv6_or_127_x_host_is_named_and_seen_as_local() -> None:
    for url, where in [
        ("http://[::1]:8765/v1.3/responses", "[::1]:8765"),
        ("http://127.0.0.2:8600/v1.3/responses", "127.0.0.2:8600"),
    ]:
        request = httpx.Request("POST", url)
        err = _failures.error_from_transport(httpx.ConnectError("refused"), request)
        assert f"at {where} (refused)" in str(err)
        assert "is the local emulator running?" in str(err)


def test_a_connect_timeout_names_where_it_waited(monkeypatch) -> None:
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.delenv("ALL_PROXY", raising=False)
    monkeypatch.delenv("all_proxy", raising=False)
    request = httpx.Request(
        "POST",
        "https://api.twelvelabs.io/v1.3/responses",
        extensions={"timeout": {"connect": 2.0}},
    )
    err = _failures.error_from_transport(httpx.ConnectTimeout("slow"), request)
    assert "waited 2 s to connect to Jockey at api.twelvelabs.io:443" in str(err)


def test_a_proxy_in_the_environment_is_named_without_its_credentials(
    monkeypatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://user:secret@proxy.corp:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    request = httpx.Request("POST", "https://api.twelvelabs.io/v1.3/responses")
    err = _failures.error_from_transport(httpx.ConnectError("refused"), request)
    assert "through the proxy in HTTPS_PROXY (proxy.corp:3128)" in str(err)
    assert "secret" not in str(err)
