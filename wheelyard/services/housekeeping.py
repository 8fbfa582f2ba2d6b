"""Upkeep every server process runs in the background: the audit retention purge, the
removal of failed-login counts whose window has ended, and of the scratch files a killed
process left behind (an upload being spooled, an upstream file being fetched, a blob
being written).

It runs when the server starts and then once an hour. Several processes sharing one
database may each run it: the purge deletes only what is past the retention, so running
it twice deletes nothing more (and a purge that deleted nothing records nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import stat
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path

from wheelyard.services.audit import SERVER, purge_events
from wheelyard.services.context import ServiceContext
from wheelyard.services.throttling import purge_expired

log = logging.getLogger("wheelyard.housekeeping")
INTERVAL = timedelta(hours=1)
SCRATCH_AGE = timedelta(days=1)
"""Scratch files untouched this long belong to no request: one is written as it is used,
and used for seconds or minutes."""


async def purge_once(context: ServiceContext, retention: timedelta) -> int:
    """Purge audit events older than ``retention`` and ended throttle windows."""
    deleted = await purge_events(context, retention, actor=SERVER)
    await purge_expired(context)
    if deleted:
        log.info("purged %d audit events older than %s", deleted, retention)
    return deleted


def remove_stale_scratch(directories: Sequence[Path], older_than: timedelta) -> int:
    """Remove the files directly in ``directories`` not modified for ``older_than``;
    returns how many. Missing directories and files removed meanwhile are skipped."""
    deadline = time.time() - older_than.total_seconds()
    removed = 0
    for directory in directories:
        try:
            entries = list(directory.iterdir())
        except FileNotFoundError:
            continue
        for entry in entries:
            try:
                status = entry.lstat()
                if stat.S_ISREG(status.st_mode) and status.st_mtime < deadline:
                    entry.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
    return removed


class Housekeeping:
    """The background task: started and stopped by the application's lifespan."""

    def __init__(
        self,
        context: ServiceContext,
        retention: timedelta,
        scratch: Sequence[Path] = (),
        interval: timedelta = INTERVAL,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.context = context
        self.retention = retention
        self.scratch = scratch
        self.interval = interval
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> None:
        """One round of upkeep; a failure (database away, disk error) is logged and retried
        next time, never fatal."""
        try:
            await purge_once(self.context, self.retention)
        except Exception:
            log.warning("audit retention purge failed; retrying later", exc_info=True)
        try:
            removed = await asyncio.to_thread(remove_stale_scratch, self.scratch, SCRATCH_AGE)
        except OSError:
            log.warning("removing stale scratch files failed; retrying later", exc_info=True)
        else:
            if removed:
                log.info("removed %d scratch files left by stopped processes", removed)

    async def _run(self) -> None:
        while True:
            await self.run_once()
            await self._sleep(self.interval.total_seconds())

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
