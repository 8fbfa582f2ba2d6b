"""Yanks and statuses recorded against a repository's view."""

from __future__ import annotations

import pytest

from tests.fakes import FakeOverlayStore, FakeSource, context, entry
from wheelyard.core.errors import FileNotFound
from wheelyard.core.models import ProjectStatus
from wheelyard.core.names import ProjectName
from wheelyard.core.sources.overlay import ViewOverlaySource

PROJECT = ProjectName("demo")


def _overlay() -> tuple[ViewOverlaySource, FakeOverlayStore]:
    inner = FakeSource(
        {
            "demo": [
                entry("demo-1.0.0-py3-none-any.whl", "1.0.0"),
                entry("demo-2.0-py3-none-any.whl", "2.0"),
            ]
        }
    )
    store = FakeOverlayStore()
    return ViewOverlaySource(inner, store, repository_id=1), store


async def test_yank_matches_versions_as_pep_440_does() -> None:
    view, store = _overlay()
    store.yanks[(1, PROJECT)] = {"1": "broken build"}
    page = await view.get_project_page(PROJECT, context())
    yanked = {file.version: (file.yanked, file.yanked_reason) for file in page.files}
    assert yanked == {"1.0.0": (True, "broken build"), "2.0": (False, None)}


async def test_yank_without_reason_has_no_reason() -> None:
    view, store = _overlay()
    store.yanks[(1, PROJECT)] = {"2": ""}
    page = await view.get_project_page(PROJECT, context())
    assert [(file.yanked, file.yanked_reason) for file in page.files][1] == (True, None)


async def test_yanks_of_another_repository_do_not_apply() -> None:
    view, store = _overlay()
    store.yanks[(2, PROJECT)] = {"2": ""}
    page = await view.get_project_page(PROJECT, context())
    assert not any(file.yanked for file in page.files)


async def test_status_is_shown_and_quarantine_hides_files() -> None:
    view, store = _overlay()
    store.statuses[(1, PROJECT)] = (ProjectStatus.ARCHIVED, "moved")
    page = await view.get_project_page(PROJECT, context())
    assert (page.status, page.status_reason, len(page.files)) == (
        ProjectStatus.ARCHIVED,
        "moved",
        2,
    )
    store.statuses[(1, PROJECT)] = (ProjectStatus.QUARANTINED, "")
    page = await view.get_project_page(PROJECT, context())
    assert (page.status, page.files, page.versions) == (ProjectStatus.QUARANTINED, (), ())
    with pytest.raises(FileNotFound):
        await view.get_file(PROJECT, "demo-2.0-py3-none-any.whl", context())
    with pytest.raises(FileNotFound):
        await view.get_metadata(PROJECT, "demo-2.0-py3-none-any.whl", context())
