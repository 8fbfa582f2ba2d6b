"""What the application mounts at ``/api/v1``: the management API, built on first use.

FastAPI and pydantic are tens of megabytes of a server process's memory, and most
servers spend their life serving packages, which never touch this API: the API (and
FastAPI with it) is built on its first request, not when the application starts.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from starlette.datastructures import State

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import Receive, Scope, Send

PREFIX = "/api/v1"


class LazyApi:
    """The ASGI app mounted at ``PREFIX``: builds the management API on its first request.

    The API shares ``state`` (the enclosing application's, set by ``create_app``), so its
    routes see the runtime the application's lifespan opens, as if mounted directly.
    """

    def __init__(self) -> None:
        self.state = State()
        self._api: FastAPI | None = None
        self._building = asyncio.Lock()

    def build(self) -> FastAPI:
        """The management API, built (importing FastAPI) on the first call only."""
        if self._api is None:
            from wheelyard.web.api.app import create_api

            api = create_api()
            api.state = self.state
            self._api = api
        return self._api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        api = self._api or await self._build_once()
        await api(scope, receive, send)

    async def _build_once(self) -> FastAPI:
        """Build in a thread (importing FastAPI takes a while), once for concurrent requests:
        package requests go on being served meanwhile."""
        async with self._building:
            if self._api is None:
                await asyncio.to_thread(self.build)
        assert self._api is not None
        return self._api
