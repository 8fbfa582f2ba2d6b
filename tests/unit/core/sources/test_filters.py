"""FilteredSource: allow/deny patterns, min-age, snapshot and exempt; failing closed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.fakes import FakeSource, context, entry
from wheelyard.core.errors import FileNotFound, InvalidInput, ProjectNotFound
from wheelyard.core.models import RepositoryConfig, RepositoryKind
from wheelyard.core.names import ProjectName
from wheelyard.core.sources.filters import FilteredSource, FilterRules, Pattern

NOW = context().now
OLD = NOW - timedelta(days=30)
NEW = NOW - timedelta(hours=1)


def _source() -> FakeSource:
    return FakeSource(
        {
            "django": [
                entry("django-4.2-py3-none-any.whl", "4.2", upload_time=OLD),
                entry("django-5.0-py3-none-any.whl", "5.0", upload_time=NEW),
            ],
            "internal-tools": [entry("internal_tools-1.0.tar.gz", "1.0", upload_time=OLD)],
            "urllib3": [
                entry("urllib3-2.5.1-py3-none-any.whl", "2.5.1", upload_time=NEW),
                entry("urllib3-2.5.0-py3-none-any.whl", "2.5.0", upload_time=None),
            ],
        }
    )


def _filtered(**options: object) -> FilteredSource:
    config = RepositoryConfig(id=1, name="pypi", kind=RepositoryKind.PROXY, **options)  # type: ignore[arg-type]
    return FilteredSource(_source(), FilterRules.of(config))


async def _files(source: FilteredSource, project: str) -> list[str]:
    page = await source.get_project_page(ProjectName(project), context())
    return [file.filename for file in page.files]


async def test_deny_by_name_hides_the_project_everywhere() -> None:
    source = _filtered(deny=("internal-*",))
    assert [s.name for s in await source.list_projects(context())] == ["django", "urllib3"]
    with pytest.raises(ProjectNotFound):
        await source.get_project_page(ProjectName("internal-tools"), context())
    with pytest.raises(ProjectNotFound):
        await source.get_file(ProjectName("internal-tools"), "internal_tools-1.0.tar.gz", context())


async def test_deny_with_a_specifier_hides_matching_files_only() -> None:
    source = _filtered(deny=("Django>=5",))
    assert "django" in [s.name for s in await source.list_projects(context())]
    assert await _files(source, "django") == ["django-4.2-py3-none-any.whl"]
    page = await source.get_project_page(ProjectName("django"), context())
    assert page.versions == ("4.2",)
    with pytest.raises(FileNotFound):
        await source.get_file(ProjectName("django"), "django-5.0-py3-none-any.whl", context())
    with pytest.raises(FileNotFound):
        await source.get_metadata(ProjectName("django"), "django-5.0-py3-none-any.whl", context())


async def test_allow_lists_only_matching_names_and_versions() -> None:
    source = _filtered(allow=("django<5", "urllib3"))
    assert [s.name for s in await source.list_projects(context())] == ["django", "urllib3"]
    assert await _files(source, "django") == ["django-4.2-py3-none-any.whl"]
    assert len(await _files(source, "urllib3")) == 2


async def test_min_age_hides_new_files_and_files_of_unknown_age() -> None:
    source = _filtered(min_age=7 * 86400)
    assert await _files(source, "django") == ["django-4.2-py3-none-any.whl"]
    assert await _files(source, "urllib3") == []  # one too new, one of unknown age


async def test_snapshot_hides_later_uploads() -> None:
    source = _filtered(snapshot=NOW - timedelta(days=2))
    assert await _files(source, "django") == ["django-4.2-py3-none-any.whl"]


async def test_exempt_lets_named_releases_through_age_filters() -> None:
    source = _filtered(min_age=7 * 86400, snapshot=OLD, exempt=("urllib3==2.5.1",))
    assert await _files(source, "urllib3") == ["urllib3-2.5.1-py3-none-any.whl"]
    exempt_all = _filtered(min_age=7 * 86400, exempt=("urllib3",))
    assert len(await _files(exempt_all, "urllib3")) == 2


def test_patterns_parse_and_refuse_nonsense() -> None:
    assert Pattern.parse("Internal_Tools*") == Pattern("internal-tools*")
    assert Pattern.parse("django<5").covers("django", "4.2")
    assert not Pattern.parse("django<5").covers("django", "5.0")
    assert not Pattern.parse("django<5").covers("django", "not-a-version")
    with pytest.raises(InvalidInput):
        Pattern.parse("django<<5")
    with pytest.raises(InvalidInput):
        Pattern.parse("==1.0")


def test_no_rules_means_no_work() -> None:
    config = RepositoryConfig(id=1, name="pypi", kind=RepositoryKind.PROXY)
    assert FilterRules.of(config).empty
    assert datetime.now(UTC) > NOW - timedelta(days=1000)
