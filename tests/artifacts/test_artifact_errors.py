"""Bad digests, missing objects and unusable storage each raise the documented error."""

from __future__ import annotations

import hashlib
import io
import socket
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from loopml.artifacts import ArtifactStore
from loopml.errors import InvalidArgument, NotFound, StoreUnavailable

if TYPE_CHECKING:
    from tests.artifacts.conftest import Backend, S3Server

MISSING = hashlib.sha256(b"never stored").hexdigest()

BAD_DIGESTS = [
    pytest.param("", id="empty"),
    pytest.param("abc123", id="short"),
    pytest.param("0" * 63, id="63-chars"),
    pytest.param("0" * 65, id="65-chars"),
    pytest.param(MISSING.upper(), id="uppercase"),
    pytest.param("g" * 64, id="not-hex"),
    pytest.param(f"sha256:{MISSING[:57]}", id="prefixed"),
    pytest.param(" " + MISSING[1:], id="space"),
    pytest.param(None, id="none"),
    pytest.param(12345, id="int"),
]


def _readers(tmp_path: Path) -> dict[str, Callable[[ArtifactStore, Any], object]]:
    return {
        "exists": lambda s, d: s.exists(d),
        "open": lambda s, d: s.open(d),
        "read_bytes": lambda s, d: s.read_bytes(d),
        "verify": lambda s, d: s.verify(d),
        "read_manifest": lambda s, d: s.read_manifest(d),
        "download_file": lambda s, d: s.download_file(d, tmp_path / "downloads" / "out.bin"),
        "download_directory": lambda s, d: s.download_directory(d, tmp_path / "downloads"),
    }


@pytest.mark.parametrize("digest", BAD_DIGESTS)
def test_malformed_digest_is_invalid_argument(
    backend: Backend, tmp_path: Path, digest: object
) -> None:
    for name, call in _readers(tmp_path).items():
        with pytest.raises(InvalidArgument) as error:
            call(backend.store, digest)
        message = str(error.value)
        assert repr(digest)[:60] in message, name
        assert "64 lowercase hexadecimal characters" in message, name
    assert not (tmp_path / "downloads").exists()


def test_missing_object_is_not_found(backend: Backend, tmp_path: Path) -> None:
    backend.store.put_bytes(b"something else", name="other")
    readers = _readers(tmp_path)
    assert readers.pop("exists")(backend.store, MISSING) is False
    for name, call in readers.items():
        with pytest.raises(NotFound) as error:
            call(backend.store, MISSING)
        message = str(error.value)
        assert MISSING in message and backend.store.root_uri in message, name
        assert error.value.details == {"digest": MISSING, "root": backend.store.root_uri}
    assert not (tmp_path / "downloads").exists()


def test_missing_object_in_a_store_never_written_is_not_found(backend: Backend) -> None:
    with pytest.raises(NotFound, match=MISSING):
        backend.store.read_bytes(MISSING)
    assert backend.store.exists(MISSING) is False


def test_constructor_does_no_io_and_validates_arguments() -> None:
    unreachable = {"client_kwargs": {"endpoint_url": "http://127.0.0.1:9"}, "key": "k"}
    store = ArtifactStore("s3://no-such-bucket/prefix", storage_options=unreachable)
    assert store.root_uri == "s3://no-such-bucket/prefix"
    assert repr(store) == "ArtifactStore('s3://no-such-bucket/prefix')"
    with pytest.raises(InvalidArgument, match="non-empty"):
        ArtifactStore("")
    with pytest.raises(InvalidArgument, match="storage_options"):
        ArtifactStore("memory://x", storage_options=[("a", 1)])  # type: ignore[arg-type]


def test_unknown_scheme_is_invalid_argument() -> None:
    store = ArtifactStore("nosuchscheme://bucket/prefix")
    with pytest.raises(InvalidArgument, match="nosuchscheme://bucket/prefix"):
        store.put_bytes(b"x", name="x")


