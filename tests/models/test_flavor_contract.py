"""One contract, every flavor: save, load, log and load by URI give the same predictions."""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import re
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import loopml
from loopml.models import available_flavors, load_model, save_model
from loopml.models.flavor import ENTRY_POINT_GROUP, find_flavor, get_flavor
from loopml.models.format import INPUT_EXAMPLE_FILE, METADATA_FILE, REQUIREMENTS_FILE
from loopml.models.uri import model_cache_dir

FLAVORS = ["sklearn", "xgboost", "lightgbm", "pytorch", "onnx", "python"]
CUSTOM_PACKAGE = "loopml_contract_custom"


@dataclass(frozen=True)
class Case:
    model: Any
    example: Any  # the input example given to save/log
    data: Any  # data to predict on
    expected: dict[str, Any]  # method -> what the native model returns for data
    library: str  # a distribution the requirements must pin
    kind: str  # "columns" or "tensor"
    code_paths: tuple[Path, ...] = ()


def _iris() -> tuple[Any, Any]:
    from sklearn.datasets import load_iris

    frame, target = load_iris(return_X_y=True, as_frame=True)
    frame.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    return frame, target.to_numpy()


def _sklearn() -> Case:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _iris()
    model = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=500))])
    model.fit(X, y)
    expected = {"predict": model.predict(X), "predict_proba": model.predict_proba(X)}
    return Case(model, X.head(5), X, expected, "scikit-learn", "columns")


def _xgboost() -> Case:
    import xgboost as xgb

    X, y = _iris()
    array = X.to_numpy()
    model = xgb.XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1).fit(array, y)
    expected = {"predict": model.predict(array), "predict_proba": model.predict_proba(array)}
    library = "xgboost-cpu" if _installed("xgboost-cpu") else "xgboost"
    return Case(model, array[:5], array, expected, library, "tensor")


def _lightgbm() -> Case:
    import lightgbm as lgb

    X, y = _iris()
    model = lgb.LGBMClassifier(n_estimators=5, num_leaves=4, verbose=-1, n_jobs=1).fit(X, y)
    expected = {"predict": model.predict(X), "predict_proba": model.predict_proba(X)}
    return Case(model, X.head(5), X, expected, "lightgbm", "columns")


def _pytorch() -> Case:
    import torch

    torch.manual_seed(0)
    model = _tiny_regressor()
    X, _ = _iris()
    array = X.to_numpy(dtype=np.float32).copy()
    with torch.no_grad():
        expected = {"predict": model(torch.from_numpy(array)).numpy()}
    return Case(model, array[:5], array, expected, "torch", "tensor")


def _onnx() -> Case:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _iris()
    array = X.to_numpy(dtype=np.float32)
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=500))])
    pipe.fit(array, y)
    proto = to_onnx(pipe, array[:1], options={"zipmap": False}, target_opset=17)
    expected = {"predict": pipe.predict(array), "predict_proba": pipe.predict_proba(array)}
    return Case(proto, array[:5], array, expected, "onnxruntime", "tensor")


def _python(root: Path) -> Case:
    package = root / CUSTOM_PACKAGE
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "scoring.py").write_text(
        textwrap.dedent(
            """
            import numpy as np

            def petal_area(frame):
                return np.asarray(frame["petal_length"] * frame["petal_width"], dtype=float)
            """
        )
    )
    (package / "model.py").write_text(
        textwrap.dedent(
            """
            from loopml_contract_custom.scoring import petal_area

            class AreaThreshold:
                def __init__(self, threshold):
                    self.threshold = threshold

                def predict(self, frame):
                    return (petal_area(frame) > self.threshold).astype("int64")
            """
        )
    )
    sys.path.insert(0, str(root))
    try:
        module = importlib.import_module(f"{CUSTOM_PACKAGE}.model")
        model = module.AreaThreshold(2.0)
    finally:
        sys.path.remove(str(root))
    X, _ = _iris()
    expected = {"predict": model.predict(X)}
    return Case(model, X.head(5), X, expected, "cloudpickle", "columns", (package,))


