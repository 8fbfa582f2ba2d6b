"""Merged views: in-house names first, upstreams after; safe against dependency confusion."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.builders import make_wheel
from tests.fake_upstream import FakeUpstream, refused_url
from tests.integration.proxy_helpers import (
    download,
    filenames,
    hosted_repo,
    page,
    page_json,
    pip_install,
    proxy_repo,
    upload,
    uv_install,
)
from tests.integration.server import Server


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


def test_in_house_name_never_takes_a_higher_upstream_version(
    server: Server, upstream: FakeUpstream, tmp_path: Path
) -> None:
    upstream.add(make_wheel(tmp_path, "corp-tool", "99.0"))  # the attacker's public upload
    proxy = proxy_repo(server, upstream, "--cache-ttl", "0")
    repo = hosted_repo(server, proxy)
    server.cli("repo", "claim", repo, "corp-tool")
    (tmp_path / "ours").mkdir()
    assert (
        upload(server, make_wheel(tmp_path / "ours", "corp-tool", "1.0"), repo).status_code == 200
    )

    document = page_json(server, repo, "corp-tool")
    assert [f["filename"] for f in document["files"]] == ["corp_tool-1.0-py3-none-any.whl"]
    assert document["_wheelyard"] == {"repository": repo}
    missing = download(server, repo, "corp-tool", "corp_tool-99.0-py3-none-any.whl")
    assert missing.status_code == 404
    pip_install(server, repo, tmp_path / "pip", "corp-tool")
    uv_install(server, repo, tmp_path / "uv", "corp-tool")
    for target in ("pip", "uv"):
        assert "1.0" in (tmp_path / target / "corp_tool" / "__init__.py").read_text()
    assert upstream.count("/simple/corp-tool/") == 0  # an in-house name never asks upstream


def test_name_published_upstream_later_stays_in_house(
    server: Server, upstream: FakeUpstream, tmp_path: Path
) -> None:
    proxy = proxy_repo(server, upstream, "--cache-ttl", "0")
    repo = hosted_repo(server, proxy)
    assert upload(server, make_wheel(tmp_path, "late-tool", "1.0"), repo).status_code == 200
    (tmp_path / "public").mkdir()
    upstream.add(make_wheel(tmp_path / "public", "late-tool", "5.0"))
    assert filenames(server, repo, "late-tool") == ["late_tool-1.0-py3-none-any.whl"]
    pip_install(server, repo, tmp_path / "pip", "late-tool")
    assert "1.0" in (tmp_path / "pip" / "late_tool" / "__init__.py").read_text()


def test_first_upload_of_a_public_name_is_refused_until_claimed(
    server: Server, upstream: FakeUpstream, tmp_path: Path
) -> None:
    upstream.add(make_wheel(tmp_path, "pub-lib", "1.0"))
    proxy = proxy_repo(server, upstream)
    repo = hosted_repo(server, proxy)
    (tmp_path / "ours").mkdir()
    refused = upload(server, make_wheel(tmp_path / "ours", "pub-lib", "0.1"), repo)
    assert refused.status_code == 403
    assert proxy in refused.text
    assert f"wheelyard repo claim {repo} pub-lib" in refused.text
    assert filenames(server, repo, "pub-lib") == ["pub_lib-1.0-py3-none-any.whl"]

    server.cli("repo", "claim", repo, "pub-lib")
    assert upload(server, make_wheel(tmp_path / "ours", "pub-lib", "0.1"), repo).status_code == 200
    assert upload(server, make_wheel(tmp_path / "ours", "pub-lib", "0.2"), repo).status_code == 200
    assert filenames(server, repo, "pub-lib") == [
        "pub_lib-0.1-py3-none-any.whl",
        "pub_lib-0.2-py3-none-any.whl",
    ]


def test_upload_fails_closed_when_no_upstream_can_be_asked(server: Server, tmp_path: Path) -> None:
    repo = hosted_repo(server, proxy_repo(server, refused_url()))
    refused = upload(server, make_wheel(tmp_path, "new-lib", "1.0"), repo)
    assert refused.status_code == 502
    assert f"wheelyard repo claim {repo} new-lib" in refused.text
    server.cli("repo", "claim", repo, "new-lib")
    assert upload(server, make_wheel(tmp_path, "new-lib", "1.0"), repo).status_code == 200


def test_upstream_projects_are_served_through_the_merged_view(
    server: Server, upstream: FakeUpstream, tmp_path: Path
) -> None:
    item = upstream.add(make_wheel(tmp_path, "pub-lib", "1.0"))
    proxy = proxy_repo(server, upstream)
    repo = hosted_repo(server, proxy)
    document = page_json(server, repo, "pub-lib")
    assert document["_wheelyard"] == {"repository": proxy}
    assert document["files"][0]["url"] == f"../../files/pub-lib/{item.filename}"
    assert download(server, repo, "pub-lib", item.filename).content == item.data
    with server.client(server.admin) as client:
        listing = client.get(
            f"/{repo}/simple/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
        )
    assert {"name": "pub-lib"} in listing.json()["projects"]


def test_yank_and_unyank_an_upstream_release_in_a_merged_view(
    server: Server, upstream: FakeUpstream, tmp_path: Path
) -> None:
    upstream.add(make_wheel(tmp_path, "pub-lib", "1.0"))
    upstream.add(make_wheel(tmp_path, "pub-lib", "2.0"))
    proxy = proxy_repo(server, upstream)
    repo = hosted_repo(server, proxy)
    server.cli("yank", repo, "pub-lib", "2.0", "--reason", "breaks our build")

    def yanked(name: str) -> dict[str, object]:
        return {f["filename"]: f["yanked"] for f in page_json(server, name, "pub-lib")["files"]}

    assert yanked(repo)["pub_lib-2.0-py3-none-any.whl"] == "breaks our build"
    assert yanked(repo)["pub_lib-1.0-py3-none-any.whl"] is False
    assert yanked(proxy)["pub_lib-2.0-py3-none-any.whl"] is False  # only this view
    pip_install(server, repo, tmp_path / "pip", "pub-lib")
    assert "1.0" in (tmp_path / "pip" / "pub_lib" / "__init__.py").read_text()
    server.cli("unyank", repo, "pub-lib", "2.0")
    assert yanked(repo)["pub_lib-2.0-py3-none-any.whl"] is False


def test_hosted_projects_stay_fast_with_a_dead_upstream(server: Server, tmp_path: Path) -> None:
    import time

    repo = hosted_repo(server, proxy_repo(server, refused_url()))
    server.cli("repo", "claim", repo, "fast-lib")
    assert upload(server, make_wheel(tmp_path, "fast-lib", "1.0"), repo).status_code == 200
    started = time.monotonic()
    for _ in range(5):
        assert page(server, repo, "fast-lib").status_code == 200
        with server.client(server.admin) as client:
            assert client.get(f"/{repo}/simple/").status_code == 200
    assert time.monotonic() - started < 5
    assert page(server, repo, "not-in-house").status_code == 502


def test_import_refuses_a_public_name_until_claimed(
    server: Server, upstream: FakeUpstream, tmp_path: Path
) -> None:
    upstream.add(make_wheel(tmp_path, "pub-import", "1.0"))
    proxy = proxy_repo(server, upstream)
    repo = hosted_repo(server, proxy)
    folder = tmp_path / "ours"
    folder.mkdir()
    ours = make_wheel(folder, "pub-import", "0.1")
    make_wheel(folder, "corp-import", "0.1")

    first = server.cli("import", repo, str(folder), check=False)
    assert first.returncode == 1
    assert "Traceback" not in first.stderr
    assert "imported 1, skipped 0 existing, refused 1" in first.stdout
    refusal = next(line for line in first.stderr.splitlines() if line.startswith("refused"))
    assert refusal.startswith(f"refused {ours.name}: ")
    assert proxy in refusal
    assert f"wheelyard repo claim {repo} pub-import" in refusal
    assert filenames(server, repo, "pub-import") == ["pub_import-1.0-py3-none-any.whl"]

    server.cli("repo", "claim", repo, "pub-import")
    second = server.cli("import", repo, str(folder))
    assert "imported 1, skipped 1 existing, refused 0" in second.stdout
    assert filenames(server, repo, "pub-import") == [ours.name]


def test_import_fails_closed_when_no_upstream_can_be_asked(server: Server, tmp_path: Path) -> None:
    repo = hosted_repo(server, proxy_repo(server, refused_url()))
    wheel = make_wheel(tmp_path, "new-import", "1.0")
    refused = server.cli("import", repo, str(wheel), check=False)
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    assert "imported 0, skipped 0 existing, refused 1" in refused.stdout
    assert f"wheelyard repo claim {repo} new-import" in refused.stderr
    server.cli("repo", "claim", repo, "new-import")
    assert "imported 1, skipped 0" in server.cli("import", repo, str(wheel)).stdout
    assert filenames(server, repo, "new-import") == [wheel.name]
