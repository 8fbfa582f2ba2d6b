"""Upkeep every server process runs in the background: the audit retention purge and the
removal of failed-login counts whose window has ended.

It runs when the server starts and then once an hour. Several processes sharing one
database may each run it: the purge deletes only what is past the retention, so running
it twice deletes nothing more (and a purge that deleted nothing records nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from wheelyard.services.audit import SERVER, purge_events
from wheelyard.services.context import ServiceContext
from wheelyard.services.throttling import purge_expired

log = logging.getLogger("wheelyard.housekeeping")
INTERVAL = timedelta(hours=1)


async def purge_once(context: ServiceContext, retention: timedelta) -> int:
    """Purge audit events older than ``retention`` and ended throttle windows."""
    deleted = await purge_events(context, retention, actor=SERVER)
    await purge_expired(context)
    if deleted:
        log.info("purged %d audit events older than %s", deleted, retention)
    return deleted


class Housekeeping:
    """The background task: started and stopped by the application's lifespan."""

    def __init__(
        self,
        context: ServiceContext,
        retention: timedelta,
        interval: timedelta = INTERVAL,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.context = context
        self.retention = retention
        self.interval = interval
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            try:
                await purge_once(self.context, self.retention)
            except Exception:  # a failed purge (database away) is retried next time, never fatal
                log.warning("audit retention purge failed; retrying later", exc_info=True)
            await self._sleep(self.interval.total_seconds())

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
