"""`python -m langchain_jockey.emulator`: serve the Jockey emulator."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import signal
import sys
from pathlib import Path

from langchain_jockey.emulator._config import DEMO_API_KEY, EmulatorConfig
from langchain_jockey.emulator._faults import Fault
from langchain_jockey.emulator._home import EmulatorBusyError, library_dir, stop
from langchain_jockey.emulator._persist import DEFAULT_MAX_DISK
from langchain_jockey.emulator._server import EmulatorServer
from langchain_jockey.emulator._store import STORES

_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_IDLE_CHECK = 1.0  # seconds between looks at how long the emulator has been idle


def _size(text: str) -> int:
    """`20G`, `500M`, `1.5T`, `100000`: bytes (decimal units, an optional B)."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)B?\s*", text.upper())
    if found is None:
        msg = f"{text!r} is not a size: bytes, or a number and K, M, G or T"
        raise argparse.ArgumentTypeError(msg)
    return int(float(found[1]) * _UNITS[found[2]])


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m langchain_jockey.emulator",
        description="Serve a local emulator of the TwelveLabs Jockey responses API.",
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="interface (default: loopback only)"
    )
    p.add_argument(
        "--port", type=int, default=8600, help="port (default 8600; 0: any free)"
    )
    p.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help=f"accepted x-api-key (repeatable; default {DEMO_API_KEY})",
    )
    p.add_argument(
        "--first-token-delay",
        type=float,
        default=0.0,
        metavar="S",
        help="seconds before the first output item, with keepalives",
    )
    p.add_argument(
        "--delta-delay",
        type=float,
        default=0.0,
        metavar="S",
        help="seconds before each delta",
    )
    p.add_argument(
        "--keepalive-interval",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds between keepalives (default 10)",
    )
    p.add_argument(
        "--rate-limit",
        metavar="N/S",
        help="allow N requests per key per S seconds, e.g. 15/86400",
    )
    p.add_argument(
        "--max-body",
        type=int,
        default=EmulatorConfig.max_body,
        metavar="BYTES",
        help="the largest request body; larger gets 413 (default 1 MiB)",
    )
    p.add_argument(
        "--request-timeout",
        type=float,
        default=EmulatorConfig.request_timeout,
        metavar="S",
        help="seconds for a request to arrive whole, else 408 (default 10; "
        "an upload gets 1 s more per MB)",
    )
    p.add_argument(
        "--idle-timeout",
        type=float,
        default=EmulatorConfig.idle_timeout,
        metavar="S",
        help="seconds an idle connection is kept open (default 60)",
    )
    p.add_argument(
        "--max-connections",
        type=int,
        default=EmulatorConfig.max_connections,
        metavar="N",
        help="connections open at once (default 1024, below the open-file limit)",
    )
    p.add_argument(
        "--asset-time",
        type=float,
        default=EmulatorConfig.asset_time,
        metavar="S",
        help="seconds a new asset is processing (default 1)",
    )
    p.add_argument(
        "--index-time",
        type=float,
        default=EmulatorConfig.index_time,
        metavar="S",
        help="seconds a new store item takes to be ready (default 3)",
    )
    p.add_argument(
        "--chunk-size",
        type=int,
        default=EmulatorConfig.chunk_size,
        metavar="BYTES",
        help="the part size of multipart uploads (default 8 MiB)",
    )
    p.add_argument(
        "--fail-processing",
        action="append",
        default=[],
        metavar="PATTERN",
        help="items made from files whose name matches end failed (repeatable)",
    )
    p.add_argument(
        "--session-ttl",
        type=float,
        default=None,
        metavar="S",
        help="seconds a session lives after its last use (default: no expiry)",
    )
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="a server-wide fault, e.g. 'drop_after=5' (repeatable)",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="keep stores, items, assets and uploaded files in DIR across "
        "restarts (default: all in memory)",
    )
    where.add_argument(
        "--library",
        action="store_true",
        help=f"keep them in the keyless tools' library ({library_dir()})",
    )
    p.add_argument(
        "--max-disk",
        type=_size,
        default=DEFAULT_MAX_DISK,
        metavar="SIZE",
        help="with a data dir, the most bytes of uploaded files it holds, e.g. "
        "500M or 1T; past it an upload gets 413 (default 20G)",
    )
    p.add_argument(
        "--idle-exit",
        type=float,
        default=None,
        metavar="S",
        help="stop after S seconds without a request (default: never)",
    )
    p.add_argument(
        "--stop",
        action="store_true",
        help="stop the emulator (the process) serving the data dir (default: the "
        "library) and exit",
    )
    return p


def _stop(root: Path) -> None:
    """`--stop`: stop the emulator serving `root`, and say so."""
    try:
        pid = stop(root)
    except TimeoutError as exc:
        sys.exit(f"{exc}")
    if pid is None:
        print(f"No emulator serves {root}.")
    else:
        print(f"Stopped the emulator (pid {pid}) serving {root}.")


def main(argv: list[str] | None = None) -> None:
    """Run the emulator until interrupted."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        faults = tuple(Fault.parse(f) for f in args.fault)
    except ValueError as exc:
        parser.error(f"--fault: {exc}")
    rate_limit, rate_window = None, 60.0
    if args.rate_limit:
        count, _, window = args.rate_limit.partition("/")
        rate_limit, rate_window = int(count), float(window or 60)
    data_dir = library_dir() if args.library else args.data_dir
    if args.stop:
        _stop(data_dir or library_dir())
        return
    config = EmulatorConfig(
        api_keys=tuple(args.api_keys or (DEMO_API_KEY,)),
        first_token_delay=args.first_token_delay,
        delta_delay=args.delta_delay,
        keepalive_interval=args.keepalive_interval,
        rate_limit=rate_limit,
        rate_window=rate_window,
        faults=faults,
        max_body=args.max_body,
        request_timeout=args.request_timeout,
        idle_timeout=args.idle_timeout,
        max_connections=args.max_connections,
        asset_time=args.asset_time,
        index_time=args.index_time,
        chunk_size=args.chunk_size,
        fail_processing=tuple(args.fail_processing),
        session_ttl=args.session_ttl,
        request_log=0,  # nobody reads it here: keep none
        data_dir=data_dir,
        max_disk=args.max_disk,
    )

    async def serve() -> None:
        server = EmulatorServer(config)
        host, port = await server.start(args.host, args.port)
        shown = f"[{host}]" if ":" in host else host
        print(
            f"Jockey emulator on http://{shown}:{port}/v1.3 "
            f"(x-api-key: {config.api_keys[0]})",
            flush=True,
        )
        for store in STORES.values():
            print(
                f"  knowledge store {store.store_id}: {store.name}, "
                f"{len(store.videos)} videos",
                flush=True,
            )
        if data_dir is not None:
            print(f"  data directory: {data_dir}", flush=True)
        stopping = asyncio.Event()
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not Windows
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
        try:
            while not stopping.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stopping.wait(), _IDLE_CHECK)
                idle = server.idle_for()
                if args.idle_exit is not None and idle >= args.idle_exit:
                    print(f"Stopping: no request for {idle:.0f} s.", flush=True)
                    break
        finally:
            await server.aclose()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        sys.exit(0)
    except EmulatorBusyError as exc:
        sys.exit(f"{exc}")
    except Exception as exc:  # noqa: BLE001 - a port taken, a data dir unusable…
        sys.exit(f"The emulator did not start: {type(exc).__name__}: {exc}")


if __name__ == "__main__":
    main()
