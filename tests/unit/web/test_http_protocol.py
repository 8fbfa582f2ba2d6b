"""Writes through the coalescing transport: joined, in order, and never left behind."""

from __future__ import annotations

import asyncio

from wheelyard.web.http_protocol import HOLD_LIMIT, JOIN_LIMIT, CoalescingTransport


class RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str) -> str:
        return f"extra {name}"


def coalescing() -> tuple[CoalescingTransport, RecordingTransport]:
    inner = RecordingTransport()
    return CoalescingTransport(inner, asyncio.get_running_loop()), inner  # type: ignore[arg-type]


async def test_a_head_and_a_small_body_leave_in_one_write() -> None:
    transport, inner = coalescing()
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert inner.writes == []
    assert transport.get_write_buffer_size() == 19
    transport.write(memoryview(b"body"))
    assert inner.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    await asyncio.sleep(0)
    assert inner.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]


async def test_a_lone_write_leaves_at_the_end_of_the_loop_step() -> None:
    transport, inner = coalescing()
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    await asyncio.sleep(0)
    assert inner.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    transport.write(b"next")
    transport.close()  # what is held leaves before the connection closes
    assert inner.writes[-1] == b"next"
    assert inner.closed


async def test_large_writes_are_not_held_or_copied() -> None:
    transport, inner = coalescing()
    large = b"x" * (HOLD_LIMIT + 1)
    transport.write(large)
    assert inner.writes == [large]
    transport.write(b"head")
    huge = b"y" * (JOIN_LIMIT + 1)
    transport.write(huge)
    assert inner.writes == [large, b"head", huge]


async def test_abort_drops_what_is_held_and_the_rest_is_delegated() -> None:
    transport, inner = coalescing()
    transport.write(b"head")
    transport.abort()
    await asyncio.sleep(0)
    assert inner.writes == []
    assert inner.aborted
    assert transport.get_extra_info("peername") == "extra peername"