def test_s3_root_without_bucket_is_invalid(s3_server: S3Server) -> None:
    store = ArtifactStore("s3://", storage_options=s3_server.storage_options)
    with pytest.raises(InvalidArgument, match="names no bucket"):
        store.exists(MISSING)


@pytest.fixture
def dead_s3_options() -> dict[str, Any]:
    """S3 options pointing at a port nothing listens on; one attempt, so failures are quick."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{port}", "region_name": "us-east-1"},
        "config_kwargs": {"connect_timeout": 2, "retries": {"max_attempts": 1}},
    }


def test_unreachable_endpoint_is_store_unavailable(dead_s3_options: dict[str, Any]) -> None:
    root = "s3://loopml-unreachable/prefix"
    store = ArtifactStore(root, storage_options=dead_s3_options)
    calls: dict[str, Callable[[], object]] = {
        "put_bytes": lambda: store.put_bytes(b"x", name="x"),
        "put_stream": lambda: store.put_stream(io.BytesIO(b"x"), name="x"),
        "exists": lambda: store.exists(MISSING),
        "read_bytes": lambda: store.read_bytes(MISSING),
        "open": lambda: store.open(MISSING),
    }
    for name, call in calls.items():
        with pytest.raises(StoreUnavailable) as error:
            call()
        assert root in str(error.value), name
        assert error.value.details["root"] == root
        assert error.value.__cause__ is not None  # the original error is kept for debugging


def test_missing_bucket_is_store_unavailable(s3_server: S3Server) -> None:
    root = f"s3://loopml-missing-{uuid.uuid4().hex[:12]}/prefix"
    for call in (
        lambda s: s.put_bytes(b"x", name="x"),
        lambda s: s.read_bytes(MISSING),
        lambda s: s.exists(MISSING),
        lambda s: s.verify(MISSING),
    ):
        store = ArtifactStore(root, storage_options=s3_server.storage_options)
        with pytest.raises(StoreUnavailable, match="does not exist") as error:
            call(store)
        assert root in str(error.value)


def test_unwritable_local_root_is_store_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    store = ArtifactStore(str(blocker / "store"))
    with pytest.raises(StoreUnavailable) as error:
        store.put_bytes(b"x", name="x")
    assert str(blocker / "store") in str(error.value)


@pytest.mark.parametrize("took_effect", [True, False], ids=["answer-lost", "never-published"])
@pytest.mark.parametrize("size", [1_000, 40 * 1024 * 1024], ids=["put-object", "multipart"])
def test_s3_publish_with_a_lost_answer_counts_only_if_the_object_is_there(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, took_effect: bool, size: int
) -> None:
    """Fault injection on the real S3 client: the publishing call (PutObject or
    CompleteMultipartUpload) reaches the moto server, or not, and then the client sees a
    connection error instead of its answer, as when a timed-out completion is retried and the
    retry no longer finds its upload."""
    import s3fs.core

    original = s3fs.core.S3File.commit

    def answer_lost(self: Any) -> None:
        if took_effect:
            original(self)
        raise ConnectionResetError("connection reset before the answer arrived")

    root = f"s3://{s3_server.bucket}/{uuid.uuid4().hex}"
    store = ArtifactStore(root, storage_options=s3_server.storage_options)
    store.put_bytes(b"the store is set up", name="first.txt")  # writes the format file
    monkeypatch.setattr(s3fs.core.S3File, "commit", answer_lost)
    payload = hashlib.sha256(str(size).encode()).digest() * (size // 32)
    digest = hashlib.sha256(payload).hexdigest()
    if took_effect:
        ref = store.put_bytes(payload, name="model.bin")
        monkeypatch.undo()
        assert ref.digest == digest and ref.size == len(payload)
        assert store.read_bytes(digest) == payload
    else:
        with pytest.raises(StoreUnavailable, match=f"publishing artifact {digest}") as error:
            store.put_bytes(payload, name="model.bin")
        monkeypatch.undo()
        assert root in str(error.value)
        assert not store.exists(digest)
        assert (
            s3_server.client.list_multipart_uploads(Bucket=s3_server.bucket).get("Uploads", [])
            == []
        ), "the unfinished upload was left behind"
