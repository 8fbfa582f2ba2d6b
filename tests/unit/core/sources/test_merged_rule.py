"""The merge rule: the first source that has a project serves all of it."""

from __future__ import annotations

import pytest

from tests.fakes import FakeSource, context, entry
from wheelyard.core.errors import FileNotFound, ProjectNotFound
from wheelyard.core.models import InlineBytes
from wheelyard.core.names import ProjectName
from wheelyard.core.sources.merged import MergedSource

INTERNAL = ProjectName("internal-lib")


def _merged(
    hosted: FakeSource, upstream: FakeSource, claimed: set[str] | None = None
) -> MergedSource:
    async def is_claimed(project: ProjectName) -> bool:
        return project in (claimed or set())

    return MergedSource([("main", hosted), ("pypi", upstream)], is_claimed)


async def test_in_house_project_never_blends_upstream_files() -> None:
    hosted = FakeSource({"internal-lib": [entry("internal_lib-1.0-py3-none-any.whl", "1.0")]})
    upstream = FakeSource({"internal-lib": [entry("internal_lib-99.0-py3-none-any.whl", "99.0")]})
    page = await _merged(hosted, upstream).get_project_page(INTERNAL, context())
    assert [file.version for file in page.files] == ["1.0"]
    assert page.origin == "main"
    assert "page internal-lib" not in upstream.calls


async def test_upstream_file_of_in_house_project_is_not_served() -> None:
    hosted = FakeSource({"internal-lib": [entry("internal_lib-1.0-py3-none-any.whl", "1.0")]})
    upstream = FakeSource({"internal-lib": [entry("internal_lib-99.0-py3-none-any.whl", "99.0")]})
    with pytest.raises(FileNotFound):
        await _merged(hosted, upstream).get_file(
            INTERNAL, "internal_lib-99.0-py3-none-any.whl", context()
        )


async def test_claimed_name_is_not_taken_from_upstream_even_without_files() -> None:
    upstream = FakeSource({"internal-lib": [entry("internal_lib-99.0-py3-none-any.whl", "99.0")]})
    merged = _merged(FakeSource(), upstream, claimed={"internal-lib"})
    with pytest.raises(ProjectNotFound):
        await merged.get_project_page(INTERNAL, context())
    assert upstream.calls == []


async def test_other_projects_come_from_the_first_upstream_that_has_them() -> None:
    upstream = FakeSource({"requests": [entry("requests-2.0-py3-none-any.whl", "2.0")]})
    merged = _merged(FakeSource(), upstream)
    page = await merged.get_project_page(ProjectName("requests"), context())
    assert page.origin == "pypi"
    served = await merged.get_file(
        ProjectName("requests"), "requests-2.0-py3-none-any.whl", context()
    )
    assert isinstance(served, InlineBytes)


async def test_listing_merges_names_and_survives_an_unreachable_upstream() -> None:
    hosted = FakeSource({"internal-lib": []})
    upstream = FakeSource({"requests": [], "internal-lib": []})
    merged = _merged(hosted, upstream)
    assert [summary.name for summary in await merged.list_projects(context())] == [
        "internal-lib",
        "requests",
    ]
    upstream.unavailable = True
    assert [summary.name for summary in await merged.list_projects(context())] == ["internal-lib"]
