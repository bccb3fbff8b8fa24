"""Fixtures for the artifact store tests.

``s3_server`` runs a real moto S3 server in a subprocess (real HTTP, nothing patched in this
process). ``backend`` / ``store`` run each test against a local directory, memory:// and S3.
"""

from __future__ import annotations

import os
import shutil
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
import fsspec
import pytest

import loopml
from loopml.artifacts import ArtifactStore

BUCKET = "loopml-artifacts-test"  # versioned, so tests can count the uploads to a key
BIG_BUCKET = "loopml-artifacts-big"  # unversioned: big objects are really gone when deleted
CREDENTIALS = {"key": "testing", "secret": "testing"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def python_env() -> dict[str, str]:
    """Environment for child Python processes: they import loopml from where this run does."""
    src = str(Path(loopml.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    storage_options: dict[str, Any]
    client: Any  # boto3 S3 client
    bucket: str = BUCKET
    big_bucket: str = BIG_BUCKET

    def keys(self, bucket: str, prefix: str) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


@dataclass
class Backend:
    """A store plus direct fsspec access to its root, to inspect and tamper with it."""

    name: str
    store: ArtifactStore
    fs: Any
    root: str
    options: dict[str, Any] | None

    def path(self, relative: str) -> str:
        return f"{self.root}/{relative}"

    def write(self, path: str, data: bytes) -> None:
        """Write ``data`` at ``path`` (a full path on ``fs``) behind the store's back."""
        if self.name == "file":
            self.fs.makedirs(self.fs._parent(path), exist_ok=True)
        self.fs.pipe_file(path, data)

    def object_path(self, digest: str) -> str:
        return self.path(f"objects/{digest[:2]}/{digest[2:]}")

    def files_under(self, relative: str) -> list[str]:
        self.fs.invalidate_cache()
        try:
            found: list[str] = self.fs.find(self.path(relative))
        except FileNotFoundError:
            return []
        return sorted(found)

    def object_digests(self) -> list[str]:
        """Digests of every object under objects/, read back from the paths."""
        return ["".join(p.split("/")[-2:]) for p in self.files_under("objects") if "/objects/" in p]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("moto") / "moto-server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"moto server exited early:\n{log_path.read_text()[-3000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"moto server did not start:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.1)
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=CREDENTIALS["key"],
            aws_secret_access_key=CREDENTIALS["secret"],
            region_name="us-east-1",
        )
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        client.create_bucket(Bucket=BIG_BUCKET)
        options = {
            **CREDENTIALS,
            "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        }
        yield S3Server(endpoint, options, client)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(params=["file", "memory", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    options: dict[str, Any] | None = None
    if request.param == "file":
        uri = (tmp_path / "store").as_uri()
    elif request.param == "memory":
        uri = f"memory://loopml-test-{uuid.uuid4().hex}"
    else:
        server: S3Server = request.getfixturevalue("s3_server")
        uri = f"s3://{BUCKET}/{uuid.uuid4().hex}"
        options = server.storage_options
    fs, root = fsspec.core.url_to_fs(uri, **(options or {}))
    yield Backend(request.param, ArtifactStore(uri, storage_options=options), fs, root, options)
    if request.param == "memory" and fs.exists(root):
        fs.rm(root, recursive=True)


@pytest.fixture
def store(backend: Backend) -> ArtifactStore:
    return backend.store


@pytest.fixture
def child_env() -> dict[str, str]:
    return python_env()


@pytest.fixture
def big_tmp_path(tmp_path: Path) -> Iterator[Path]:
    """A tmp_path that is deleted after the test: for big files pytest should not retain."""
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)
