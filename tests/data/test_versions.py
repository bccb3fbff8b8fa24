"""Dataset versions end to end: real stores, real files, real artifact store."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import loopml
from loopml.data.versions import add_dataset, diff_versions, load_dataset
from loopml.errors import InvalidArgument, NotFound
from loopml.monitoring.profile import profile_dataset


def _profile(frame: pd.DataFrame) -> dict[str, Any]:
    return profile_dataset(frame).to_dict()


def _csv(path: Path, rows: list[tuple[int, float]]) -> Path:
    path.write_text("id,score\n" + "".join(f"{i},{s}\n" for i, s in rows))
    return path


def test_identical_content_twice_is_one_version(client: loopml.Client, tmp_path: Path) -> None:
    first = add_dataset(client, _csv(tmp_path / "a.csv", [(1, 0.5), (2, 0.7)]), name="churn")
    copy = _csv(tmp_path / "copy.csv", [(1, 0.5), (2, 0.7)])
    again = add_dataset(client, copy, name="churn")
    assert again.version == first.version == 1
    assert first.format == "csv" and first.rows == 2
    assert first.schema == {"id": "int64", "score": "float64"}
    assert len(client.store.list_dataset_versions("churn")) == 1


def test_changed_content_becomes_version_two(client: loopml.Client, tmp_path: Path) -> None:
    path = _csv(tmp_path / "a.csv", [(1, 0.5)])
    add_dataset(client, path, name="churn")
    _csv(path, [(1, 0.5), (2, 0.9)])
    second = add_dataset(client, path, name="churn")
    assert second.version == 2 and second.rows == 2
    assert second.digest == hashlib.sha256(path.read_bytes()).hexdigest()


def test_dataframe_is_stored_as_parquet_and_loads_back(client: loopml.Client) -> None:
    frame = pd.DataFrame({"x": [1, 2, 3], "label": ["a", "b", "a"]})
    added = add_dataset(client, frame, name="frame", profiler=_profile)
    assert added.format == "parquet" and added.rows == 3 and added.source == "DataFrame"
    assert added.profile is not None and added.profile["rows"] == 3
    assert add_dataset(client, frame.copy(), name="frame").version == 1
    loaded = load_dataset(client, "frame")
    assert loaded.name == "data.parquet"
    pd.testing.assert_frame_equal(pd.read_parquet(loaded), frame)


def test_folder_digest_follows_its_content(client: loopml.Client, tmp_path: Path) -> None:
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.bin").write_bytes(b"\x00\x01")
    (folder / "sub" / "b.bin").write_bytes(b"\x02")
    first = add_dataset(client, folder, name="images")
    assert first.format == "directory" and first.rows is None and first.size_bytes == 3
    assert add_dataset(client, folder, name="images").version == 1
    (folder / "sub" / "b.bin").write_bytes(b"\x03")
    second = add_dataset(client, folder, name="images")
    assert second.version == 2 and second.digest != first.digest
    loaded = load_dataset(client, "images", 1)
    assert (loaded / "sub" / "b.bin").read_bytes() == b"\x02"
    assert (load_dataset(client, "images") / "sub" / "b.bin").read_bytes() == b"\x03"


def test_folder_of_parquet_files_records_its_table(client: loopml.Client, tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    pd.DataFrame({"x": [1, 2]}).to_parquet(folder / "part-0.parquet")
    pd.DataFrame({"x": [3]}).to_parquet(folder / "part-1.parquet")
    added = add_dataset(client, folder, name="parts")
    assert added.format == "directory" and added.rows == 3 and added.schema == {"x": "int64"}


def test_large_file_is_hashed_in_a_stream(client: loopml.Client, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    block = bytes(range(256)) * 4096  # 1 MiB
    expected = hashlib.sha256()
    with big.open("wb") as out:
        for i in range(50):
            chunk = block[i:] + block[:i]
            out.write(chunk)
            expected.update(chunk)
    added = add_dataset(client, big, name="big")
    assert added.digest == expected.hexdigest()
    assert added.size_bytes == 50 * len(block) and added.format == "file" and added.rows is None
    loaded = load_dataset(client, "big")
    assert loaded.stat().st_size == added.size_bytes


def test_diff_reports_schema_rows_and_statistics(client: loopml.Client) -> None:
    old = pd.DataFrame({"age": [20.0, 30.0, 40.0, None], "city": ["a", "b", "a", "b"]})
    new = pd.DataFrame({"age": [50.0, 60.0, 70.0], "income": [1, 2, 3]})
    a = add_dataset(client, old, name="people", profiler=_profile)
    b = add_dataset(client, new, name="people", profiler=_profile)
    diff = diff_versions(a, b)
    assert diff["schema"] == {
        "added": {"income": "int64"},
        "removed": {"city": str(old.dtypes["city"])},
        "changed": {},
    }
    assert diff["rows"] == {"from": 4, "to": 3, "change": -1}
    age = diff["columns"]["age"]
    assert age["mean"] == {"from": 30.0, "to": 60.0, "change": 30.0}
    assert age["missing_rate"]["from"] == 0.25 and age["missing_rate"]["to"] == 0.0
    assert "std" in age
    assert diff["same_content"] is False
    assert diff_versions(a, a)["schema"] == {"added": {}, "removed": {}, "changed": {}}


def test_diff_reports_changed_dtype(client: loopml.Client) -> None:
    a = add_dataset(client, pd.DataFrame({"x": [1, 2]}), name="t")
    b = add_dataset(client, pd.DataFrame({"x": [1.5, 2.0]}), name="t")
    assert diff_versions(a, b)["schema"]["changed"] == {"x": {"from": "int64", "to": "float64"}}
    assert diff_versions(a, b)["columns"] == {}  # no profiles stored


def test_errors_name_the_bad_value(client: loopml.Client, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="no such file or folder"):
        add_dataset(client, tmp_path / "missing.csv", name="x")
    with pytest.raises(InvalidArgument, match="invalid dataset name 'bad name'"):
        add_dataset(client, pd.DataFrame({"x": [1]}), name="bad name")
    with pytest.raises(InvalidArgument, match="give a file or folder path or a pandas"):
        add_dataset(client, [1, 2], name="x")
    with pytest.raises(NotFound, match="dataset 'never' not found"):
        load_dataset(client, "never")
    add_dataset(client, pd.DataFrame({"x": [1]}), name="once")
    with pytest.raises(NotFound, match="no version 3: versions are 1 to 1"):
        load_dataset(client, "once", 3)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet")
    with pytest.raises(InvalidArgument, match=r"cannot read .*broken\.parquet.* as [Pp]arquet"):
        add_dataset(client, broken, name="broken")
