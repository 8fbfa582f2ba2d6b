"""Download events, written in batches off the request path.

A download is the most frequent audited event: writing each in its own transaction
would put a database commit in front of every file an installer fetches. Events are
queued in memory and written together every ``interval`` seconds and when the server
stops; a process killed with SIGKILL loses at most that interval's download events
(uploads, yanks, deletions, logins and token changes are written in their own
transaction, never buffered).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from wheelyard.services.audit import AuditEvent, add_events
from wheelyard.services.context import ServiceContext

log = logging.getLogger("wheelyard.audit")


class AuditBuffer:
    """Collects audit events and writes them in one transaction per interval."""

    def __init__(self, context: ServiceContext, interval: float = 0.5) -> None:
        self.context = context
        self.interval = interval
        self._pending: list[tuple[AuditEvent, datetime]] = []
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def add(self, event: AuditEvent) -> None:
        """Queue ``event``, stamped now."""
        self._pending.append((event, self.context.clock.now()))

    async def flush(self) -> None:
        """Write every queued event."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        try:
            async with self.context.sessions.begin() as session:
                await add_events(session, pending)
        except Exception:
            log.exception("could not write %d audit events; will try again", len(pending))
            self._pending[:0] = pending

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._stopping.wait()
            await self.flush()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop the writer and write what is left. A write under way is let finish: were
        it cancelled, the events it had taken would be lost."""
        self._stopping.set()
        if self._task is not None:
            await self._task
        await self.flush()
