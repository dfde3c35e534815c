"""The media of cited moments: a JPEG of the moment and an HLS playlist of its video.

Jockey's citations carry a `thumbnail_url` and an `hls_url`: signed URLs that
need no API key, `null` when the platform cannot resolve them (docs/protocol.md).
The emulator makes both with ffmpeg (the `imageio-ffmpeg` package's, else one
on `PATH`), lazily, on the first request for each, and keeps them next to what
they are made from:

- an uploaded video (its file is kept only with a data directory): in
  `files/<asset_id>.media/`, deleted with the asset (`DataDir.remove`). The
  playlist copies an H.264 stream as it is (quick), else re-encodes it;
- a demo video: a stand-in, ffmpeg's `testsrc` test pattern (its counter shows
  the second) as long as the video, 320x180 at 10 frames a second, made once
  into `media_dir/demo-1/<item_id>/` (`EmulatorConfig.media_dir`; by default
  `DATA_DIR/media`, else a temporary directory removed when the emulator stops).
  Its thumbnails are read from its playlist.

Without ffmpeg, or for a video without a file (no data directory, a URL
import), both URLs are `null`; so are they for a video ffmpeg failed to read.

A URL is `{origin}/emulator-media/{token}/{item_id}/{name}`, `name` being
`index.m3u8`, `seg_NNNNN.ts` or `thumb_S.jpg` (S: the cited start, in whole
seconds). The token is in the path because the playlist names its segments
relatively, and a relative URL keeps the path, not the query. It is
`EXPIRES.SIGNATURE`: an HMAC-SHA256 of the item and the expiry (Unix seconds,
an hour after the answer, as the API's thumbnail URLs) under a key made at
start, so a restart voids every URL. A bad or expired token gets 403, compared
in constant time.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import importlib
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from langchain_jockey.emulator._requests import ApiError

__all__ = ["PATH", "TTL", "Clips", "Source", "ffmpeg"]

PATH = "/emulator-media/"
"""Where the emulator serves the media its citations name (no key; a token)."""
TTL = 3600
"""Seconds a media URL works after the answer that gave it."""
_DEMO = "demo-1"  # the stand-ins' folder: a new recipe gets a new name
_PLAYLIST = "index.m3u8"
_SEGMENT = re.compile(r"seg_\d{5}\.ts")
_THUMB = re.compile(r"thumb_(\d{1,6})\.jpg")
_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    ".jpg": "image/jpeg",
}
_STREAM = re.compile(r"Stream #\d+:\d+\S*: (Video|Audio): (\w+)")
_MAX_FAILED = 10_000  # videos remembered as unreadable
_TIMEOUT = {"probe": 30.0, "thumbnail": 60.0, "playlist": 1800.0, "exit": 5.0}  # s


_found: list[str] = []  # the executable, once one is found


def _find_ffmpeg() -> str | None:
    importlib.invalidate_caches()  # a package installed since the last look is seen
    try:
        import imageio_ffmpeg  # type: ignore[import-untyped]  # noqa: PLC0415

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):  # not installed, or no binary for here
        return shutil.which("ffmpeg")


def ffmpeg() -> str | None:
    """The ffmpeg executable: `imageio-ffmpeg`'s, else one on `PATH`; `None`: none.

    A found executable is remembered; a missing one is looked for again on the
    next call, so installing the `web` extra while an emulator runs gives the
    following answers their media without a restart.
    """
    if not _found and (exe := _find_ffmpeg()) is not None:
        _found.append(exe)
    return _found[0] if _found else None


@dataclass(frozen=True)
class Source:
    """What a video's media are made from.

    Attributes:
        item_id: The store item the URLs name.
        duration: Its length in seconds.
        file: The uploaded file; `None` for a demo video (a test pattern).
        folder: Where its media are kept; `None` for a demo video (they are
            kept with the other stand-ins).
    """

    item_id: str
    duration: float
    file: Path | None = None
    folder: Path | None = None


class MediaError(Exception):
    """ffmpeg could not make a medium."""


class Clips:
    """Signed media URLs for citations, and the files they name, made on demand.

    Use it on the emulator's event loop only.
    """

    def __init__(self, find: Callable[[str], Source | None], root: Path | None) -> None:
        """Media of the items `find` resolves; demo stand-ins under `root`.

        `root` `None`: a temporary directory, made when first needed and
        removed by `close`.
        """
        self._find = find
        self._root = root
        self._temp: Path | None = None
        self._key = secrets.token_bytes(32)
        self._locks: dict[Path, asyncio.Lock] = {}
        self._failed: set[str] = set()

    def close(self) -> None:
        """Remove the temporary directory of demo stand-ins, if one was made."""
        if self._temp is not None:
            shutil.rmtree(self._temp, ignore_errors=True)
            self._temp = None

    # -- URLs ---------------------------------------------------------------------

    def token(self, item_id: str, expires: int) -> str:
        """The path token of `item_id`'s media until `expires` (Unix seconds)."""
        message = f"{expires}/{item_id}".encode()
        mac = hmac.new(self._key, message, hashlib.sha256).digest()[:18]
        return f"{expires}.{base64.urlsafe_b64encode(mac).decode()}"

    def links(
        self, origin: str, item_id: str, start_sec: float, now: float
    ) -> tuple[str | None, str | None]:
        """`(thumbnail_url, hls_url)` of a cited moment; `None` where there is none."""
        if item_id in self._failed or ffmpeg() is None or self._find(item_id) is None:
            return None, None
        base = f"{origin}{PATH}{self.token(item_id, int(now) + TTL)}/{item_id}/"
        return f"{base}thumb_{int(start_sec)}.jpg", f"{base}{_PLAYLIST}"

    # -- serving --------------------------------------------------------------------

    async def file(self, rest: str, now: float) -> tuple[Path, str]:
        """The file `PATH + rest` names, made now if it is not yet, and its type.

        Raises:
            ApiError: 403 for a bad or expired token; 404 for a name, item or
                medium the emulator does not have (no ffmpeg, or it failed).
        """
        token, _, tail = rest.partition("/")
        item_id, _, name = tail.partition("/")
        if not self._signed(token, item_id, now):
            msg = "The media URL's token is not valid, or has expired (1 h)."
            raise ApiError(403, "signature_invalid", msg)
        source = self._find(item_id)
        thumb = _THUMB.fullmatch(name)
        known = bool(name == _PLAYLIST or _SEGMENT.fullmatch(name) or thumb)
        if thumb is not None and source is not None:
            known = int(thumb.group(1)) <= source.duration
        if source is None or not known:
            raise ApiError(404, "resource_not_exist", f"No media {name} of {item_id}.")
        if ffmpeg() is None:
            msg = "The emulator has no ffmpeg to make media: pip install imageio-ffmpeg"
            raise ApiError(404, "resource_not_exist", msg)
        try:
            if thumb is not None:
                found = await self._thumbnail(source, int(thumb.group(1)))
            else:
                found = await self._playlist(source) / name
        except MediaError as err:
            if len(self._failed) >= _MAX_FAILED:
                self._failed.clear()
            self._failed.add(item_id)
            msg = f"The emulator could not make the media of {item_id}: {err}"
            raise ApiError(404, "resource_not_exist", msg) from None
        if not found.is_file():
            raise ApiError(404, "resource_not_exist", f"No media {name} of {item_id}.")
        return found, _TYPES[found.suffix]

    def _signed(self, token: str, item_id: str, now: float) -> bool:
        expires, _, _ = token.partition(".")
        if not (expires.isascii() and expires.isdigit() and len(expires) <= 12):
            return False
        good = hmac.compare_digest(
            token.encode(), self.token(item_id, int(expires)).encode()
        )
        return good and int(expires) > now

    # -- making them ------------------------------------------------------------------

    def _folder(self, source: Source) -> Path:
        """Where a video's media are kept."""
        if source.folder is not None:
            return source.folder
        if self._root is None:
            if self._temp is None:
                self._temp = Path(tempfile.mkdtemp(prefix="jockey-emulator-media-"))
            return self._temp / _DEMO / source.item_id
        return self._root / _DEMO / source.item_id

    @contextlib.asynccontextmanager
    async def _making(self, path: Path) -> AsyncIterator[None]:
        """One request at a time makes `path`; the others wait, then find it made."""
        lock = self._locks.setdefault(path, asyncio.Lock())
        try:
            async with lock:
                yield
        finally:
            if not lock.locked():  # kept only while in use
                self._locks.pop(path, None)

    async def _playlist(self, source: Source) -> Path:
        """The folder of the video's HLS playlist and segments, made if need be."""
        target = self._folder(source) / "hls"
        async with self._making(target):
            if (target / _PLAYLIST).is_file():
                return target
            target.parent.mkdir(parents=True, exist_ok=True)
            work = target.with_name(f".hls-{secrets.token_hex(6)}")
            work.mkdir()
            try:
                await _run(
                    [
                        *await _encoding(source),
                        *("-f", "hls", "-hls_time", "4", "-hls_playlist_type", "vod"),
                        *("-hls_segment_filename", str(work / "seg_%05d.ts")),
                        str(work / _PLAYLIST),
                    ],
                    _TIMEOUT["playlist"],
                )
                with contextlib.suppress(OSError):  # made meanwhile elsewhere
                    work.rename(target)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        if not (target / _PLAYLIST).is_file():
            msg = "ffmpeg wrote no playlist"
            raise MediaError(msg)
        return target

    async def _thumbnail(self, source: Source, second: int) -> Path:
        """The JPEG of the video at `second`, made if need be."""
        folder = self._folder(source)
        target = folder / f"thumb_{second}.jpg"
        # A demo stand-in is read from its playlist: a test pattern cannot seek.
        video = source.file or (await self._playlist(source)) / _PLAYLIST
        async with self._making(target):
            if target.is_file():
                return target
            folder.mkdir(parents=True, exist_ok=True)
            work = folder / f".thumb-{secrets.token_hex(6)}.jpg"
            at = max(0.0, min(float(second), source.duration - 0.5))
            try:
                await _run(
                    [
                        *("-ss", f"{at:g}", "-i", str(video), "-frames:v", "1"),
                        *("-vf", "scale=-2:'min(360,trunc(ih/2)*2)'", "-q:v", "5"),
                        str(work),
                    ],
                    _TIMEOUT["thumbnail"],
                )
                if not work.is_file() or not work.stat().st_size:
                    msg = f"no frame at {at:g} s"
                    raise MediaError(msg)
                work.replace(target)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    work.unlink()
        return target


