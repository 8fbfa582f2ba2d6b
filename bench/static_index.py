"""Render a corpus as a static PEP 503 / PEP 691 tree for nginx to serve.

Layout under ``<corpus>/static/``::

    simple/index.html, simple/index.json
    simple/<project>/index.html, simple/<project>/index.json
    files/<wheel>              (hard links to the corpus wheels)

With ``with_metadata`` (under ``<corpus>/static-metadata/``), each wheel's METADATA is
also served as ``files/<wheel>.metadata`` and the pages point at it (PEP 658 / 714), as
Wheelyard's pages do; and the JSON pages are PEP 700's (version 1.1: each file's size,
the project's versions), as PyPI's are.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import shutil
import zipfile
from collections import defaultdict
from pathlib import Path

from corpus import Corpus, WheelFile
from packaging.utils import parse_wheel_filename

STATIC_FORMAT = 2
JSON_META = {"api-version": "1.0"}
PEP_700_META = {"api-version": "1.1"}


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _metadata_attributes(metadata: dict[str, str], wheel: WheelFile) -> str:
    digest = metadata.get(wheel.filename)
    if digest is None:
        return ""
    return f' data-core-metadata="sha256={digest}" data-dist-info-metadata="sha256={digest}"'


def _project_html(project: str, files: list[WheelFile], metadata: dict[str, str]) -> str:
    links = "".join(
        f'<a href="../../files/{html.escape(f.filename)}#sha256={f.sha256}"'
        f"{_metadata_attributes(metadata, f)}>"
        f"{html.escape(f.filename)}</a><br>\n"
        for f in files
    )
    return (
        f"<!DOCTYPE html>\n<html><head><title>Links for {project}</title></head>"
        f"<body><h1>Links for {project}</h1>\n{links}</body></html>\n"
    )


def _project_json(project: str, files: list[WheelFile], metadata: dict[str, str]) -> str:
    entries: list[dict[str, object]] = []
    for f in files:
        entry: dict[str, object] = {
            "filename": f.filename,
            "url": f"../../files/{f.filename}",
            "hashes": {"sha256": f.sha256},
        }
        if metadata:
            entry["size"] = f.size
        if f.filename in metadata:
            entry["core-metadata"] = entry["dist-info-metadata"] = {"sha256": metadata[f.filename]}
        entries.append(entry)
    if not metadata:
        return json.dumps({"meta": JSON_META, "name": project, "files": entries})
    versions = sorted({parse_wheel_filename(f.filename)[1] for f in files})
    document = {"meta": PEP_700_META, "name": project, "versions": [str(v) for v in versions]}
    return json.dumps({**document, "files": entries})


def _root_html(projects: list[str]) -> str:
    links = "".join(f'<a href="{p}/">{p}</a><br>\n' for p in projects)
    head = "<!DOCTYPE html>\n<html><head><title>Simple index</title></head><body>\n"
    return f"{head}{links}</body></html>\n"


def _root_json(projects: list[str]) -> str:
    return json.dumps({"meta": JSON_META, "projects": [{"name": p} for p in projects]})


def _write_simple(
    simple: Path, by_project: dict[str, list[WheelFile]], metadata: dict[str, str]
) -> None:
    projects = sorted(by_project)
    (simple / "index.html").write_text(_root_html(projects))
    (simple / "index.json").write_text(_root_json(projects))
    for project in projects:
        page_dir = simple / project
        page_dir.mkdir()
        files = by_project[project]
        (page_dir / "index.html").write_text(_project_html(project, files, metadata))
        (page_dir / "index.json").write_text(_project_json(project, files, metadata))


def _write_metadata(wheel: WheelFile, files_dir: Path) -> str:
    """Extract the wheel's METADATA next to it; returns its sha256."""
    with zipfile.ZipFile(wheel.path) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        data = archive.read(name)
    (files_dir / f"{wheel.filename}.metadata").write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def build_static_tree(corpus: Corpus, with_metadata: bool = False) -> Path:
    """Return the static tree for ``corpus``, generating it on first use."""
    root = corpus.root / ("static-metadata" if with_metadata else "static")
    marker = root / f".complete-{STATIC_FORMAT}"
    if marker.exists():
        return root
    if root.exists():
        shutil.rmtree(root)
    files_dir = root / "files"
    files_dir.mkdir(parents=True)
    by_project: dict[str, list[WheelFile]] = defaultdict(list)
    metadata: dict[str, str] = {}
    for wheel in corpus.files:
        by_project[wheel.project].append(wheel)
        _link_or_copy(Path(wheel.path), files_dir / wheel.filename)
        if with_metadata:
            metadata[wheel.filename] = _write_metadata(wheel, files_dir)
    simple = root / "simple"
    simple.mkdir()
    _write_simple(simple, by_project, metadata)
    marker.touch()
    return root


def tree_projects(static: Path) -> list[str]:
    """The normalized names of the 30-package tree's projects in a static tree."""
    wheels = (static / "files").glob("tree_*.whl")
    return sorted({path.name.split("-")[0].replace("_", "-") for path in wheels})
