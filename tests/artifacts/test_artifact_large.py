"""Multi-gigabyte artifacts stream through a fixed buffer: memory stays flat.

Each round trip (put_file, then download_file, which verifies) runs in a child process that
reports its own peak resident set size (``VmHWM``). ``ru_maxrss`` from ``os.wait4`` is not
used: it survives exec, so a child forked from a pytest process that has loaded torch and
scikit-learn would report the parent's size, not its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.artifacts.conftest import S3Server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(os, "wait4"), reason="needs os.wait4 (POSIX)"),
]

MIB = 1024 * 1024
GIB = 1024 * MIB
RSS_LIMIT_KIB = 300 * 1024
CHILD = Path(__file__).with_name("_artifact_child.py")


def write_source(path: Path, size: int) -> str:
    """Write ``size`` bytes quickly: one random 8 MiB block, stamped with its index each time
    (so misordered or repeated chunks change the digest). Returns the SHA-256."""
    block = bytearray(os.urandom(8 * MIB))
    hasher = hashlib.sha256()
    with open(path, "wb") as out:
        for index in range(size // len(block)):
            block[:8] = index.to_bytes(8, "big")
            out.write(block)
            hasher.update(block)
    return hasher.hexdigest()


def run_round_trip(
    root_uri: str, options: dict[str, object] | None, source: Path, dest: Path, env: dict[str, str]
) -> tuple[dict[str, float], int]:
    """Run the child; return its JSON report and its peak RSS in KiB."""
    process = subprocess.Popen(
        [sys.executable, str(CHILD), "roundtrip", root_uri, json.dumps(options), str(source),
         str(dest)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )  # fmt: skip
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    assert process.returncode == 0, output
    report: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    del usage  # ru_maxrss would include the forked parent's pages; the child reports its own
    return report, int(report["peak_kib"])


def check(report: dict[str, float], peak_kib: int, digest: str, size: int, dest: Path) -> None:
    print(
        f"\nround trip of {size / GIB:.2f} GiB: put {report['put_seconds']} s, download "
        f"{report['download_seconds']} s, peak RSS {peak_kib / 1024:.0f} MiB"
    )
    assert report["digest"] == digest
    assert report["size"] == size == dest.stat().st_size
    assert peak_kib < RSS_LIMIT_KIB, f"peak RSS {peak_kib / 1024:.0f} MiB"


def test_two_gib_file_round_trip_on_local_disk(tmp_path: Path, child_env: dict[str, str]) -> None:
    size = 2 * GIB
    source, dest, root = tmp_path / "source.bin", tmp_path / "dest.bin", tmp_path / "store"
    try:
        digest = write_source(source, size)
        started = time.monotonic()
        report, peak_kib = run_round_trip(root.as_uri(), None, source, dest, child_env)
        print(f"\nlocal 2 GiB child took {time.monotonic() - started:.1f} s")
        check(report, peak_kib, digest, size, dest)
    finally:  # 6 GiB of files: do not leave them to pytest's tmp_path retention
        source.unlink(missing_ok=True)
        dest.unlink(missing_ok=True)
        shutil.rmtree(root, ignore_errors=True)


def test_two_gib_file_round_trip_on_s3(
    s3_server: S3Server, tmp_path: Path, child_env: dict[str, str]
) -> None:
    size = 2 * GIB
    prefix = uuid.uuid4().hex
    root = f"s3://{s3_server.big_bucket}/{prefix}"
    source, dest = tmp_path / "source.bin", tmp_path / "dest.bin"
    # moto answers CompleteMultipartUpload only once it has copied the whole object, which
    # takes minutes for 2 GiB on a slow box (real S3 keeps the connection alive meanwhile).
    # With botocore's default 60 s read timeout the client would retry while the first call
    # still runs: two copies at once, and the server was killed for lack of memory.
    options = {**s3_server.storage_options, "config_kwargs": {"read_timeout": 900}}
    try:
        digest = write_source(source, size)
        started = time.monotonic()
        report, peak_kib = run_round_trip(root, options, source, dest, child_env)
        print(f"\ns3 2 GiB child took {time.monotonic() - started:.1f} s")
        check(report, peak_kib, digest, size, dest)
    finally:
        source.unlink(missing_ok=True)
        dest.unlink(missing_ok=True)
        for key in s3_server.keys(s3_server.big_bucket, prefix):  # free moto's memory
            s3_server.client.delete_object(Bucket=s3_server.big_bucket, Key=key)