def _torch_module() -> type:
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.hidden = torch.nn.Linear(4, 8)
            self.out = torch.nn.Linear(8, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(torch.relu(self.hidden(x)))

    return Tiny


def _tiny_regressor() -> Any:
    return _torch_module()()


def _installed(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


@pytest.fixture(scope="session")
def cases(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Case]:
    root = tmp_path_factory.mktemp("custom-code")
    builders: dict[str, Callable[[], Case]] = {
        "sklearn": _sklearn,
        "xgboost": _xgboost,
        "lightgbm": _lightgbm,
        "pytorch": _pytorch,
        "onnx": _onnx,
        "python": lambda: _python(root),
    }

    @functools.cache
    def build(flavor: str) -> Case:
        return builders[flavor]()

    return build


@contextlib.contextmanager
def _without_custom_code() -> Iterator[None]:
    """Unload the custom model's package, so that loading the model must import it from the
    model's code/ folder; the original modules are back afterwards."""
    saved = {n: m for n, m in sys.modules.items() if n.split(".")[0] == CUSTOM_PACKAGE}
    for name in saved:
        del sys.modules[name]
    try:
        yield
    finally:
        for name in [n for n in sys.modules if n.split(".")[0] == CUSTOM_PACKAGE]:
            del sys.modules[name]
        sys.modules.update(saved)


def _load_checking_code(uri: Any, case: Case) -> loopml.models.Predictor:
    with _without_custom_code():
        predictor = load_model(uri)
        if case.code_paths:  # the model's class came from the model's own code/ folder
            module_file = Path(sys.modules[f"{CUSTOM_PACKAGE}.model"].__file__ or "")
            assert module_file.is_relative_to(predictor.path.resolve() / "code")
    return predictor


def _check_predictions(predictor: loopml.models.Predictor, case: Case) -> None:
    for method, expected in case.expected.items():
        got = predictor.call(method, case.data)
        np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-5, atol=1e-5)


def _public(version: str) -> str:
    return version.split("+", 1)[0]


@pytest.mark.parametrize("flavor", FLAVORS)
def test_save_then_load_gives_the_same_predictions(
    flavor: str, cases: Callable[[str], Case], tmp_path: Path
) -> None:
    case = cases(flavor)
    assert find_flavor(case.model).name == flavor
    meta = save_model(
        case.model, tmp_path / "m", input_example=case.example, code_paths=case.code_paths
    )
    assert meta.flavor == flavor
    files = {p.name for p in (tmp_path / "m").iterdir()}
    assert {METADATA_FILE, REQUIREMENTS_FILE, INPUT_EXAMPLE_FILE} <= files

    predictor = _load_checking_code(tmp_path / "m", case)

    assert predictor.flavor == flavor
    assert set(case.expected) <= set(predictor.methods)
    assert predictor.methods == meta.methods
    _check_predictions(predictor, case)
    assert predictor.native is not None
    # a file:// URI names the same folder
    assert load_model((tmp_path / "m").as_uri()).methods == predictor.methods


@pytest.mark.parametrize("flavor", FLAVORS)
def test_requirements_pin_exact_installed_versions(
    flavor: str, cases: Callable[[str], Case], tmp_path: Path
) -> None:
    case = cases(flavor)
    save_model(
        case.model,
        tmp_path / "m",
        input_example=case.example,
        code_paths=case.code_paths,
        extra_requirements=["requests>=2"],
    )
    lines = (tmp_path / "m" / REQUIREMENTS_FILE).read_text().splitlines()
    meta = json.loads((tmp_path / "m" / METADATA_FILE).read_text())
    assert lines == meta["requirements"]
    pins = dict(line.split("==", 1) for line in lines if "==" in line)
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9-]*==\S+", line) for line in lines if "==" in line)
    assert pins[case.library] == _public(metadata.version(case.library))
    assert pins["loopml"] == loopml.__version__
    assert pins["numpy"] == metadata.version("numpy")
    assert lines[-1] == "requests>=2"
    assert "pytest" not in pins and "sqlalchemy" not in pins  # not the whole environment
    if case.kind == "columns":
        assert pins["pandas"] == metadata.version("pandas")