async def _encoding(source: Source) -> list[str]:
    """The input and codec arguments of ffmpeg for a video's playlist."""
    if source.file is None:
        pattern = f"testsrc=duration={source.duration:g}:size=320x180:rate=10"
        return [
            *("-f", "lavfi", "-i", pattern, "-c:v", "libx264", "-preset", "ultrafast"),
            *("-crf", "32", "-pix_fmt", "yuv420p", "-g", "40"),
        ]
    said = await _run(["-i", str(source.file)], _TIMEOUT["probe"], check=False)
    codecs = dict(reversed(_STREAM.findall(said)))  # the first stream of each kind
    video = (
        ["-c:v", "copy"]
        if codecs.get("Video") == "h264"
        else [
            *("-c:v", "libx264", "-preset", "veryfast", "-crf", "26"),
            *("-pix_fmt", "yuv420p", "-vf", "scale=-2:'min(720,trunc(ih/2)*2)'"),
        ]
    )
    audio = {None: ["-an"], "aac": ["-c:a", "copy"]}.get(
        codecs.get("Audio"), ["-c:a", "aac", "-b:a", "128k"]
    )
    return [
        *("-i", str(source.file), "-map", "0:v:0", "-map", "0:a:0?", "-sn", "-dn"),
        *video,
        *audio,
    ]


