"""Atomic writes and verified reads: interrupted writers leave nothing, damage is detected."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import loopml.artifacts.cas as cas_module
from loopml.artifacts import ArtifactStore, Manifest, ManifestEntry
from loopml.errors import CorruptArtifact, InvalidArgument

if TYPE_CHECKING:
    from tests.artifacts.conftest import Backend, S3Server

MIB = 1024 * 1024
CHILD = Path(__file__).with_name("_artifact_child.py")


class SourceFailure(RuntimeError):
    """What the failing sources raise: stands for a dropped connection or a crashing producer."""


class FailingStream(io.RawIOBase):
    """Gives ``good_chunks`` full chunks of data, then fails."""

    def __init__(self, good_chunks: int) -> None:
        super().__init__()
        self._left = good_chunks

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._left == 0:
            raise SourceFailure("the source failed mid-stream")
        self._left -= 1
        view = memoryview(buffer).cast("B")
        view[:] = bytes([self._left % 256]) * len(view)
        return len(view)


def assert_no_partial_objects(backend: Backend, allowed: set[str]) -> None:
    """objects/ holds exactly ``allowed``; each verifies; tmp/ is clean; no open S3 uploads."""
    assert set(backend.object_digests()) == allowed
    for digest in allowed:
        backend.store.verify(digest)
    assert backend.files_under("tmp") == []
    if backend.name == "s3":
        bucket, prefix = backend.root.split("/", 1)
        uploads = backend.fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix=prefix)
        assert uploads.get("Uploads", []) == []  # aborted, not left behind


# ---------------------------------------------------------------- interrupted writes


def test_stream_failing_mid_write_leaves_nothing(backend: Backend) -> None:
    kept = backend.store.put_bytes(b"stored before the failure", name="kept")
    # 3 chunks of 8 MiB: on S3 more than one 16 MiB part, so a multipart upload is under way
    with pytest.raises(SourceFailure):
        backend.store.put_stream(FailingStream(good_chunks=3), name="broken.bin")
    assert_no_partial_objects(backend, {kept.digest})


def test_file_failing_mid_upload_leaves_nothing(
    backend: Backend, big_tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """put_file knows the digest up front (S3 uploads straight to the final key)."""
    source = big_tmp_path / "big.bin"
    source.write_bytes(os.urandom(40 * MIB))
    real_read_chunks = cas_module.read_chunks

    def failing_read_chunks(stream: Any, chunk_size: int = 8 * MIB) -> Iterator[memoryview]:
        for number, chunk in enumerate(real_read_chunks(stream, chunk_size)):
            if number == 3:
                raise SourceFailure("disk read failed")
            yield chunk

    monkeypatch.setattr(cas_module, "read_chunks", failing_read_chunks)
    with pytest.raises(SourceFailure):
        backend.store.put_file(source)
    assert_no_partial_objects(backend, set())


def test_file_changed_between_hash_and_upload_is_not_stored(
    backend: Backend, big_tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = big_tmp_path / "changing.bin"
    source.write_bytes(os.urandom(20 * MIB))
    stale = hashlib.sha256(b"what the file held when it was hashed").hexdigest()
    monkeypatch.setattr(cas_module, "hash_file", lambda path: (stale, 20 * MIB))
    with pytest.raises(InvalidArgument, match="changed while it was being stored"):
        backend.store.put_file(source)
    assert_no_partial_objects(backend, set())


def test_keyboard_interrupt_mid_stream_leaves_nothing(backend: Backend) -> None:
    class Interrupted(FailingStream):
        def readinto(self, buffer: Any) -> int:
            if self._left == 0:
                raise KeyboardInterrupt
            return super().readinto(buffer)

    with pytest.raises(KeyboardInterrupt):
        backend.store.put_stream(Interrupted(good_chunks=1), name="interrupted.bin")
    assert_no_partial_objects(backend, set())


# ---------------------------------------------------------------- corruption


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[:-1] + bytes([data[-1] ^ 1]), id="bit-flip"),
        pytest.param(lambda data: data[:100], id="truncated"),
        pytest.param(lambda data: data + b"extra", id="extended"),
        pytest.param(lambda data: b"", id="emptied"),
    ],
)
def test_damage_at_rest_is_detected(backend: Backend, tmp_path: Path, damage: Any) -> None:
    data = os.urandom(1000)
    ref = backend.store.put_bytes(data, name="victim.bin")
    backend.write(backend.object_path(ref.digest), damage(data))

    with pytest.raises(CorruptArtifact) as error:
        backend.store.read_bytes(ref.digest)
    message = str(error.value)
    assert ref.digest in message and backend.store.root_uri in message
    assert error.value.details["digest"] == ref.digest

    with pytest.raises(CorruptArtifact):
        backend.store.verify(ref.digest)
    with pytest.raises(CorruptArtifact), backend.store.open(ref.digest) as reader:
        while reader.read(300):
            pass

    dest_dir = tmp_path / "downloads"
    dest_dir.mkdir()
    (dest_dir / "previous.bin").write_bytes(b"previous version")
    with pytest.raises(CorruptArtifact):
        backend.store.download_file(ref.digest, dest_dir / "victim.bin")
    with pytest.raises(CorruptArtifact):
        backend.store.download_file(ref.digest, dest_dir / "previous.bin")
    # nothing landed: no new file, no temp file, and the old file is untouched
    assert [p.name for p in dest_dir.iterdir()] == ["previous.bin"]
    assert (dest_dir / "previous.bin").read_bytes() == b"previous version"


def test_damaged_file_in_directory_is_detected(backend: Backend, tmp_path: Path) -> None:
    source = tmp_path / "tree"
    (source / "a").mkdir(parents=True)
    (source / "a" / "good.txt").write_bytes(b"good")
    (source / "b.txt").write_bytes(b"will be damaged")
    ref = backend.store.put_directory(source)
    bad = hashlib.sha256(b"will be damaged").hexdigest()
    backend.write(backend.object_path(bad), b"was damaged ...")

    dest = tmp_path / "restored"
    with pytest.raises(CorruptArtifact, match=bad):
        backend.store.download_directory(ref.digest, dest)
    assert not (dest / "b.txt").exists()
    assert sorted(p.name for p in dest.rglob("*")) == ["a", "good.txt"]


def test_damaged_manifest_is_detected(backend: Backend, tmp_path: Path) -> None:
    source = tmp_path / "tree"
    source.mkdir()
    (source / "x.txt").write_bytes(b"x")
    ref = backend.store.put_directory(source)
    backend.write(backend.object_path(ref.digest), b'{"format_version":1,"files":[]}')
    with pytest.raises(CorruptArtifact, match=ref.digest):
        backend.store.read_manifest(ref.digest)
    with pytest.raises(CorruptArtifact):
        backend.store.download_directory(ref.digest, tmp_path / "restored")


def test_size_disagreeing_with_manifest_is_detected(backend: Backend, tmp_path: Path) -> None:
    content = backend.store.put_bytes(b"twelve bytes", name="c")
    wrong = Manifest((ManifestEntry("c.txt", content.digest, 99),))
    manifest = backend.store.put_bytes(wrong.to_bytes(), name="manifest")
    with pytest.raises(CorruptArtifact, match="records 99"):
        backend.store.download_directory(manifest.digest, tmp_path / "restored")
    assert not (tmp_path / "restored" / "c.txt").exists()


def test_reader_closed_early_checks_nothing(backend: Backend) -> None:
    ref = backend.store.put_bytes(b"0123456789" * 1000, name="ten")
    with backend.store.open(ref.digest) as reader:
        assert reader.read(5) == b"01234"
        assert not reader.verified
    assert reader.closed


# ---------------------------------------------------------------- killed writers


def _wait_for_line(process: subprocess.Popen[str], expected: str, timeout: float) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.strip() == expected:
            return
        if not line and process.poll() is not None:
            break
    process.kill()
    pytest.fail(f"child never printed {expected!r}: {process.stdout.read()}")


def _kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


@pytest.mark.parametrize("mode", ["stream", "file"])
def test_sigkill_during_local_write_leaves_no_partial_object(
    mode: str, big_tmp_path: Path, child_env: dict[str, str]
) -> None:
    root = big_tmp_path / "store"
    args = [str(big_tmp_path / "source.bin")] if mode == "file" else []
    if mode == "file":
        with open(args[0], "wb") as source:
            block = os.urandom(8 * MIB)
            for _ in range(64):  # 512 MiB: the copy takes long enough to be caught midway
                source.write(block)
    process = subprocess.Popen(
        [sys.executable, str(CHILD), mode, root.as_uri(), "null", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=child_env,
    )
    try:
        _wait_for_line(process, "ready", timeout=60)
        # wait until the big write is visibly in flight in tmp/, then kill it
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            in_flight = list((root / "tmp").glob("*"))
            if in_flight and in_flight[0].stat().st_size >= 32 * MIB:
                break
            time.sleep(0.01)
        else:
            pytest.fail("the child's write never showed up in tmp/")
    finally:
        _kill(process)

    store = ArtifactStore(root.as_uri())
    objects = sorted(p for p in (root / "objects").rglob("*") if p.is_file())
    digests = {p.parent.name + p.name for p in objects}
    expected = {hashlib.sha256(f"complete object {i}".encode()).hexdigest() for i in range(3)}
    assert digests == expected  # the three finished objects, and nothing of the killed one
    for digest in digests:
        store.verify(digest)
    assert len(list((root / "tmp").iterdir())) == 1  # the orphan stays in tmp/, out of sight


def test_sigkill_during_s3_upload_leaves_no_object(
    s3_server: S3Server, big_tmp_path: Path, child_env: dict[str, str]
) -> None:
    """On S3 put_file goes straight to the final key; killed mid-upload, nothing is visible."""
    prefix = uuid.uuid4().hex
    root = f"s3://{s3_server.bucket}/{prefix}"
    source = big_tmp_path / "source.bin"
    with open(source, "wb") as out:
        for _ in range(12):  # 96 MiB: six 16 MiB parts
            out.write(os.urandom(8 * MIB))
    process = subprocess.Popen(
        [
            sys.executable,
            str(CHILD),
            "file",
            root,
            json.dumps(s3_server.storage_options),
            str(source),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=child_env,
    )
    client = s3_server.client
    try:
        _wait_for_line(process, "ready", timeout=60)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            uploads = client.list_multipart_uploads(
                Bucket=s3_server.bucket, Prefix=f"{prefix}/objects/"
            ).get("Uploads", [])
            if uploads:
                upload = uploads[0]
                parts = client.list_parts(
                    Bucket=s3_server.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                ).get("Parts", [])
                if parts:
                    break
            time.sleep(0.05)
        else:
            pytest.fail("the child's multipart upload never started")
    finally:
        _kill(process)

    keys = s3_server.keys(s3_server.bucket, f"{prefix}/objects/")
    expected = {hashlib.sha256(f"complete object {i}".encode()).hexdigest() for i in range(3)}
    assert {"".join(key.split("/")[-2:]) for key in keys} == expected
    assert upload["Key"] not in keys  # uploaded parts are not an object
    client.abort_multipart_upload(
        Bucket=s3_server.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
    )
