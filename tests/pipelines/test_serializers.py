"""Step outputs go through the right serializer, come back equal, and equal values share one
digest (the step cache depends on it)."""

from __future__ import annotations

import fractions
import json
import math
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from loopml.artifacts import ArtifactStore
from loopml.core.pipelines import StepOutput
from loopml.errors import InvalidArgument
from loopml.pipelines.serializers import (
    Serializer,
    get_serializer,
    load_value,
    register_serializer,
    serializer_for,
    store_value,
    unregister_serializer,
)


@pytest.fixture
def artifacts(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(str(tmp_path / "artifacts"))


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def stored_objects(artifacts: ArtifactStore) -> int:
    return sum(1 for p in (Path(artifacts.root_uri) / "objects").rglob("*") if p.is_file())


def load(artifacts: ArtifactStore, output: StepOutput, *, cache_dir: Path) -> Any:
    """load_value, typed for tests that use what comes back."""
    return load_value(artifacts, output, cache_dir=cache_dir)


# -- json ---------------------------------------------------------------------------------------
def test_json_round_trips_nested_values_and_non_finite_floats(
    artifacts: ArtifactStore, cache_dir: Path
) -> None:
    value = {
        "ints": [0, -1, 2**70],
        "floats": [0.1, -0.0, 1e308, float("inf"), float("-inf")],
        "nan": float("nan"),
        "text": "héllo ✓",
        "nested": {"a": [None, True, False, {"b": []}]},
        "pair": (1, "two"),
    }
    output = store_value(artifacts, value, name="metrics")
    assert (output.name, output.serializer, output.kind) == ("metrics", "json", "file")
    assert output.type_name == "builtins.dict"
    back = load(artifacts, output, cache_dir=cache_dir)
    assert math.isnan(back.pop("nan"))
    assert back["pair"] == [1, "two"]  # tuples come back as lists
    assert math.copysign(1.0, back["floats"][1]) == -1.0
    assert back == {**{k: v for k, v in value.items() if k != "nan"}, "pair": [1, "two"]}


def test_json_bytes_are_compact_with_sorted_keys(artifacts: ArtifactStore) -> None:
    output = store_value(artifacts, {"b": [1, 2], "a": "x"})
    assert artifacts.read_bytes(output.digest) == b'{"a":"x","b":[1,2]}'
    assert output.size == len(b'{"a":"x","b":[1,2]}')


def test_equal_dicts_stored_twice_give_one_digest_and_one_object(
    artifacts: ArtifactStore,
) -> None:
    first = store_value(artifacts, {"a": 1, "b": [1.5, "x"]})
    second = store_value(artifacts, {"b": [1.5, "x"], "a": 1})
    assert first.digest == second.digest
    assert stored_objects(artifacts) == 1
    changed = store_value(artifacts, {"a": 1, "b": [1.5, "y"]})
    assert changed.digest != first.digest


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({1: "int key"}, id="int-key"),
        pytest.param({"s": {1, 2}}, id="set-inside"),
        pytest.param(np.float64(1.5), id="numpy-scalar"),
        pytest.param(fractions.Fraction(1, 3), id="fraction"),
    ],
)
def test_values_json_would_change_go_to_pickle_and_round_trip(
    artifacts: ArtifactStore, cache_dir: Path, value: object
) -> None:
    output = store_value(artifacts, value)
    assert output.serializer == "pickle"
    back = load(artifacts, output, cache_dir=cache_dir)
    assert back == value
    assert type(back) is type(value)


def test_self_referencing_list_goes_to_pickle(artifacts: ArtifactStore, cache_dir: Path) -> None:
    value: list[Any] = [1]
    value.append(value)
    output = store_value(artifacts, value)
    assert output.serializer == "pickle"
    back = load(artifacts, output, cache_dir=cache_dir)
    assert back[0] == 1 and back[1] is back


# -- bytes and text -----------------------------------------------------------------------------
def test_bytes_and_bytearray_are_stored_raw(artifacts: ArtifactStore, cache_dir: Path) -> None:
    for value in (b"\x00raw\xff", bytearray(b"\x00raw\xff")):
        output = store_value(artifacts, value)
        assert output.serializer == "bytes"
        assert artifacts.read_bytes(output.digest) == b"\x00raw\xff"
        assert load(artifacts, output, cache_dir=cache_dir) == b"\x00raw\xff"


