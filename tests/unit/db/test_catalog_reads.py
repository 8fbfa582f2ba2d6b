"""The catalog read on the event loop (SQLite) answers exactly as through the async
sessions; on PostgreSQL there is no such path."""

from __future__ import annotations

from pathlib import Path

from tests.builders import make_wheel
from wheelyard.core.models import ProjectStatus
from wheelyard.core.names import ProjectName
from wheelyard.db.catalog import SqlCatalog
from wheelyard.services.bootstrap import bootstrap
from wheelyard.services.catalog_admin import set_status, yank
from wheelyard.services.publish import Upload, publish
from wheelyard.services.repositories import claim_project, list_repositories
from wheelyard.wiring import Runtime

PROJECT = ProjectName("pkg")


async def test_reads_on_the_loop_answer_as_the_async_sessions(
    runtime: Runtime, tmp_path: Path
) -> None:
    await bootstrap(runtime.services, tmp_path, "admin-password", "http://127.0.0.1:9/simple/")
    assert (runtime.local is None) == runtime.settings.database_url.startswith("postgresql")
    for version in ("1.0", "2.0"):
        wheel = make_wheel(tmp_path, "pkg", version)
        await publish(runtime.services, Upload("main", wheel.name, wheel))
    main = {repo.name: repo for repo in await list_repositories(runtime.services)}["main"]
    view = await runtime.source_for(main)
    await yank(runtime.services, "main", view, PROJECT, "1.0", "broken")
    await set_status(runtime.services, "main", view, PROJECT, ProjectStatus.DEPRECATED, "old")
    await claim_project(runtime.services, "main", ProjectName("reserved"))

    on_loop = SqlCatalog(runtime.services.sessions, runtime.local)
    through_sessions = SqlCatalog(runtime.services.sessions)
    wheel_name = "pkg-2.0-py3-none-any.whl"
    questions = [
        lambda c: c.list_projects(main.id),
        lambda c: c.get_project_page(main.id, PROJECT),
        lambda c: c.get_project_page(main.id, ProjectName("absent")),
        lambda c: c.find_file(main.id, PROJECT, wheel_name),
        lambda c: c.find_file(main.id, PROJECT, "absent-1.0-py3-none-any.whl"),
        lambda c: c.all_yanks(main.id),
        lambda c: c.yanks_for(main.id, PROJECT),
        lambda c: c.all_statuses(main.id),
        lambda c: c.status_of(main.id, PROJECT),
        lambda c: c.status_of(main.id, ProjectName("absent")),
        lambda c: c.all_claims(main.id),
        lambda c: c.is_claimed(main.id, ProjectName("reserved")),
        lambda c: c.is_claimed(main.id, ProjectName("absent")),
    ]
    answers = [await question(on_loop) for question in questions]
    assert answers == [await question(through_sessions) for question in questions]
    page, stored = answers[1], answers[3]
    assert [entry.filename for entry in page.files] == [
        "pkg-1.0-py3-none-any.whl",
        wheel_name,
    ]
    assert stored is not None
    assert (stored.filename, stored.version, stored.metadata is not None) == (
        wheel_name,
        "2.0",
        True,
    )
    assert answers[6] == {"1": "broken"}
    assert answers[8] == (ProjectStatus.DEPRECATED, "old")
    assert answers[11:] == [True, False]
