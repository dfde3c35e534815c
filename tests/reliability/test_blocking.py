"""The async paths never block the event loop (blockbuster fails any blocking call).

The emulator runs in a separate process here, so only ChatJockey's own code
runs on the watched event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from blockbuster import BlockingError, blockbuster_ctx

from langchain_jockey import ChatJockey, JockeyStreamInterruptedError
from langchain_jockey.emulator import DEMO_API_KEY, DEMO_STORE_ID, FAULT_HEADER, spawn


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    proc, url = spawn("--delta-delay", "0.001")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def test_blockbuster_catches_a_blocking_call() -> None:
    async def sleepy() -> None:
        import time

        time.sleep(0.01)

    with blockbuster_ctx(), pytest.raises(BlockingError):
        asyncio.run(sleepy())


def test_async_paths_do_not_block(base_url) -> None:
    async def main() -> None:
        llm = ChatJockey(
            base_url=base_url, api_key=DEMO_API_KEY, knowledge_store_id=DEMO_STORE_ID
        )
        await llm.ainvoke("Who saves the penalty?")
        chunks = [
            c
            async for c in llm.astream(
                "Who saves the penalty?", include=["intermediate_outputs"]
            )
        ]
        assert chunks[-1].chunk_position == "last"
        broken = ChatJockey(
            base_url=base_url,
            api_key=DEMO_API_KEY,
            knowledge_store_id=DEMO_STORE_ID,
            default_headers={FAULT_HEADER: "drop_after=6"},
        )
        with pytest.raises(JockeyStreamInterruptedError):
            [c async for c in broken.astream("Who saves the penalty?")]
        retried = ChatJockey(
            base_url=base_url,
            api_key=DEMO_API_KEY,
            knowledge_store_id=DEMO_STORE_ID,
            default_headers={FAULT_HEADER: "status=503;times=1;retry_after=0"},
        )
        await retried.ainvoke("Who saves the penalty?")
        await llm.aclose()

    with blockbuster_ctx():
        asyncio.run(main())


async def test_aadd_checks_its_sources_off_the_event_loop(tmp_path) -> None:
    from langchain_jockey import KnowledgeStore
    from langchain_jockey.emulator import sample_video

    proc, base_url = spawn("--asset-time", "0.01", "--index-time", "0.03")
    try:
        store = KnowledgeStore.create(
            "b", base_url=base_url, api_key=DEMO_API_KEY, state_dir=tmp_path / "s"
        )
        folder = tmp_path / "v"
        folder.mkdir()
        for name in ("a.mp4", "b.mp4"):
            sample_video(folder / name)
        store.poll_interval = 0.01
        with blockbuster_ctx():
            results = await store.aadd(folder, metadata={"k": "v"})
        assert [r.status for r in results] == ["ready", "ready"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
