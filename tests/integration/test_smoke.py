"""The first thing a newcomer does: start, publish with twine, install with pip."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.builders import make_wheel
from tests.integration.server import BIN, Server, twine_command


def test_twine_upload_then_pip_install(server: Server, dists: Path, tmp_path: Path) -> None:
    wheel = make_wheel(dists, "smoke-pkg", "1.0")
    upload = subprocess.run(
        twine_command(server, str(wheel), user="admin", password=server.admin[1]),
        capture_output=True,
        check=False,
        text=True,
        env=server.env,
        timeout=120,
    )
    assert upload.returncode == 0, upload.stdout + upload.stderr
    install = subprocess.run(
        [
            str(BIN / "python"),
            "-m",
            "pip",
            "install",
            "--no-cache-dir",
            "--target",
            str(tmp_path / "target"),
            "--index-url",
            server.index_url(),
            "smoke-pkg==1.0",
        ],
        capture_output=True,
        check=False,
        text=True,
        env=server.env,
        timeout=120,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    assert (tmp_path / "target" / "smoke_pkg" / "__init__.py").is_file()
