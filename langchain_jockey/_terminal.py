r"""Text for a terminal: what a file name or a server sends is shown, never obeyed.

A file name or a server's message may hold control characters. Printed as they
are, an escape sequence (`ESC ] 0 ; … BEL`) sets the window title, `ESC [ 2 J`
clears the screen, a newline forges a line of the report, and a bidi override
makes text read backwards. `shown` escapes them: C0 (tab and newline
included), DEL, C1 (the 8-bit forms of ESC's sequences), the bidi controls and
the Unicode line and paragraph separators, written `\x1b`, `\n`, `\u202e`.
A file name's bytes that do not decode (Python holds them as lone surrogates,
which go out raw, 0x9B being the 8-bit CSI, or make a strict UTF-8 stream
raise) are written as the bytes they are, `\x9b`; any other lone surrogate
`\udXXX`. A backslash stays as it is (Windows paths). It also hides the
credentials a URL may carry (`https://user:pass@host/…` → `https://***@host/…`).
No I/O.
"""

from __future__ import annotations

import re

__all__ = ["shown"]

_CONTROLS = (
    *range(0x20),  # C0
    0x7F,  # DEL
    *range(0x80, 0xA0),  # C1: CSI (0x9B), OSC (0x9D) and the rest
    0x061C,  # Arabic letter mark
    0x200E,  # left-to-right mark
    0x200F,  # right-to-left mark
    *range(0x202A, 0x202F),  # embeddings and overrides (LRE … RLO)
    *range(0x2066, 0x206A),  # isolates (LRI … PDI)
    0x2028,  # line separator
    0x2029,  # paragraph separator
)
_ESCAPES = {c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" for c in _CONTROLS}
_ESCAPES |= {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}
_ESCAPES |= {c: f"\\u{c:04x}" for c in range(0xD800, 0xE000)}  # lone surrogates
_ESCAPES |= {0xDC00 + b: f"\\x{b:02x}" for b in range(0x80, 0x100)}  # undecoded bytes
# scheme://userinfo@ : the userinfo is what goes (RFC 3986 §3.2.1).
_USERINFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s@]*@")


def shown(text: str) -> str:
    """`text` safe to print: control characters escaped, URL credentials hidden."""
    return _USERINFO.sub(r"\1***@", text).translate(_ESCAPES)