def test_text_serializer_is_used_when_named(artifacts: ArtifactStore, cache_dir: Path) -> None:
    assert store_value(artifacts, "report").serializer == "json"
    output = store_value(artifacts, "# Report\nall ✓\n", serializer="text")
    assert output.serializer == "text"
    assert artifacts.read_bytes(output.digest) == "# Report\nall ✓\n".encode()
    assert load(artifacts, output, cache_dir=cache_dir) == "# Report\nall ✓\n"


# -- numpy --------------------------------------------------------------------------------------
def test_numpy_array_round_trips_with_dtype_and_shape(
    artifacts: ArtifactStore, cache_dir: Path
) -> None:
    array = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    output = store_value(artifacts, array)
    assert output.serializer == "numpy"
    back = load(artifacts, output, cache_dir=cache_dir)
    assert back.dtype == np.float32 and back.shape == (2, 3, 4)
    np.testing.assert_array_equal(back, array)


def test_equal_arrays_give_one_digest_and_a_changed_cell_another(
    artifacts: ArtifactStore,
) -> None:
    array = np.arange(12.0).reshape(3, 4)
    first = store_value(artifacts, array)
    assert store_value(artifacts, array.copy()).digest == first.digest
    assert store_value(artifacts, np.asfortranarray(array)).digest == first.digest
    assert stored_objects(artifacts) == 1
    changed = array.copy()
    changed[2, 3] = -1
    assert store_value(artifacts, changed).digest != first.digest


def test_numpy_array_of_python_objects_goes_to_pickle(
    artifacts: ArtifactStore, cache_dir: Path
) -> None:
    array = np.array([{"a": 1}, None], dtype=object)
    output = store_value(artifacts, array)
    assert output.serializer == "pickle"
    assert list(load(artifacts, output, cache_dir=cache_dir)) == [{"a": 1}, None]


# -- parquet ------------------------------------------------------------------------------------
def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [1, 2, 3],
            "name": ["a", "b", None],
            "score": [0.5, float("nan"), 2.0],
            "when": pd.date_range("2024-01-01", periods=3, tz="UTC"),
            "kind": pd.Categorical(["x", "y", "x"]),
        },
        index=pd.Index(["r1", "r2", "r3"], name="row"),
    )


def test_dataframe_round_trips_through_parquet(artifacts: ArtifactStore, cache_dir: Path) -> None:
    output = store_value(artifacts, _frame())
    assert output.serializer == "parquet"
    assert output.type_name == "pandas.DataFrame"
    back = load(artifacts, output, cache_dir=cache_dir)
    pd.testing.assert_frame_equal(back, _frame())


def test_grouped_dataframe_keeps_its_multi_index(artifacts: ArtifactStore, cache_dir: Path) -> None:
    frame = pd.DataFrame({"g": ["a", "a", "b"], "h": [1, 2, 1], "v": [1.0, 2.0, 3.0]})
    grouped = frame.groupby(["g", "h"]).sum()
    output = store_value(artifacts, grouped)
    assert output.serializer == "parquet"
    pd.testing.assert_frame_equal(load(artifacts, output, cache_dir=cache_dir), grouped)


def test_equal_dataframes_give_one_digest_and_a_changed_cell_another(
    artifacts: ArtifactStore,
) -> None:
    first = store_value(artifacts, _frame())
    assert store_value(artifacts, _frame()).digest == first.digest
    assert stored_objects(artifacts) == 1
    changed = _frame()
    changed.loc["r2", "id"] = 20
    assert store_value(artifacts, changed).digest != first.digest


