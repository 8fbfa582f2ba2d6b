"""Build the benchmark corpus: small wheels, one large wheel, a dependency tree.

Every wheel is written directly with :mod:`zipfile` and carries a valid
``.dist-info`` (METADATA, WHEEL, RECORD with sha256 digests), so pip, uv and
twine accept it.  A corpus is cached under ``bench/.corpus/n<projects>/`` and
rebuilt only when :data:`CORPUS_FORMAT` changes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

CORPUS_FORMAT = 1
VERSIONS_PER_PROJECT = ("1.0.0", "1.1.0", "2.0.0")
TREE_VERSIONS = ("1.0.0", "1.1.0")
BIG_WHEEL_BYTES = 50 * 1024 * 1024
BIG_PROJECT = "bench-big"
TREE_ROOT = "tree-root"
ZIP_DATE = (2024, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class WheelFile:
    """One wheel of the corpus, as an index would list it."""

    project: str
    filename: str
    sha256: str
    size: int
    path: str


@dataclass(frozen=True)
class Corpus:
    """A built corpus and the directories that hold its wheels."""

    root: Path
    projects_dir: Path
    tree_dir: Path
    big_dir: Path
    files: tuple[WheelFile, ...]
    bench_projects: tuple[str, ...]

    @property
    def wheel_dirs(self) -> list[Path]:
        return [self.projects_dir, self.tree_dir, self.big_dir]

    @property
    def big_wheel(self) -> WheelFile:
        return next(f for f in self.files if f.project == BIG_PROJECT)

    @property
    def project_names(self) -> list[str]:
        return sorted({f.project for f in self.files})


def _record_digest(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _metadata(project: str, version: str, requires: list[str]) -> str:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {project}",
        f"Version: {version}",
        f"Summary: Benchmark package {project}",
        "Requires-Python: >=3.8",
    ]
    lines += [f"Requires-Dist: {req}" for req in requires]
    return "\n".join(lines) + "\n\n"


def _wheel_meta() -> str:
    return (
        "Wheel-Version: 1.0\n"
        "Generator: wheelyard-bench\n"
        "Root-Is-Purelib: true\n"
        "Tag: py3-none-any\n\n"
    )


def wheel_filename(project: str, version: str) -> str:
    """Return the canonical wheel filename for a pure-python wheel."""
    return f"{project.replace('-', '_')}-{version}-py3-none-any.whl"


def build_wheel(
    out_dir: Path,
    project: str,
    version: str,
    requires: list[str] | None = None,
    payload: bytes | None = None,
) -> WheelFile:
    """Write one wheel into ``out_dir`` and return its description."""
    module = project.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    members: list[tuple[str, bytes]] = [
        (f"{module}/__init__.py", f'__version__ = "{version}"\n'.encode()),
    ]
    if payload is not None:
        members.append((f"{module}/payload.bin", payload))
    members += [
        (f"{dist_info}/METADATA", _metadata(project, version, requires or []).encode()),
        (f"{dist_info}/WHEEL", _wheel_meta().encode()),
    ]
    record = "".join(f"{name},{_record_digest(data)},{len(data)}\n" for name, data in members)
    record += f"{dist_info}/RECORD,,\n"
    members.append((f"{dist_info}/RECORD", record.encode()))

    path = out_dir / wheel_filename(project, version)
    compression = zipfile.ZIP_STORED if payload is not None else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = compression
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return describe(path, project)


def describe(path: Path, project: str) -> WheelFile:
    """Hash a wheel on disk and describe it."""
    data = path.read_bytes()
    return WheelFile(
        project=project,
        filename=path.name,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        path=str(path),
    )


def bench_project_name(index: int) -> str:
    return f"bench-proj-{index:05d}"


def tree_layout() -> dict[str, list[str]]:
    """Return the 30-package dependency tree: package -> direct dependencies.

    Four levels (1 + 3 + 8 + 18 packages); some leaves are shared by two
    parents so resolvers meet the same requirement twice.
    """
    level1 = [f"tree-a{i}" for i in range(1, 4)]
    level2 = [f"tree-b{i}" for i in range(1, 9)]
    level3 = [f"tree-c{i:02d}" for i in range(1, 19)]
    deps: dict[str, list[str]] = {TREE_ROOT: list(level1)}
    for i, name in enumerate(level1):
        deps[name] = level2[i * 3 : i * 3 + 3] if i < 2 else level2[6:8]
    for i, name in enumerate(level2):
        children = level3[i * 2 : i * 2 + 2]
        if i >= 6:
            children = level3[12 + (i - 6) * 3 : 15 + (i - 6) * 3]
        deps[name] = children + ([level3[0]] if i == 7 else [])
    for name in level3:
        deps[name] = []
    return deps


def _build_projects(out_dir: Path, count: int) -> list[WheelFile]:
    files = []
    for index in range(1, count + 1):
        project = bench_project_name(index)
        files += [build_wheel(out_dir, project, v) for v in VERSIONS_PER_PROJECT]
    return files


def _build_tree(out_dir: Path) -> list[WheelFile]:
    files = []
    for project, children in tree_layout().items():
        requires = [f"{child}>=1.0" for child in children]
        files += [build_wheel(out_dir, project, v, requires) for v in TREE_VERSIONS]
    return files


def _build_big(out_dir: Path) -> list[WheelFile]:
    return [build_wheel(out_dir, BIG_PROJECT, "1.0.0", payload=os.urandom(BIG_WHEEL_BYTES))]


def _fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def _manifest_path(root: Path) -> Path:
    return root / "manifest.json"


def _load_cached(root: Path, project_count: int) -> Corpus | None:
    manifest = _manifest_path(root)
    if not manifest.exists():
        return None
    data = json.loads(manifest.read_text())
    if data.get("format") != CORPUS_FORMAT or data.get("projects") != project_count:
        return None
    files = tuple(WheelFile(**entry) for entry in data["files"])
    if not all(Path(f.path).exists() for f in files):
        return None
    return _corpus(root, files, project_count)


def _corpus(root: Path, files: tuple[WheelFile, ...], project_count: int) -> Corpus:
    return Corpus(
        root=root,
        projects_dir=root / "projects",
        tree_dir=root / "tree",
        big_dir=root / "big",
        files=files,
        bench_projects=tuple(bench_project_name(i) for i in range(1, project_count + 1)),
    )


def build_corpus(cache_dir: Path, project_count: int) -> Corpus:
    """Return the cached corpus for ``project_count`` projects, building it if needed."""
    root = cache_dir / f"n{project_count}"
    cached = _load_cached(root, project_count)
    if cached is not None:
        return cached
    _fresh_dir(root)
    files = (
        _build_projects(_fresh_dir(root / "projects"), project_count)
        + _build_tree(_fresh_dir(root / "tree"))
        + _build_big(_fresh_dir(root / "big"))
    )
    manifest = {
        "format": CORPUS_FORMAT,
        "projects": project_count,
        "files": [asdict(f) for f in files],
    }
    _manifest_path(root).write_text(json.dumps(manifest))
    return _corpus(root, tuple(files), project_count)


def build_upload_set(out_dir: Path, prefix: str, count: int) -> list[Path]:
    """Write ``count`` fresh single-version wheels named ``<prefix>-NNNN``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    wheels = [build_wheel(out_dir, f"{prefix}-{i:04d}", "1.0.0") for i in range(1, count + 1)]
    return [Path(w.path) for w in wheels]
