"""Directory manifests: canonical encoding and strict validation of what they may contain."""

from __future__ import annotations

import json

import pytest

from loopml.artifacts import Manifest, ManifestEntry, check_relative_path
from loopml.errors import InvalidArgument

D1 = "a" * 64
D2 = "b" * 64


def test_entries_are_sorted_and_encoding_is_canonical() -> None:
    one = Manifest((ManifestEntry("z.txt", D1, 1), ManifestEntry("a/b.txt", D2, 2)))
    two = Manifest((ManifestEntry("a/b.txt", D2, 2), ManifestEntry("z.txt", D1, 1)))
    assert one == two
    assert [e.path for e in one] == ["a/b.txt", "z.txt"]
    assert one.to_bytes() == two.to_bytes()
    assert json.loads(one.to_bytes()) == {
        "format_version": 1,
        "files": [
            {"path": "a/b.txt", "digest": D2, "size": 2},
            {"path": "z.txt", "digest": D1, "size": 1},
        ],
    }
    assert one.total_size == 3 and len(one) == 2
    assert Manifest.from_bytes(one.to_bytes()) == one


def test_non_ascii_paths_round_trip() -> None:
    manifest = Manifest((ManifestEntry("donn\u00e9es/\u00fcber.csv", D1, 0),))
    assert Manifest.from_bytes(manifest.to_bytes()) == manifest


@pytest.mark.parametrize(
    "path",
    ["", "/etc/passwd", "../up", "a/../../up", "a/./b", "a//b", "a/", ".", "..", "a\\b",
     "C:/Windows", "c:evil", "nul\x00byte", "bad\udcffutf8"],
)  # fmt: skip
def test_unsafe_paths_are_rejected(path: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        check_relative_path(path)
    assert repr(path)[:40] in str(error.value)
    assert "relative POSIX path" in str(error.value)
    with pytest.raises(InvalidArgument):
        ManifestEntry(path, D1, 1)


@pytest.mark.parametrize("path", ["a", "a/b/c.txt", "name with spaces", ".hidden", "a..b"])
def test_safe_paths_are_accepted(path: str) -> None:
    assert check_relative_path(path) == path


def test_entry_digest_and_size_are_checked() -> None:
    with pytest.raises(InvalidArgument, match="64 lowercase"):
        ManifestEntry("a", "A" * 64, 1)
    with pytest.raises(InvalidArgument, match="non-negative integer"):
        ManifestEntry("a", D1, -1)
    with pytest.raises(InvalidArgument, match="non-negative integer"):
        ManifestEntry("a", D1, True)


def test_duplicate_and_file_as_directory_paths_are_rejected() -> None:
    with pytest.raises(InvalidArgument, match="listed twice"):
        Manifest((ManifestEntry("a", D1, 1), ManifestEntry("a", D2, 2)))
    with pytest.raises(InvalidArgument, match="both a file and a directory"):
        Manifest((ManifestEntry("a", D1, 1), ManifestEntry("a/b", D2, 2)))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\xff\xfe", "not UTF-8 JSON"),
        (b"[1, 2]", "'files' list"),
        (b'{"format_version": 1}', "'files' list"),
        (b'{"format_version": "1", "files": []}', "must be an integer"),
        (b'{"format_version": 2, "files": []}', "upgrade loopml"),
        (b'{"format_version": 1, "files": [{"path": "a"}]}', "exactly the keys"),
        (b'{"format_version": 1, "files": [["a", "b", 1]]}', "exactly the keys"),
        (
            b'{"format_version": 1, "files": [{"path": "../x", "digest": "' + D1.encode() + b'", '
            b'"size": 1}]}',
            "'..' segment",
        ),
    ],
)
def test_malformed_manifests_are_rejected(data: bytes, expected: str) -> None:
    with pytest.raises(InvalidArgument, match=expected):
        Manifest.from_bytes(data)
