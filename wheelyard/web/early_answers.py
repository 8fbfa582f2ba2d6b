"""Answers made from the memos as soon as a request's headers are read, before any ASGI
machinery runs.

A warm installer asks for project pages, metadata and small wheels that are all
memoized; for those, building an ASGI scope, a task, Starlette's middleware and router
and the response messages costs more than the answer itself. The HTTP protocol
(``wheelyard.web.http_protocol``) offers each plain GET or HEAD to ``EarlyAnswers``
first; whatever it does not answer, errors and redirects included, goes through the
application as usual. It needs the catalog generation without waiting (SQLite); where
reading it means waiting on a server (PostgreSQL), the routes' own memo paths answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.datastructures import State

from wheelyard.core.names import ProjectName, normalize
from wheelyard.web.caching import RawAnswer, ServingCache
from wheelyard.web.deps import first_header
from wheelyard.web.files import memoized_whole_file
from wheelyard.web.metrics import observe_request
from wheelyard.web.simple import memoized_page

EARLY_ANSWERS = "wheelyard.early_answers"
"""The key of the ``EarlyAnswers`` in the lifespan state the server hands its protocol."""
PAGE_ROUTE = "/{repo}/simple/{project}/"
FILE_ROUTE = "/{repo}/files/{project}/{filename}"
"""The templates of the routes answered early (``wheelyard.web.app.ROUTES``), as metrics
label them."""

Headers = list[tuple[bytes, bytes]]


class EarlyAnswers:
    """Memoized project pages and small files, answered without the application."""

    def __init__(self, state: State, read_generation: Callable[[], int | None]) -> None:
        self._state = state
        self._read_generation = read_generation

    def answer(
        self, method: str, path: str, headers: Headers, address: str | None
    ) -> RawAnswer | None:
        """The answer to ``method path`` (a decoded path without a query), if its memos
        hold it; None: the application answers."""
        parts = path.split("/")
        if len(parts) != 5 or parts[0] or not all(parts[1:4]) or parts[1] == "simple":
            return None  # "/simple/..." is the default repository's redirect
        started = time.perf_counter()
        current = self._read_generation()
        if current is None:
            return None
        cache: ServingCache = self._state.serving_cache
        generation = cache.observe(current)
        name, kind, project, last = parts[1:]
        if kind == "simple" and not last:
            answer, route = self._page(generation, name, project, headers), PAGE_ROUTE
        elif kind == "files" and last:
            key = (name, ProjectName(normalize(project)), last)
            answer, route = self._file(generation, key, method, headers, address), FILE_ROUTE
        else:
            return None
        if answer is not None:
            observe_request(method, route, answer.status, time.perf_counter() - started)
        return answer

    def _page(self, generation: int, name: str, project: str, headers: Headers) -> RawAnswer | None:
        page = memoized_page(self._state, generation, name, project, headers)
        return page.answer(first_header(headers, b"if-none-match")) if page else None

    def _file(
        self,
        generation: int,
        key: tuple[str, ProjectName, str],
        method: str,
        headers: Headers,
        address: str | None,
    ) -> RawAnswer | None:
        whole = memoized_whole_file(self._state, generation, key, method, headers, address)
        return whole.raw() if whole else None
