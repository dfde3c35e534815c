"""Media helpers for tests: real videos made by ffmpeg, and reading what a server sent.

- `real_video`: a decodable MP4 (a test pattern and a tone), made by the ffmpeg of
  `imageio-ffmpeg` (`_media.sample_video`'s files have no tracks to decode).
- `jpeg_size`: a JPEG's width and height, from its start-of-frame marker.
- `segments`: a VOD playlist's segment names and their total length.
- `decodes`: whether ffmpeg reads a media URL (a playlist and its segments) whole.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import imageio_ffmpeg

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
_QUIET = [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]


def real_video(
    path: Path, seconds: float = 8, *, codec: str = "libx264", size: str = "320x240"
) -> Path:
    """A `seconds`-long MP4 at `path`: `testsrc` in `codec` (25 fps), AAC tone."""
    subprocess.run(  # noqa: S603 - ffmpeg from imageio-ffmpeg, fixed arguments
        [
            *_QUIET,
            *("-f", "lavfi", "-i", f"testsrc=duration={seconds}:size={size}:rate=25"),
            *("-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"),
            *("-c:v", codec, "-pix_fmt", "yuv420p", "-g", "25"),
            *("-c:a", "aac", "-shortest", str(path)),
        ],
        check=True,
        timeout=60,
    )
    return path


def jpeg_size(data: bytes) -> tuple[int, int]:
    """`(width, height)` of a baseline or progressive JPEG; fails on anything else."""
    assert data[:3] == b"\xff\xd8\xff", "no JPEG start-of-image marker"
    at = 2
    while at + 4 <= len(data):
        assert data[at] == 0xFF, f"no marker at {at}"
        marker, length = data[at + 1], int.from_bytes(data[at + 2 : at + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2):  # start of frame: precision, height, width
            height = int.from_bytes(data[at + 5 : at + 7], "big")
            width = int.from_bytes(data[at + 7 : at + 9], "big")
            return width, height
        at += 2 + length
    msg = "no start-of-frame marker"
    raise AssertionError(msg)


def segments(playlist: str) -> tuple[list[str], float]:
    """The segment URIs of a VOD playlist, and the seconds they add up to."""
    lines = playlist.splitlines()
    assert lines[0] == "#EXTM3U"
    assert "#EXT-X-ENDLIST" in lines
    seconds = sum(
        float(m) for m in re.findall(r"^#EXTINF:([\d.]+),", playlist, re.MULTILINE)
    )
    return [x for x in lines if x and not x.startswith("#")], seconds


def decodes(url: str) -> bool:
    """Whether ffmpeg decodes every frame `url` (a playlist) leads to, without error."""
    done = subprocess.run(  # noqa: S603 - the same ffmpeg, a loopback URL
        [*_QUIET, "-i", url, "-f", "null", "-"],
        check=False,
        timeout=120,
        capture_output=True,
    )
    return done.returncode == 0 and not done.stderr