@pytest.mark.parametrize("flavor", FLAVORS)
def test_signature_is_inferred_from_the_example(
    flavor: str, cases: Callable[[str], Case], tmp_path: Path
) -> None:
    case = cases(flavor)
    save_model(case.model, tmp_path / "m", input_example=case.example, code_paths=case.code_paths)
    signature = load_model(tmp_path / "m").signature
    assert signature is not None
    assert signature.inputs.kind == case.kind
    assert signature.outputs is not None
    if case.kind == "columns":
        assert signature.inputs.names == list(case.example.columns)
        assert {c.type for c in signature.inputs.columns} == {"double"}
    else:
        (tensor,) = signature.inputs.tensors
        assert tensor.shape == (-1, 4)
        assert tensor.dtype == str(case.example.dtype)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_logged_model_loads_by_runs_uri_and_second_load_uses_the_cache(
    flavor: str,
    cases: Callable[[str], Case],
    client: loopml.Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case = cases(flavor)
    downloads: list[tuple[Any, ...]] = []
    original = loopml.Client.download_artifact

    def counting(self: loopml.Client, *args: Any, **kwargs: Any) -> Path:
        downloads.append(args)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(loopml.Client, "download_artifact", counting)
    with loopml.start_run() as run:
        loopml.log_input("iris", "d1g3st", source="sklearn.datasets", context="training")
        logged = loopml.log_model(
            case.model, "clf", input_example=case.example, code_paths=case.code_paths
        )
    assert logged.uri == f"runs:/{run.run_id}/clf"
    assert (logged.run_id, logged.name, logged.flavor, logged.version) == (
        run.run_id,
        "clf",
        flavor,
        None,
    )
    assert logged.signature is not None

    first = _load_checking_code(logged.uri, case)

    assert downloads == [(run.run_id, "clf", downloads[0][2])]
    assert first.path == model_cache_dir(client) / logged.digest
    _check_predictions(first, case)
    assert first.metadata.run_id == run.run_id
    assert first.metadata.datasets == (
        {"name": "iris", "digest": "d1g3st", "source": "sklearn.datasets", "context": "training"},
    )

    second = loopml.load_model(logged.uri)
    assert len(downloads) == 1  # served from <workspace>/cache/models/<digest>
    assert second.path == first.path
    _check_predictions(second, case)
    assert not [p for p in model_cache_dir(client).iterdir() if p.name.startswith(".")]


def test_entry_points_list_the_builtin_flavors() -> None:
    registered = {ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert set(FLAVORS) <= registered
    names = available_flavors()
    assert set(FLAVORS) <= set(names)
    assert names[-1] == "python"  # the catch-all is tried last
    for name in FLAVORS:
        assert get_flavor(name).name == name
        assert get_flavor(name).packages


@pytest.mark.parametrize("fallback", ["export", "pickle"])
def test_pytorch_module_that_does_not_compile_is_exported_or_pickled(
    fallback: str,
    cases: Callable[[str], Case],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from loopml.models.flavors import pytorch as flavor_module

    def cannot(*args: Any) -> Any:
        raise RuntimeError("not compilable")

    monkeypatch.setattr(flavor_module, "_script", cannot)
    monkeypatch.setattr(flavor_module, "_trace", cannot)
    if fallback == "pickle":
        import torch

        monkeypatch.setattr(torch.export, "export", cannot)
    case = cases("pytorch")
    meta = save_model(case.model, tmp_path / "m", input_example=case.example)
    assert meta.flavor_config["format"] == fallback
    _check_predictions(load_model(tmp_path / "m"), case)


def test_boosters_are_saved_natively(cases: Callable[[str], Case], tmp_path: Path) -> None:
    xgb_case, lgb_case = cases("xgboost"), cases("lightgbm")
    booster = xgb_case.model.get_booster()
    save_model(booster, tmp_path / "xgb", input_example=xgb_case.data[:3])
    loaded = load_model(tmp_path / "xgb")
    assert loaded.methods == ("predict",)
    assert (tmp_path / "xgb" / "model.ubj").is_file()
    np.testing.assert_allclose(loaded.predict(xgb_case.data), xgb_case.expected["predict_proba"])

    lgb_booster = lgb_case.model.booster_
    save_model(lgb_booster, tmp_path / "lgb", input_example=lgb_case.data.to_numpy()[:3])
    loaded = load_model(tmp_path / "lgb")
    assert (tmp_path / "lgb" / "model.txt").is_file()
    np.testing.assert_allclose(
        loaded.predict(lgb_case.data.to_numpy()), lgb_case.expected["predict_proba"], rtol=1e-6
    )


def test_flavor_can_be_named_and_a_wrong_one_is_refused(
    cases: Callable[[str], Case], tmp_path: Path
) -> None:
    from loopml.errors import InvalidArgument, NotFound

    case = cases("sklearn")
    meta = save_model(case.model, tmp_path / "m", flavor="python")
    assert meta.flavor == "python"
    np.testing.assert_array_equal(
        load_model(tmp_path / "m").predict(case.data), case.expected["predict"]
    )
    with pytest.raises(InvalidArgument, match="flavor 'pytorch' cannot save"):
        save_model(case.model, tmp_path / "n", flavor="pytorch")
    with pytest.raises(NotFound, match=r"no model flavor named 'catboost'.*installed flavors"):
        save_model(case.model, tmp_path / "o", flavor="catboost")
