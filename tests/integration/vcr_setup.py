"""Cassette recording and strict replay for the integration suite.

- Cassettes live in the top-level `cassettes/` as plain YAML; multi-line bodies
  (the SSE streams) are written as literal blocks, readable in review.
- Before anything is written, every request and response header is dropped
  except `content-type` (and `retry-after` on responses): `x-api-key` never
  reaches a cassette, and the key is replaced anywhere it might appear. The URL
  becomes the public API's, so cassettes do not depend on where they were
  recorded; `recording.json` beside them says which knowledge store was used,
  and replay uses the same one (request bodies must match).
- Requests match on method, path and JSON body (key order ignored).
- The record mode comes from `--record-mode` alone (default `none`: strict
  replay). langchain-tests' `base_vcr_config()` sets `record_mode="once"`,
  which would silently record a missing cassette; it is removed here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml
from langchain_tests.conftest import base_vcr_config
from vcr.serializers import yamlserializer

CASSETTES = Path(
    os.environ.get(
        "JOCKEY_CASSETTES_DIR", Path(__file__).resolve().parents[2] / "cassettes"
    )
)
RECORDING = CASSETTES / "recording.json"
PUBLIC_URL = "https://api.twelvelabs.io"
_KEEP_REQUEST_HEADERS = {"content-type"}
_KEEP_RESPONSE_HEADERS = {"content-type", "retry-after"}


class _ReadableDumper(yamlserializer._CassetteDumper):  # noqa: SLF001 - keeps vcr's safety checks
    pass


def _str(dumper: yaml.Dumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_ReadableDumper.add_representer(str, _str)


class ReadableYaml:
    """vcr serializer: YAML with literal blocks for multi-line strings."""

    @staticmethod
    def serialize(cassette_dict: dict[str, Any]) -> str:
        return yaml.dump(
            cassette_dict,
            Dumper=_ReadableDumper,
            allow_unicode=True,
            sort_keys=False,
            width=1 << 16,
        )

    @staticmethod
    def deserialize(cassette_string: str) -> dict[str, Any]:
        return yamlserializer.deserialize(cassette_string)


def recorded_store() -> str:
    """The knowledge store the cassettes were recorded against."""
    return str(json.loads(RECORDING.read_text(encoding="utf-8"))["knowledge_store_id"])


def save_recording(kind: str, store: str) -> None:
    """Remember what the cassettes are being recorded against."""
    CASSETTES.mkdir(parents=True, exist_ok=True)
    RECORDING.write_text(
        json.dumps({"target": kind, "knowledge_store_id": store}, indent=2) + "\n",
        encoding="utf-8",
    )


def _scrub_text(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "REDACTED")
    return text


def make_scrubbers(secrets: list[str]) -> tuple[Any, Any]:
    """`before_record_request` / `before_record_response` for a recording target."""

    def request(req: Any) -> Any:
        for name in list(req.headers):
            if name.lower() not in _KEEP_REQUEST_HEADERS:
                del req.headers[name]
        path = req.uri.split("://", 1)[-1].split("/", 1)[-1]
        req.uri = f"{PUBLIC_URL}/{path}"
        if req.body:
            body = req.body.decode() if isinstance(req.body, bytes) else req.body
            req.body = _scrub_text(body, secrets).encode()
        return req

    def response(resp: dict[str, Any]) -> dict[str, Any]:
        resp["headers"] = {
            k: v
            for k, v in resp["headers"].items()
            if k.lower() in _KEEP_RESPONSE_HEADERS
        }
        body = resp["body"]["string"]
        if isinstance(body, bytes):
            body = body.decode("utf-8")
        resp["body"]["string"] = _scrub_text(body, secrets).encode()
        return resp

    return request, response


def json_body(r1: Any, r2: Any) -> None:
    """vcr matcher: equal JSON bodies (key order ignored), else equal bytes."""

    def load(body: Any) -> Any:
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        try:
            return json.loads(body) if body else None
        except ValueError:
            return body

    left, right = load(r1.body), load(r2.body)
    assert left == right, f"request bodies differ:\n{left}\n{right}"


def vcr_config(secrets: list[str]) -> dict[str, Any]:
    """The vcr configuration of the integration suite."""
    config = base_vcr_config()
    config.pop("record_mode")  # the trap: let --record-mode decide (default: none)
    before_request, before_response = make_scrubbers(secrets)
    config.update(
        {
            "cassette_library_dir": str(CASSETTES),
            "path_transformer": lambda path: (
                path if path.endswith(".yaml") else path + ".yaml"
            ),
            "serializer": "readable_yaml",
            "match_on": ["method", "path", "json_body"],
            "filter_headers": [],
            "before_record_request": before_request,
            "before_record_response": before_response,
        }
    )
    return config
