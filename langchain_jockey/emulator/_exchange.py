"""Writing one response on the wire: JSON, or a stream of SSE events with keepalives.

The faults that act on a stream (a malformed event, an error event, a stall, a
dropped connection, unknown event types; see `_faults.py`) are applied here,
before the delta they name.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h11

from langchain_jockey.emulator._faults import Fault
from langchain_jockey.emulator._responses import Plan, events, failed_snapshot

if TYPE_CHECKING:
    from langchain_jockey.emulator._config import EmulatorConfig

__all__ = ["ClientGoneError", "Exchange"]

_UNKNOWN_TYPES = ("response.emulator_trace", "acme:debug")


class ClientGoneError(Exception):
    """The client went away."""


@dataclass
class Exchange:
    """One request/response on a connection, and how it is written."""

    conn: h11.Connection
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    config: EmulatorConfig
    seq: int = 0
    deltas: int = 0
    written: int = 0

    async def send(self, *h11_events: Any) -> None:
        """Write `h11_events`; a client that went away raises `ClientGoneError`."""
        for event in h11_events:
            data = self.conn.send(event)
            if data:
                self.writer.write(data)
        try:
            await self.writer.drain()
        except (ConnectionError, RuntimeError) as exc:
            raise ClientGoneError from exc
        if self.writer.is_closing():
            raise ClientGoneError

    async def send_json(
        self,
        status: int,
        payload: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer with `payload` as a whole JSON body (`None`: no body, for a 204)."""
        head = [("x-api-version", "1.3"), *(headers or {}).items()]
        if payload is None:
            await self.send(
                h11.Response(status_code=status, headers=head), h11.EndOfMessage()
            )
            return
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        head += [
            ("content-type", "application/json"),
            ("content-length", str(len(body))),
        ]
        await self.send(
            h11.Response(status_code=status, headers=head),
            h11.Data(data=body),
            h11.EndOfMessage(),
        )

    async def send_file(self, path: Path, content_type: str) -> None:
        """Answer with a file's bytes, read and written 64 KiB at a time."""
        with path.open("rb") as file:
            head = [
                ("content-type", content_type),
                ("content-length", str(os.fstat(file.fileno()).st_size)),
                ("cache-control", "private, max-age=600"),
            ]
            await self.send(h11.Response(status_code=200, headers=head))
            while chunk := file.read(1 << 16):
                await self.send(h11.Data(data=chunk))
        await self.send(h11.EndOfMessage())

    async def emit(self, event: dict[str, Any]) -> None:
        """Write one SSE event, numbered in `sequence_number`."""
        kind = event["type"]
        data = json.dumps(
            {"type": kind, "sequence_number": self.seq, **event},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        self.seq += 1
        self.written += 1
        await self.send(h11.Data(data=f"event: {kind}\ndata: {data}\n\n".encode()))

    async def wait(self, seconds: float) -> None:
        """Wait, sending a keepalive every `keepalive_interval`."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(left, self.config.keepalive_interval))
            if time.monotonic() < deadline:
                await self.emit({"type": "keepalive"})

    async def stall(self, *, silent: bool) -> None:
        deadline = time.monotonic() + self.config.max_stall
        while time.monotonic() < deadline:
            if silent:
                with contextlib.suppress(asyncio.TimeoutError):
                    if (
                        await asyncio.wait_for(
                            self.reader.read(1), deadline - time.monotonic()
                        )
                        == b""
                    ):
                        return
            else:
                await asyncio.sleep(self.config.keepalive_interval)
                await self.emit({"type": "keepalive"})

    async def stream(
        self, plan: Plan, fault: Fault, *, done: Callable[[], None]
    ) -> bool:
        """Stream `plan`'s events; whether the connection may be kept.

        `done` runs when the answer was sent whole, before `[DONE]`.
        """
        head = [
            ("content-type", "text/event-stream; charset=utf-8"),
            ("cache-control", "no-cache"),
            ("x-api-version", "1.3"),
        ]
        await self.send(h11.Response(status_code=200, headers=head))
        first_item = True
        for event in events(plan):
            kind = event["type"]
            if kind == "response.output_item.added" and first_item:
                first_item = False
                await self.wait(self.config.first_token_delay)
            if kind == "response.output_text.delta":
                ended = await self._before_delta(fault, plan)
                if ended is not None:
                    return ended
                if self.config.delta_delay:
                    await asyncio.sleep(self.config.delta_delay)
                self.deltas += 1
            if fault.drop_after is not None and self.written >= fault.drop_after:
                return False  # the connection is closed with no terminal chunk
            await self.emit(event)
        done()
        await self.send(h11.Data(data=b"data: [DONE]\n\n"), h11.EndOfMessage())
        return True

    async def _before_delta(self, fault: Fault, plan: Plan) -> bool | None:
        """Apply the faults due before the next delta.

        Returns `None` to go on, else whether the connection may be kept.
        """
        n = self.deltas
        if fault.unknown_events:
            await self.emit(
                {"type": _UNKNOWN_TYPES[n % 2], "note": "ignore me", "n": n}
            )
        if fault.malformed_after == n:
            seq, self.seq = self.seq, self.seq + 1
            bad = (
                "event: response.output_text.delta\ndata: "
                f'{{"type":"response.output_text.delta","sequence_number":{seq},'
                '"delta":"\n\n'
            )
            await self.send(h11.Data(data=bad.encode()))
        if fault.error_after == n:
            await self.emit(
                {
                    "type": "error",
                    "error": {
                        "type": "server_error",
                        "code": "internal_error",
                        "message": "Injected fault: the agent failed while answering.",
                        "param": None,
                    },
                },
            )
        if n in (fault.error_after, fault.fail_after):
            await self.emit(
                {"type": "response.failed", "response": failed_snapshot(plan)}
            )
            await self.send(h11.Data(data=b"data: [DONE]\n\n"), h11.EndOfMessage())
            return True
        if n in (fault.stall_after, fault.silent_stall_after):
            await self.stall(silent=fault.silent_stall_after == n)
            return False
        return None
