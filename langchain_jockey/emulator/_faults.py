"""Fault injection: what can go wrong, chosen per request or per server.

Per request, send the header `x-emulator-fault` with `;`-separated settings,
for example `drop_after=5` or `status=429;times=1;retry_after=1`. Per server,
pass `faults=[Fault.parse("…")]` to `Emulator` or `--fault "…"` on the command
line; a server fault applies to every request.

Settings (N counts answer deltas unless said otherwise):

- `status=N` (with `times=K`, `retry_after=S`, `code=C`): answer HTTP N (an
  error, 400 to 599), with that error code and `Retry-After`, to the first K
  requests carrying this fault (default 1), then answer normally.
- `fail_after=N`: `response.failed` after N deltas, then `[DONE]`.
- `error_after=N`: an `error` event, then `response.failed`, after N deltas.
- `drop_after=N`: close the connection after N events (any type): no
  terminal event, no `[DONE]`.
- `malformed_after=N`: one event whose JSON is cut short; then go on.
- `unknown_events`: an event of an unknown type before every delta.
- `stall_after=N`: then only `keepalive` events until the client leaves.
- `silent_stall_after=N`: then nothing at all until the client leaves.
- `truncate_after=N`: cut the answer after N deltas (`status: "incomplete"`,
  reason `max_output_tokens`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["FAULT_HEADER", "Fault"]

FAULT_HEADER = "x-emulator-fault"
_DEFAULT_CODES = {
    400: "parameter_invalid",
    401: "api_key_invalid",
    403: "api_not_allowed",
    404: "resource_not_exist",
    429: "too_many_requests",
}


@dataclass(frozen=True)
class Fault:
    """One fault specification (see the module docstring for the settings)."""

    status: int | None = None
    times: int = 1
    retry_after: str | None = None
    code: str | None = None
    fail_after: int | None = None
    error_after: int | None = None
    drop_after: int | None = None
    malformed_after: int | None = None
    unknown_events: bool = False
    stall_after: int | None = None
    silent_stall_after: int | None = None
    truncate_after: int | None = None

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """Parse `key=value;key=value;flag`.

        Raises:
            ValueError: naming the setting that is wrong.
        """
        known = {f.name: f for f in fields(cls)}
        values: dict[str, object] = {}
        for raw in spec.replace(",", ";").split(";"):
            part = raw.strip()
            if not part:
                continue
            key, _, value = part.partition("=")
            key = key.strip()
            if key not in known:
                msg = f"unknown fault setting {key!r}; known: {', '.join(known)}"
                raise ValueError(msg)
            if key == "unknown_events":
                values[key] = value.strip().lower() not in ("0", "false", "no")
            elif key in ("retry_after", "code"):
                values[key] = value.strip()
                if not (value.isascii() and value.isprintable()):
                    msg = f"fault setting {key!r} takes printable ASCII, not {value!r}"
                    raise ValueError(msg)
            else:
                try:
                    number = int(value)
                except ValueError:
                    msg = f"fault setting {key!r} needs a whole number, not {value!r}"
                    raise ValueError(msg) from None
                if number < 0:
                    msg = f"fault setting {key!r} must not be negative"
                    raise ValueError(msg)
                if key == "status" and not 400 <= number <= 599:
                    msg = "fault setting 'status' takes an error status, 400 to 599"
                    raise ValueError(msg)
                values[key] = number
        return cls(**values)  # type: ignore[arg-type]

    @property
    def error_code(self) -> str:
        """The error code of a `status` fault."""
        if self.code:
            return self.code
        status = self.status or 500
        return _DEFAULT_CODES.get(
            status, "internal_error" if status >= 500 else "parameter_invalid"
        )
