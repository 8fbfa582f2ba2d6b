"""``/audit``: the audit trail, for global administrators."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from wheelyard.services.audit import AuditQuery, list_events
from wheelyard.web.api import models
from wheelyard.web.api.access import CallerDependency, require_global_admin
from wheelyard.web.api.responses import ERRORS
from wheelyard.web.deps import runtime_of

router = APIRouter(prefix="/audit", tags=["audit"], responses=ERRORS)


@router.get("", summary="Audit events, oldest first (global admins)")
async def query_audit(
    request: Request,
    caller: CallerDependency,
    since: Annotated[models.Instant | None, Query(description="From this instant on.")] = None,
    user: Annotated[str | None, Query(pattern=models.USER_NAME)] = None,
    project: Annotated[str | None, Query(pattern=models.PROJECT_NAME)] = None,
    action: Annotated[str | None, Query(pattern=r"^[a-z][a-z-]{0,31}$")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[models.AuditEvent]:
    require_global_admin(caller)
    query = AuditQuery(since=since, user=user, project=project, action=action, limit=limit)
    events = await list_events(runtime_of(request).services, query)
    return [models.AuditEvent.model_validate(event) for event in events]
