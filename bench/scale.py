"""Upload time and page time as one project grows to 1,000 versions.

Usage::

    /work/main/.venv/bin/python bench/scale.py [--versions 1000] [--samples 10]

Starts ``wheelyard serve`` on 127.0.0.1 with a fresh data directory, imports versions of
one project in steps, and at each step times (median of ``--samples``) the upload of one
more wheel through the legacy upload API with HTTP Basic credentials, a cold project
page (just after that upload) and a warm one. Prints a markdown table; the ratio
between the last and first step shows whether upload time grows with the number of
files already there.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.builders import make_wheel  # noqa: E402

BIN = Path(sys.executable).parent
PASSWORD = "bench-password"
PROJECT = "scale-demo"


def start_server(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    env = dict(os.environ, WHEELYARD_ADMIN_PASSWORD=PASSWORD)
    command = [str(BIN / "wheelyard"), "serve", "--port", "0", "--data-dir", str(data_dir)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    url = line.split("listening on", 1)[1].strip().rstrip("/")
    for _ in range(200):
        try:
            if httpx.get(url + "/_ready").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.05)
    return process, url


def import_versions(data_dir: Path, wheels: Path, start: int, stop: int) -> None:
    folder = wheels / f"batch-{start}"
    folder.mkdir()
    for index in range(start, stop):
        make_wheel(folder, PROJECT, f"0.{index}")
    subprocess.run(
        [str(BIN / "wheelyard"), "import", "main", str(folder), "--data-dir", str(data_dir)],
        check=True,
        capture_output=True,
        env=dict(os.environ, WHEELYARD_ADMIN_PASSWORD=PASSWORD),
    )


def upload_one(client: httpx.Client, wheel: Path, version: str) -> float:
    started = time.perf_counter()
    response = client.post(
        "/main/",
        data={":action": "file_upload", "name": PROJECT, "version": version},
        files={"content": (wheel.name, wheel.read_bytes(), "application/octet-stream")},
    )
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed


def page_time(client: httpx.Client) -> float:
    started = time.perf_counter()
    client.get(f"/main/simple/{PROJECT}/", headers={"Accept": "text/html"}).raise_for_status()
    return time.perf_counter() - started


def measure_step(client: httpx.Client, wheels: Path, step: int, samples: int) -> dict[str, float]:
    uploads, cold, warm = [], [], []
    for sample in range(samples):
        version = f"1000{step}.{sample}"
        wheel = make_wheel(wheels, PROJECT, version)
        uploads.append(upload_one(client, wheel, version))
        cold.append(page_time(client))
        warm.append(page_time(client))
    return {
        "upload": statistics.median(uploads),
        "cold_page": statistics.median(cold),
        "warm_page": statistics.median(warm),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=10)
    options = parser.parse_args()
    steps = sorted({10, options.versions // 5, options.versions})
    with tempfile.TemporaryDirectory() as temporary:
        data_dir, wheels = Path(temporary) / "data", Path(temporary) / "wheels"
        wheels.mkdir()
        process, url = start_server(data_dir)
        rows: list[tuple[int, dict[str, float]]] = []
        try:
            with httpx.Client(base_url=url, auth=("admin", PASSWORD), timeout=60) as client:
                imported = 0
                for step in steps:
                    import_versions(data_dir, wheels, imported, step)
                    imported = step
                    rows.append((step, measure_step(client, wheels, step, options.samples)))
        finally:
            process.terminate()
            process.wait()
    print("| versions | upload one more (ms) | cold page (ms) | warm page (ms) |")
    print("|---:|---:|---:|---:|")
    for step, row in rows:
        print(
            f"| {step} | {row['upload'] * 1000:.1f} | {row['cold_page'] * 1000:.1f} "
            f"| {row['warm_page'] * 1000:.2f} |"
        )
    ratio = rows[-1][1]["upload"] / rows[0][1]["upload"]
    print(f"\nupload time at {steps[-1]} versions / at {steps[0]}: {ratio:.2f}x")


if __name__ == "__main__":
    main()
