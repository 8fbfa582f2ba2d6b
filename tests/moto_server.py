"""A real moto S3 server on 127.0.0.1, started once per session, and a fresh bucket per test.

Import the ``*_fixture`` functions into a test module to make the fixtures available there
(they are registered under the names without the suffix).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

BIN = Path(sys.executable).parent
REGION = "us-east-1"
ACCESS_KEY_ID = "testing"
# Distinctive, so tests can assert that it never appears in a log or an error message.
SECRET_ACCESS_KEY = "wheelyard-test-secret-0f3c9a"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
    "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
    "AWS_DEFAULT_REGION": REGION,
    # Keep ~/.aws out of the tests.
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
_CLEARED = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")


@dataclass(frozen=True)
class MotoServer:
    """A running moto server: its endpoint URL and one shared client to inspect it.

    Clients are thread-safe and slow to build (~0.25 s), so tests share this one.
    """

    endpoint_url: str
    client: Any

    def create_bucket(self) -> str:
        name = f"wheelyard-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=name)
        return name


def _client(endpoint_url: str) -> Any:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        region_name=REGION,
        config=Config(s3={"addressing_style": "path"}),
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            httpx.get(url + "/moto-api/", timeout=1)
        except httpx.TransportError:
            time.sleep(0.05)
            continue
        return
    process.kill()
    process.wait()
    raise AssertionError(f"moto server did not start:\n{log.read_text()}")


@pytest.fixture(name="aws_environment", scope="session")
def aws_environment_fixture() -> Iterator[dict[str, str]]:
    """Test credentials in this process's environment, restored afterwards."""
    saved = {key: os.environ.get(key) for key in (*AWS_ENV, *_CLEARED)}
    for key in _CLEARED:
        os.environ.pop(key, None)
    os.environ.update(AWS_ENV)
    yield dict(AWS_ENV)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(name="moto_server", scope="session")
def moto_server_fixture(
    aws_environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MotoServer]:
    """``moto_server`` from the venv, as a subprocess on a free loopback port."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    command = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    _wait_until_up(url, process, log)
    client = _client(url)
    try:
        yield MotoServer(url, client)
    finally:
        client.close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(name="s3_bucket")
def s3_bucket_fixture(moto_server: MotoServer) -> str:
    """A new, empty bucket on the moto server."""
    return moto_server.create_bucket()