def test_arrow_table_comes_back_as_an_arrow_table(
    artifacts: ArtifactStore, cache_dir: Path
) -> None:
    table = pa.table({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    output = store_value(artifacts, table)
    assert output.serializer == "parquet"
    back = load(artifacts, output, cache_dir=cache_dir)
    assert isinstance(back, pa.Table)
    assert back.equals(table)
    # The same data as a DataFrame is a different value (it reads back as a DataFrame).
    assert store_value(artifacts, table.to_pandas()).digest != output.digest


def test_dataframe_of_mixed_objects_falls_back_to_pickle(
    artifacts: ArtifactStore, cache_dir: Path
) -> None:
    frame = pd.DataFrame({"mixed": [1, "a", {"k": [1]}]})
    output = store_value(artifacts, frame)
    assert output.serializer == "pickle"
    pd.testing.assert_frame_equal(load(artifacts, output, cache_dir=cache_dir), frame)
    with pytest.raises(InvalidArgument, match=r"column 'mixed'.*'pickle'"):
        store_value(artifacts, frame, serializer="parquet")


# -- models -------------------------------------------------------------------------------------
def test_sklearn_model_round_trips_as_a_model_folder(
    artifacts: ArtifactStore, cache_dir: Path
) -> None:
    from sklearn.linear_model import LogisticRegression

    import loopml

    rng = np.random.default_rng(0)
    features = rng.normal(size=(40, 3))
    model = LogisticRegression().fit(features, (features[:, 0] > 0).astype(int))
    output = store_value(artifacts, model, name="model")
    assert (output.serializer, output.kind) == ("model", "directory")
    assert output.type_name == "sklearn.linear_model._logistic.LogisticRegression"
    assert store_value(artifacts, model).digest == output.digest  # created_at does not count

    back = load(artifacts, output, cache_dir=cache_dir)
    assert isinstance(back, LogisticRegression)
    np.testing.assert_array_equal(back.predict(features), model.predict(features))
    folder = cache_dir / output.digest
    assert (folder / "loopml-model.json").is_file()
    predictor = loopml.load_model(folder)  # an ordinary model folder
    np.testing.assert_array_equal(predictor.predict(features), model.predict(features))

    shutil.rmtree(artifacts.root_uri)  # the folder was downloaded once: the store is not read
    again = load(artifacts, output, cache_dir=cache_dir)
    np.testing.assert_array_equal(again.predict(features), model.predict(features))
    assert [p.name for p in cache_dir.iterdir()] == [output.digest]  # no partial folders left


def test_object_with_predict_goes_to_pickle_not_the_python_flavor(
    artifacts: ArtifactStore, cache_dir: Path
) -> None:
    output = store_value(artifacts, _Doubler())
    assert output.serializer == "pickle"
    assert load(artifacts, output, cache_dir=cache_dir).predict(2) == 4


def test_path_to_an_onnx_file_stays_a_path(
    artifacts: ArtifactStore, cache_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"not really onnx")
    output = store_value(artifacts, path)
    assert output.serializer == "pickle"
    assert load(artifacts, output, cache_dir=cache_dir) == path


class _Doubler:
    def predict(self, x: int) -> int:
        return 2 * x


# -- custom serializers -------------------------------------------------------------------------
class Point:
    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)

    __hash__ = None  # type: ignore[assignment]


class PointSerializer(Serializer):
    """A file serializer with no fast paths: write() and read() only."""

    name: ClassVar[str] = "point"

    def accepts(self, value: object) -> bool:
        return isinstance(value, Point)

    def write(self, value: object, path: Path) -> None:
        assert isinstance(value, Point)
        path.write_text(f"{value.x},{value.y}")

    def read(self, path: Path) -> object:
        x, y = path.read_text().split(",")
        return Point(int(x), int(y))


class TaggedDictSerializer(Serializer):
    """A directory serializer for dicts marked {"tagged": ...}: one file per key."""

    name: ClassVar[str] = "tagged"
    kind: ClassVar[str] = "directory"

    def accepts(self, value: object) -> bool:
        return isinstance(value, dict) and "tagged" in value

    def write(self, value: object, path: Path) -> None:
        assert isinstance(value, dict)
        for key, item in value.items():
            (path / key).write_text(json.dumps(item))

    def read(self, path: Path) -> object:
        return {p.name: json.loads(p.read_text()) for p in sorted(path.iterdir())}


@pytest.fixture
def registered() -> Iterator[None]:
    yield
    for name in ("point", "tagged"):
        unregister_serializer(name)


def test_registered_file_serializer_round_trips_and_reads_through_the_cache(
    artifacts: ArtifactStore, cache_dir: Path, registered: None
) -> None:
    register_serializer(PointSerializer())
    output = store_value(artifacts, Point(3, -4))
    assert (output.serializer, output.kind) == ("point", "file")
    assert artifacts.read_bytes(output.digest) == b"3,-4"
    assert load(artifacts, output, cache_dir=cache_dir) == Point(3, -4)
    # Without from_bytes the file is downloaded once and read from the cache afterwards.
    assert (cache_dir / f"{output.digest}.point").read_text() == "3,-4"
    shutil.rmtree(artifacts.root_uri)
    assert load(artifacts, output, cache_dir=cache_dir) == Point(3, -4)


def test_registered_directory_serializer_is_tried_before_the_builtins(
    artifacts: ArtifactStore, cache_dir: Path, registered: None
) -> None:
    value = {"tagged": True, "rows": [1, 2]}
    assert store_value(artifacts, value).serializer == "json"
    register_serializer(TaggedDictSerializer())
    output = store_value(artifacts, value)
    assert (output.serializer, output.kind) == ("tagged", "directory")
    assert load(artifacts, output, cache_dir=cache_dir) == value
    assert sorted(p.name for p in (cache_dir / output.digest).iterdir()) == ["rows", "tagged"]
    assert serializer_for({"plain": 1}).name == "json"


def test_serializer_registered_last_only_takes_what_no_builtin_does(
    artifacts: ArtifactStore, registered: None
) -> None:
    class Everything(PointSerializer):
        def accepts(self, value: object) -> bool:
            return True

    register_serializer(Everything(), first=False)
    assert store_value(artifacts, {"a": 1}).serializer == "json"
    assert serializer_for(Point(1, 2)).name == "point"  # instead of pickle


def test_registering_a_name_again_replaces_the_serializer(registered: None) -> None:
    register_serializer(PointSerializer())
    replacement = PointSerializer()
    register_serializer(replacement, first=False)
    assert get_serializer("point") is replacement


# -- errors -------------------------------------------------------------------------------------
def test_unknown_serializer_name_lists_the_known_ones(artifacts: ArtifactStore) -> None:
    with pytest.raises(InvalidArgument, match="unknown serializer 'yaml'") as error:
        store_value(artifacts, {"a": 1}, serializer="yaml")
    for name in ("bytes", "json", "model", "numpy", "parquet", "pickle", "text"):
        assert name in str(error.value)
    with pytest.raises(InvalidArgument, match="unknown serializer 'yaml'"):
        get_serializer("yaml")
    output = StepOutput("out", "0" * 64, "yaml")
    with pytest.raises(InvalidArgument, match="registered with register_serializer"):
        load(artifacts, output, cache_dir=Path("unused"))


def test_named_serializer_that_refuses_the_value_is_an_error(artifacts: ArtifactStore) -> None:
    with pytest.raises(InvalidArgument, match=r"'numpy' cannot store a builtins\.dict"):
        store_value(artifacts, {"a": 1}, serializer="numpy")
    with pytest.raises(InvalidArgument, match=r"'json' cannot store a builtins\.set"):
        serializer_for({1, 2}, name="json")
    assert stored_objects(artifacts) == 0


def test_unpicklable_value_says_how_to_store_it(artifacts: ArtifactStore) -> None:
    with pytest.raises(InvalidArgument, match=r"cannot be pickled.*register_serializer"):
        store_value(artifacts, lambda x: x)


def test_register_refuses_builtin_and_reserved_names_and_non_serializers() -> None:
    class Clash(PointSerializer):
        name: ClassVar[str] = "json"

    class Dataset(PointSerializer):
        name: ClassVar[str] = "dataset"

    class BadName(PointSerializer):
        name: ClassVar[str] = "Bad Name"

    with pytest.raises(InvalidArgument, match="'json': the name is taken"):
        register_serializer(Clash())
    with pytest.raises(InvalidArgument, match="'dataset': the name is taken"):
        register_serializer(Dataset())
    with pytest.raises(InvalidArgument, match="invalid name 'Bad Name'"):
        register_serializer(BadName())
    with pytest.raises(InvalidArgument, match="Serializer subclass"):
        register_serializer(object())  # type: ignore[arg-type]


# -- import cost --------------------------------------------------------------------------------
def test_storing_a_small_value_imports_no_heavy_library(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from loopml.artifacts import ArtifactStore\n"
        "from loopml.pipelines.serializers import store_value, load_value\n"
        f"store = ArtifactStore({str(tmp_path / 'a')!r})\n"
        "out = store_value(store, {'a': [1, 2.5]})\n"
        f"assert load_value(store, out, cache_dir={str(tmp_path / 'c')!r}) == {{'a': [1, 2.5]}}\n"
        "heavy = ('pandas', 'numpy', 'pyarrow', 'sklearn', 'torch', 'loopml.models')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]"