async def _run(args: list[str], timeout: float, *, check: bool = True) -> str:
    """Run ffmpeg with `args`; what it said on stderr.

    Raises:
        MediaError: with `check`, when it fails or takes over `timeout` seconds.
    """
    exe = ffmpeg()
    if exe is None:
        msg = "no ffmpeg"
        raise MediaError(msg)
    level = ["-loglevel", "error"] if check else []
    process = await asyncio.create_subprocess_exec(
        *(exe, "-hide_banner", "-nostdin", "-y", *level, *args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "AV_LOG_FORCE_NOCOLOR": "1"},
    )
    try:
        _, err = await asyncio.wait_for(process.communicate(), timeout)
    except asyncio.TimeoutError:
        await _kill(process)
        msg = f"ffmpeg took over {timeout:g} s"
        raise MediaError(msg) from None
    except BaseException:  # the emulator stopping: ffmpeg stops too
        await _kill(process)
        raise
    said = err.decode("utf-8", "replace")
    if check and process.returncode != 0:
        raise MediaError(f"ffmpeg failed: {said.strip()[-300:]}")
    return said


async def _kill(process: asyncio.subprocess.Process) -> None:
    """Kill ffmpeg and wait for it, so that its pipes close while this loop runs.

    Left to the garbage collector, they closed after the emulator's loop had,
    raising "Event loop is closed" wherever the collection happened to run.
    """
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    with contextlib.suppress(asyncio.TimeoutError):  # never long after a kill
        await asyncio.wait_for(process.wait(), _TIMEOUT["exit"])
