"""Round trips, deduplication and layout of ArtifactStore on file://, memory:// and s3://."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from loopml.artifacts import ArtifactStore, Manifest, ManifestEntry
from loopml.core.entities import ArtifactKind
from loopml.errors import InvalidArgument, StoreUnavailable

if TYPE_CHECKING:
    from tests.artifacts.conftest import Backend, S3Server

MIB = 1024 * 1024


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def patterned(size: int, seed: int = 0) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest() * 2048  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


def test_put_bytes_round_trip(backend: Backend) -> None:
    store = backend.store
    data = b"hello artifacts\n" * 100
    ref = store.put_bytes(data, name="greeting.txt")
    assert ref.digest == sha256(data)
    assert (ref.path, ref.size, ref.kind) == ("greeting.txt", len(data), ArtifactKind.FILE)
    assert ref.created_at > 0
    assert store.exists(ref.digest)
    assert store.read_bytes(ref.digest) == data
    store.verify(ref.digest)
    with store.open(ref.digest) as reader:
        assert reader.readable() and not reader.seekable()
        assert reader.size == len(data)
        head = reader.read(10)
        rest = reader.read()
        assert head + rest == data
        assert reader.verified


def test_put_bytes_empty(backend: Backend) -> None:
    ref = backend.store.put_bytes(b"", name="empty")
    assert (ref.digest, ref.size) == (sha256(b""), 0)
    assert backend.store.read_bytes(ref.digest) == b""


def test_put_file_round_trip_spans_several_chunks(backend: Backend, tmp_path: Path) -> None:
    data = patterned(9 * MIB + 3)  # two 8 MiB chunks
    source = tmp_path / "weights.bin"
    source.write_bytes(data)
    ref = backend.store.put_file(source)
    assert (ref.path, ref.digest, ref.size) == ("weights.bin", sha256(data), len(data))
    dest = tmp_path / "out" / "nested" / "copy.bin"
    assert backend.store.download_file(ref.digest, dest) == dest
    assert dest.read_bytes() == data
    assert [p.name for p in dest.parent.iterdir()] == ["copy.bin"]  # no temp files left
    # download_file replaces an existing file
    dest.write_bytes(b"old")
    backend.store.download_file(ref.digest, str(dest))
    assert dest.read_bytes() == data


def test_put_stream_round_trip_and_dedupe(backend: Backend) -> None:
    data = patterned(3 * MIB, seed=1)
    ref = backend.store.put_stream(io.BytesIO(data), name="stream.bin", size_hint=len(data))
    assert (ref.path, ref.digest, ref.size) == ("stream.bin", sha256(data), len(data))
    assert backend.store.read_bytes(ref.digest) == data

    class ReadOnly:  # no readinto: the plain read() path
        def __init__(self, payload: bytes) -> None:
            self._inner = io.BytesIO(payload)

        def read(self, size: int = -1) -> bytes:
            return self._inner.read(min(size, 1000))

    again = backend.store.put_stream(ReadOnly(data), name="again.bin")
    assert again.digest == ref.digest
    assert backend.object_digests() == [ref.digest]
    assert backend.files_under("tmp") == []


def test_put_directory_round_trip(backend: Backend, tmp_path: Path) -> None:
    source = tmp_path / "model"
    (source / "sub" / "deeper").mkdir(parents=True)
    files = {
        "config.json": b'{"layers": 3}',
        "sub/weights.bin": patterned(200_000, seed=2),
        "sub/deeper/copy.bin": patterned(200_000, seed=2),  # same content as weights.bin
        "sub/empty.txt": b"",
        "sub/\u00fcnicode name.txt": "gr\u00fc\u00dfe".encode(),
    }
    for relative, content in files.items():
        (source / relative).write_bytes(content)
    (source / "empty-dir").mkdir()

    ref = backend.store.put_directory(source)
    assert ref.kind is ArtifactKind.DIRECTORY
    assert ref.path == "model"
    assert ref.size == sum(len(c) for c in files.values())

    manifest = backend.store.read_manifest(ref.digest)
    assert [e.path for e in manifest] == sorted(files)
    assert all(e.digest == sha256(files[e.path]) and e.size == len(files[e.path]) for e in manifest)
    assert ref.digest == sha256(manifest.to_bytes())
    # four distinct file contents plus the manifest
    assert len(backend.object_digests()) == 5

    dest = tmp_path / "restored"
    assert backend.store.download_directory(ref.digest, dest) == dest
    restored = {
        p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*") if p.is_file()
    }
    assert restored == files

    # the same tree stored again (from another location) has the same digest
    again = tmp_path / "elsewhere" / "model"
    again.parent.mkdir()
    os.rename(source, again)
    assert backend.store.put_directory(again).digest == ref.digest


def test_identical_content_is_stored_once(backend: Backend, tmp_path: Path) -> None:
    data = patterned(100_000, seed=3)
    first = backend.store.put_bytes(data, name="a.bin")
    path = backend.object_path(first.digest)
    before = backend.fs.info(path)
    source = tmp_path / "b.bin"
    source.write_bytes(data)
    second = backend.store.put_file(source)
    third = backend.store.put_bytes(data, name="c.bin")
    assert first.digest == second.digest == third.digest
    assert backend.object_digests() == [first.digest]
    assert backend.files_under("tmp") == []
    backend.fs.invalidate_cache()
    after = backend.fs.info(path)
    for key in ("mtime", "LastModified", "ETag", "created"):
        assert before.get(key) == after.get(key)


def test_s3_dedupe_does_not_upload_again(s3_server: S3Server) -> None:
    root = f"s3://{s3_server.bucket}/{uuid.uuid4().hex}"
    store = ArtifactStore(root, storage_options=s3_server.storage_options)
    data = b"uploaded exactly once"
    ref = store.put_bytes(data, name="once.txt")
    store.put_bytes(data, name="twice.txt")
    store.put_stream(io.BytesIO(data), name="thrice.txt")
    prefix = root.split("/", 3)[3]
    key = f"{prefix}/objects/{ref.digest[:2]}/{ref.digest[2:]}"
    versions = s3_server.client.list_object_versions(Bucket=s3_server.bucket, Prefix=key)
    assert len(versions.get("Versions", [])) == 1  # the bucket is versioned: one PUT only
    assert s3_server.keys(s3_server.bucket, f"{prefix}/objects/") == [key]


def test_layout_and_format_file(backend: Backend) -> None:
    ref = backend.store.put_bytes(b"layout", name="x")
    digest = ref.digest
    expected = backend.path(f"objects/{digest[:2]}/{digest[2:]}")
    assert backend.files_under("objects") == [expected]
    format_doc = json.loads(backend.fs.cat_file(backend.path("loopml-artifacts.json")))
    assert format_doc == {"format_version": 1}
    assert backend.files_under("tmp") == []


def test_newer_format_is_refused(backend: Backend) -> None:
    backend.write(backend.path("loopml-artifacts.json"), b'{"format_version": 2}')
    fresh = ArtifactStore(backend.store.root_uri, storage_options=backend.options)
    with pytest.raises(StoreUnavailable, match="format_version 2") as write_error:
        fresh.put_bytes(b"x", name="x")
    assert backend.store.root_uri in str(write_error.value)
    reader = ArtifactStore(backend.store.root_uri, storage_options=backend.options)
    with pytest.raises(StoreUnavailable, match="upgrade loopml"):
        reader.read_bytes(sha256(b"x"))
    assert backend.object_digests() == []


def test_unreadable_format_file_is_refused(backend: Backend) -> None:
    backend.write(backend.path("loopml-artifacts.json"), b"not json")
    with pytest.raises(StoreUnavailable, match=re.escape("unreadable loopml-artifacts.json")):
        backend.store.put_bytes(b"x", name="x")


def test_read_manifest_of_plain_object_is_invalid(backend: Backend) -> None:
    ref = backend.store.put_bytes(b"just bytes", name="plain.txt")
    with pytest.raises(InvalidArgument, match="not a valid directory manifest") as error:
        backend.store.read_manifest(ref.digest)
    assert ref.digest in str(error.value)


def test_manifest_round_trips_through_the_store(backend: Backend) -> None:
    content = backend.store.put_bytes(b"content", name="c")
    manifest = Manifest((ManifestEntry("b/c.txt", content.digest, content.size),))
    ref = backend.store.put_bytes(manifest.to_bytes(), name="manifest.json")
    assert backend.store.read_manifest(ref.digest) == manifest


def test_invalid_put_arguments(backend: Backend, tmp_path: Path) -> None:
    store = backend.store
    with pytest.raises(InvalidArgument, match="no such file"):
        store.put_file(tmp_path / "missing.bin")
    with pytest.raises(InvalidArgument, match="use put_directory"):
        store.put_file(tmp_path)
    with pytest.raises(InvalidArgument, match="use put_file"):
        (tmp_path / "f").write_bytes(b"")
        store.put_directory(tmp_path / "f")
    with pytest.raises(InvalidArgument, match=re.escape("'../escape'")):
        store.put_bytes(b"x", name="../escape")
    with pytest.raises(InvalidArgument, match="takes bytes"):
        store.put_bytes("text", name="t")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="binary stream"):
        store.put_stream(io.StringIO("text"), name="t")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="size_hint"):
        store.put_stream(io.BytesIO(b""), name="t", size_hint=-1)
    with pytest.raises(InvalidArgument, match="is a directory"):
        ref = store.put_bytes(b"x", name="x")
        store.download_file(ref.digest, tmp_path)
    assert backend.object_digests() == [sha256(b"x")]


def test_relative_root_is_anchored_when_the_store_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = ArtifactStore("relative/store")
    assert store.root_uri == "relative/store"
    monkeypatch.chdir(tmp_path.parent)
    ref = store.put_bytes(b"anchored", name="a")
    assert (tmp_path / "relative" / "store" / "objects" / ref.digest[:2]).is_dir()


def test_symlink_loop_in_directory_is_refused(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "file.txt").write_bytes(b"x")
    (tree / "sub" / "loop").symlink_to(tree, target_is_directory=True)
    store = ArtifactStore(f"memory://loopml-test-{uuid.uuid4().hex}")
    with pytest.raises(InvalidArgument, match="loop"):
        store.put_directory(tree)


def test_importing_the_package_does_not_import_s3fs(child_env: dict[str, str]) -> None:
    code = "import sys, loopml.artifacts; sys.exit('s3fs' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], env=child_env).returncode == 0


def test_local_root_forms_share_objects_and_answer_exists(tmp_path: Path) -> None:
    """A path and a file:// URL name the same folder; ``exists`` on a local root is a stat of
    the object file (no fsspec), so it must agree with the writes."""
    folder = tmp_path / "store"
    written = ArtifactStore(str(folder)).put_bytes(b"local bytes", name="a.txt")
    missing = sha256(b"never stored")
    for uri in (str(folder), folder.as_uri()):
        store = ArtifactStore(uri)
        assert store.exists(written.digest), uri
        assert not store.exists(missing), uri
        assert store.read_bytes(written.digest) == b"local bytes"
    # a folder where the object's file should be is not the object
    (folder / "objects" / missing[:2] / missing[2:]).mkdir(parents=True)
    assert not ArtifactStore(str(folder)).exists(missing)
    # a root inside a regular file holds nothing
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    assert not ArtifactStore(str(blocker / "store")).exists(missing)
