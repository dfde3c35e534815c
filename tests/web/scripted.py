"""A scripted Jockey whose citations carry real media, and an https server for it.

The emulator's citations carry no media the page may load (their URLs are on
`.invalid` hosts, shown as null). The real API's are signed `https` URLs, loaded
by the browser directly: `media_server` serves a JPEG and an HLS clip made by
ffmpeg (`imageio-ffmpeg`) over https on 127.0.0.1 (a self-signed certificate
the test browser accepts), and `scripted_jockey` answers every question with
the same text and citations pointing there (tests/reliability/hostile.py does
the HTTP).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import ipaddress
import json
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import imageio_ffmpeg
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.reliability.hostile import (
    CREATED,
    DONE,
    chunk,
    completed,
    delta,
    head,
    hostile,
)

STORE = "ks_scripted"
SESSION = "sess_S"


def make_media(folder: Path) -> None:
    """`thumb.jpg` and a 6 s HLS clip `clip.m3u8` (1 s segments) in `folder`."""
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    quiet = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"]
    source = "testsrc=duration=6:size=320x180:rate=25"
    hls = ["-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod"]
    subprocess.run(  # noqa: S603 - ffmpeg from imageio-ffmpeg, fixed arguments
        [
            *quiet,
            *("-i", source, "-c:v", "libx264", "-preset", "ultrafast"),
            *("-pix_fmt", "yuv420p", "-g", "25", *hls, str(folder / "clip.m3u8")),
        ],
        check=True,
        timeout=60,
    )
    subprocess.run(  # noqa: S603 - the same
        [*quiet, "-i", source, "-frames:v", "1", str(folder / "thumb.jpg")],
        check=True,
        timeout=60,
    )


def _certificate(folder: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


class _Media(SimpleHTTPRequestHandler):
    extensions_map = {  # noqa: RUF012 - the base class's own attribute
        ".m3u8": "application/vnd.apple.mpegurl",
        ".ts": "video/mp2t",
        ".jpg": "image/jpeg",
    }

    def end_headers(self) -> None:
        # As a CDN's signed URLs may allow: hls.js fetches them cross-origin.
        self.send_header("access-control-allow-origin", "*")
        super().end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def media_server(folder: Path) -> Iterator[str]:
    """Serve `folder` over https on 127.0.0.1; the base URL."""
    media = folder / "media"
    media.mkdir()
    make_media(media)
    context = _certificate(folder)
    handler = functools.partial(_Media, directory=str(media))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def answer_with(media: str, title: str = "Penalty shoot-out") -> tuple[str, list[dict]]:
    """An answer citing two moments of a clip at `media`, and its annotations."""
    text = "The keeper saves the penalty [1], then the crowd runs onto the pitch [2]."
    notes = []
    for number, (start, end) in enumerate([(2.0, 3.0), (4.0, 5.5)], 1):
        marker = f"[{number}]"
        at = text.index(marker)
        notes.append(
            {
                "type": "video_citation",
                "start_index": at,
                "end_index": at + len(marker) - 1,  # Jockey's end is inclusive
                "item_id": "ksi_scripted",
                "start_sec": start,
                "end_sec": end,
                "title": title,
                "thumbnail_url": f"{media}/thumb.jpg",
                "hls_url": f"{media}/clip.m3u8",
            }
        )
    return text, notes


def _json(server: Any, conn: Any, body: Any) -> None:
    data = json.dumps(body).encode()
    head(
        conn,
        200,
        {"content-type": "application/json", "content-length": str(len(data))},
    )
    server.write(conn, data)


@contextlib.contextmanager
def scripted_jockey(
    text: str, notes: list[dict], *, cut: bool = False
) -> Iterator[Any]:
    """A Jockey that answers `text` with `notes`, word by word.

    With `cut`, the stream stops after the first words without a terminal
    event, as a broken connection would.
    """
    words = text.split(" ")

    def behaviour(server: Any, conn: Any, request: Any) -> None:
        if not request.line.startswith("POST"):
            if "/items" in request.line:
                items = [{"_id": f"ksi_{n}", "status": "ready"} for n in range(3)]
                _json(server, conn, {"data": items, "page_info": {"total_page": 1}})
            else:
                _json(
                    server, conn, {"_id": STORE, "name": "Match day", "description": ""}
                )
            return
        head(conn)
        chunk(server, conn, CREATED)
        for n, word in enumerate(words):
            chunk(server, conn, delta(word if n == 0 else f" {word}"))
            if cut and n == 2:
                chunk(server, conn, b"")
                return
        message = {
            "type": "message",
            "id": "msg_1",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": notes}],
        }
        chunk(server, conn, completed(output=[message], knowledge_store_id=STORE))
        chunk(server, conn, DONE)
        chunk(server, conn, b"")

    with hostile(behaviour) as server:
        yield server
