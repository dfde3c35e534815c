"""A local Jockey emulator: what moto is for AWS, for TwelveLabs Jockey.

It speaks the `POST /v1.3/responses` protocol (streaming and not) from a
built-in demo knowledge store of invented videos, keeps sessions, returns
schema-valid JSON for `text.format`, validates requests like the API and
injects faults on request. It also keeps knowledge stores, assets and uploads
(`KnowledgeStore.add` works against it; `sample_video` makes small valid MP4s to
add). Use it in-process::

    from langchain_jockey.emulator import Emulator

    with Emulator() as emu:
        llm = ChatJockey(**emu.chat_kwargs())

or as a server: `python -m langchain_jockey.emulator --port 8600`. With a data
directory (`data_dir=`, `--data-dir`) its stores, items, assets and uploaded
files survive a restart; one emulator serves a directory at a time. The keyless
tools share one, the library (`library_dir()`, served by `serve_library()`).
Sessions can
be ended under a conversation, as a restart of the real server would:
`session_ttl` (`--session-ttl`), `Emulator.expire_sessions()`, or
`POST /emulator/sessions/expire` with an accepted key. For agents
run offline, `ScriptedPlanner` is a tool-calling model that follows a script.
Importing `langchain_jockey` does not import this package.

Citations carry a `thumbnail_url` and an `hls_url` as the API's do: signed
URLs (`MEDIA_PATH`, no key, an hour) of a JPEG of the moment and an HLS
playlist of the video, made with ffmpeg (`imageio-ffmpeg`) when first asked
for: from the uploaded file (kept with a data directory), or, for a demo
video, from a test pattern as long as it. Without ffmpeg they are `null`.

Real Jockey watches the video; the emulator reads words. A structured answer
(`text.format`) fills each field from the moments the answer cites, by the
field's name, description and type (`_schema.py`, `_reader.py`): a string gets
the shortest phrase that answers it (a name, a time phrase, a place, a reason),
a number one the moment writes in digits or words next to the field's word,
a boolean whether the moment says it, an enum the option the moment names,
`start_sec` / `end_sec` the moment's times. What the moment does not say is
`null` where the schema allows it, else the type's empty value, and the
answer says so (a `summary` field, the commentary). An added video is read
from its title, description and transcript; with only a file name, its title.
"""

from langchain_jockey._media import sample_video
from langchain_jockey.emulator._clips import PATH as MEDIA_PATH
from langchain_jockey.emulator._config import DEMO_API_KEY, EmulatorConfig
from langchain_jockey.emulator._faults import FAULT_HEADER, Fault
from langchain_jockey.emulator._home import (
    EmulatorBusyError,
    Served,
    library_dir,
    serve_library,
)
from langchain_jockey.emulator._home import stop as stop_library
from langchain_jockey.emulator._planner import ScriptedPlanner
from langchain_jockey.emulator._runner import Emulator, spawn
from langchain_jockey.emulator._server import (
    LENGTH_HEADER,
    EmulatorServer,
    ReceivedRequest,
)
from langchain_jockey.emulator._store import DEMO_STORE_ID, KITCHEN_STORE_ID, STORES

__all__ = [
    "DEMO_API_KEY",
    "DEMO_STORE_ID",
    "FAULT_HEADER",
    "KITCHEN_STORE_ID",
    "LENGTH_HEADER",
    "MEDIA_PATH",
    "STORES",
    "Emulator",
    "EmulatorBusyError",
    "EmulatorConfig",
    "EmulatorServer",
    "Fault",
    "ReceivedRequest",
    "ScriptedPlanner",
    "Served",
    "library_dir",
    "sample_video",
    "serve_library",
    "spawn",
    "stop_library",
]
