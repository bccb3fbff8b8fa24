"""The step cache key changes exactly when something a step's outputs depend on changes, and
explain_change says what."""

from __future__ import annotations

import enum
import importlib.util
import sys
import textwrap
import types
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pytest

from loopml._version import __version__
from loopml.errors import InvalidArgument
from loopml.pipelines.cache import (
    CacheKey,
    clear_caches,
    code_digest,
    compute_key,
    explain_change,
    library_versions,
    params_canonical,
)


class LoadModule(Protocol):
    def __call__(self, source: str, name: str | None = None) -> types.ModuleType: ...


PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
DIGEST_A = "3f2a1c" + "0" * 58
DIGEST_B = "9b0e44" + "1" * 58


@pytest.fixture
def load_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LoadModule:
    """Write source as a new module file (a fresh name each time) and import it."""
    folder = tmp_path / "project"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))

    def load(source: str, name: str | None = None) -> types.ModuleType:
        name = name or f"steps_{uuid.uuid4().hex[:12]}"
        path = folder / f"{name}.py"
        path.write_text(textwrap.dedent(source))
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, module)
        spec.loader.exec_module(module)
        return module

    return load


def key_of(fn: Callable[..., Any], **params: Any) -> CacheKey:
    return compute_key(
        code=code_digest(fn),
        params=params,
        inputs={"df": DIGEST_A},
        libraries=library_versions(fn),
    )


# -- code ---------------------------------------------------------------------------------------
def test_unchanged_function_gives_the_same_key_across_calls(load_module: LoadModule) -> None:
    module = load_module(
        """
        def helper(x):
            return x * 2

        def step(df, C=1.0):
            return helper(df) + C
        """
    )
    first = key_of(module.step, C=1.0)
    assert key_of(module.step, C=1.0) == first
    clear_caches()
    assert key_of(module.step, C=1.0) == first
    assert len(first.key) == 64 and len(first.parts["code"]) == 64


def test_changed_code_changes_the_key_and_identical_code_does_not(
    load_module: LoadModule,
) -> None:
    v1 = load_module("def step(df):\n    return df + 1\n")
    same = load_module("def step(df):\n    return df + 1\n")
    v2 = load_module("def step(df):\n    return df + 2\n")
    assert code_digest(same.step) == code_digest(v1.step)
    assert code_digest(v2.step) != code_digest(v1.step)
    before, after = key_of(v1.step), key_of(v2.step)
    assert after.key != before.key
    assert explain_change(before.parts, after.parts) == ["code changed"]


def test_decorator_options_comments_docstrings_and_layout_do_not_count(
    load_module: LoadModule,
) -> None:
    v1 = load_module(
        """
        def retrying(retries):
            return lambda fn: fn

        @retrying(retries=1)
        def step(df):
            return df + 1
        """
    )
    v2 = load_module(
        """
        def retrying(retries):
            return lambda fn: fn

        @retrying(retries=5)
        def step(df):
            '''Add one.'''
            # a comment
            return (df +
                    1)
        """
    )
    assert code_digest(v2.step) == code_digest(v1.step)


def test_changed_helper_of_the_same_module_changes_the_key(load_module: LoadModule) -> None:
    template = """
        SCALE = {scale}

        def inner(x):
            return x * SCALE

        class Model:
            def fit(self, x):
                return inner(x) + {offset}

        def helper(x):
            return Model().fit(x)

        def step(df):
            return helper(df)
        """
    base = load_module(template.format(scale=2, offset=0))
    same = load_module(template.format(scale=2, offset=0))
    constant = load_module(template.format(scale=3, offset=0))
    method = load_module(template.format(scale=2, offset=1))
    digest = code_digest(base.step)
    assert code_digest(same.step) == digest
    assert code_digest(constant.step) != digest  # a constant two calls deep
    assert code_digest(method.step) != digest  # a method of a class the helper uses


def test_changed_helper_in_another_project_module_changes_the_key(
    load_module: LoadModule,
) -> None:
    load_module("def clean(x):\n    return x - 1\n", name="features_v1")
    load_module("def clean(x):\n    return x - 2\n", name="features_v2")
    by_global = [
        load_module(f"from features_v{n} import clean\n\ndef step(df):\n    return clean(df)\n")
        for n in (1, 2)
    ]
    by_import = [
        load_module(f"def step(df):\n    import features_v{n} as f\n    return f.clean(df)\n")
        for n in (1, 2)
    ]
    assert code_digest(by_global[0].step) != code_digest(by_global[1].step)
    assert code_digest(by_import[0].step) != code_digest(by_import[1].step)


def test_rebinding_a_helper_name_updates_the_digest_without_clearing_caches(
    load_module: LoadModule,
) -> None:
    module = load_module("def helper(x):\n    return x\n\ndef step(df):\n    return helper(df)\n")
    other = load_module("def helper(x):\n    return -x\n")
    before = code_digest(module.step)
    module.__dict__["helper"] = other.helper  # as re-running a notebook cell does
    assert code_digest(module.step) != before


def test_function_without_source_counts_by_its_bytecode() -> None:
    def compile_step(body: str) -> Callable[..., Any]:
        namespace: dict[str, Any] = {}
        exec(compile(f"def step(df):\n    return {body}\n", "<stdin>", "exec"), namespace)
        return namespace["step"]  # type: ignore[no-any-return]

    one, same, other = compile_step("df + 1"), compile_step("df + 1"), compile_step("df + 2")
    calls_other = compile_step("other(df)")
    assert code_digest(one) == code_digest(same)
    assert code_digest(other) != code_digest(one)
    assert code_digest(calls_other) != code_digest(compile_step("another(df)"))


# -- parameters, inputs, python, extra parts ----------------------------------------------------
def test_parameter_change_changes_the_key(load_module: LoadModule) -> None:
    module = load_module("def step(df, C=1.0, k=3):\n    return df\n")
    base = key_of(module.step, C=1.0)
    assert key_of(module.step, C=1.0).key == base.key
    changed = key_of(module.step, C=0.5)
    added = key_of(module.step, C=1.0, k=5)
    assert changed.key != base.key and added.key != base.key
    assert explain_change(base.parts, changed.parts) == ["parameter 'C' changed: 1.0 -> 0.5"]
    assert explain_change(base.parts, added.parts) == ["parameter 'k' added"]
    assert explain_change(added.parts, base.parts) == ["parameter 'k' removed"]


def test_input_digest_change_changes_the_key() -> None:
    common: dict[str, Any] = {"code": "c" * 64, "params": {}, "libraries": {}}
    before = compute_key(inputs={"df": DIGEST_A}, **common)
    after = compute_key(inputs={"df": DIGEST_B}, **common)
    more = compute_key(inputs={"df": DIGEST_A, "labels": DIGEST_B}, **common)
    assert len({before.key, after.key, more.key}) == 3
    assert explain_change(before.parts, after.parts) == ["input 'df' changed (3f2a1c… -> 9b0e44…)"]
    assert explain_change(before.parts, more.parts) == ["input 'labels' added"]
    assert explain_change(more.parts, before.parts) == ["input 'labels' removed"]


def test_key_records_python_and_extra_parts() -> None:
    common: dict[str, Any] = {"code": "c" * 64, "params": {}, "inputs": {}, "libraries": {}}
    plain = compute_key(**common)
    assert plain.parts["python"] == PYTHON
    with_outputs = compute_key(extra={"outputs": ["model", "metrics"]}, **common)
    renamed = compute_key(extra={"outputs": ["model", "scores"]}, **common)
    assert len({plain.key, with_outputs.key, renamed.key}) == 3
    assert explain_change(plain.parts, with_outputs.parts) == ["outputs added"]
    assert explain_change(with_outputs.parts, renamed.parts) == [
        "outputs changed: ['model', 'metrics'] -> ['model', 'scores']"
    ]
    older = {**plain.parts, "python": "3.10"}
    assert explain_change(older, plain.parts) == [f"python changed: 3.10 -> {PYTHON}"]
    with pytest.raises(InvalidArgument, match="invalid extra cache key part 'code'"):
        compute_key(extra={"code": "x"}, **common)


def test_key_is_the_digest_of_canonical_parts_in_any_order() -> None:
    first = compute_key(
        code="c" * 64,
        params={"b": (1, 2), "a": {"y": 1, "x": 2}},
        inputs={"z": DIGEST_A, "a": DIGEST_B},
        libraries={"numpy": "2.0", "pandas": "2.2"},
    )
    second = compute_key(
        code="c" * 64,
        params={"a": {"x": 2, "y": 1}, "b": [1, 2]},
        inputs={"a": DIGEST_B, "z": DIGEST_A},
        libraries={"pandas": "2.2", "numpy": "2.0"},
    )
    assert first == second


class Mode(enum.StrEnum):
    FAST = "fast"


def test_params_canonical_makes_plain_json_values() -> None:
    canonical = params_canonical(
        {
            "mode": Mode.FAST,
            "n": np.int64(3),
            "rate": np.float32(0.5),
            "flag": np.bool_(True),
            "bounds": (float("-inf"), float("inf")),
            "missing": float("nan"),
            "nested": {"b": [1, (2, 3)], "a": None},
        }
    )
    assert canonical == {
        "bounds": ["-Infinity", "Infinity"],
        "flag": True,
        "missing": "NaN",
        "mode": "fast",
        "n": 3,
        "nested": {"a": None, "b": [1, [2, 3]]},
        "rate": 0.5,
    }
    assert [type(canonical[k]) for k in ("mode", "n", "flag")] == [str, int, bool]
    assert list(canonical) == sorted(canonical)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        pytest.param(np.zeros(3), "numpy.ndarray", id="array"),
        pytest.param(Path("data.csv"), "pathlib.PosixPath", id="path"),
        pytest.param({1: "a"}, "non-string keys", id="int-keys"),
        pytest.param([{"deep": {1, 2}}], "builtins.set", id="set-inside"),
    ],
)
def test_non_json_parameter_says_to_pass_it_as_an_input(value: object, shown: str) -> None:
    if isinstance(value, Path) and sys.platform == "win32":
        pytest.skip("path class name differs on Windows")
    with pytest.raises(InvalidArgument) as error:
        params_canonical({"data": value})
    message = str(error.value)
    assert "parameter 'data'" in message and shown in message
    assert "step input" in message


# -- libraries ----------------------------------------------------------------------------------
def test_library_versions_cover_imports_in_the_body_and_module_globals(
    load_module: LoadModule,
) -> None:
    module = load_module(
        """
        import json
        import numpy as np

        def helper(x):
            import sklearn.linear_model
            return sklearn.linear_model

        def step(df):
            import os
            return np.asarray(helper(df)), json, os
        """
    )
    import sklearn

    versions = library_versions(module.step)
    assert versions == {
        "loopml": __version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
    }
    extra = library_versions(module.step, extra=["pyarrow", "PyYAML"])
    assert {"pyarrow", "pyyaml"} <= set(extra)
    with pytest.raises(InvalidArgument, match="unknown library 'no-such-lib-x'"):
        library_versions(module.step, extra=["no-such-lib-x"])


@pytest.fixture
def fake_library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A real (tiny) installed distribution, loopml_cachetest_lib 1.0; yields its METADATA."""
    site = tmp_path / "site"
    package = site / "loopml_cachetest_lib"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("def shout(x):\n    return x.upper()\n")
    info = site / "loopml_cachetest_lib-1.0.dist-info"
    info.mkdir()
    metadata = info / "METADATA"
    metadata.write_text("Metadata-Version: 2.1\nName: loopml_cachetest_lib\nVersion: 1.0\n")
    (info / "top_level.txt").write_text("loopml_cachetest_lib\n")
    monkeypatch.syspath_prepend(str(site))
    clear_caches()
    yield metadata
    sys.modules.pop("loopml_cachetest_lib", None)
    monkeypatch.undo()
    clear_caches()


def test_library_version_change_changes_the_key(
    load_module: LoadModule, fake_library: Path
) -> None:
    module = load_module(
        """
        import loopml_cachetest_lib

        def step(df):
            return loopml_cachetest_lib.shout(df)
        """
    )
    assert library_versions(module.step)["loopml-cachetest-lib"] == "1.0"
    before = key_of(module.step)
    assert key_of(module.step) == before

    fake_library.write_text("Metadata-Version: 2.1\nName: loopml_cachetest_lib\nVersion: 2.0\n")
    clear_caches()
    after = key_of(module.step)
    assert after.parts["libraries"]["loopml-cachetest-lib"] == "2.0"
    assert after.key != before.key
    assert after.parts["code"] == before.parts["code"]
    assert explain_change(before.parts, after.parts) == [
        "library loopml-cachetest-lib changed: 1.0 -> 2.0"
    ]


# -- explaining ---------------------------------------------------------------------------------
def test_explain_change_wording() -> None:
    parts = compute_key(
        code="c" * 64,
        params={"C": 1.0},
        inputs={"df": DIGEST_A},
        libraries={"scikit-learn": "1.5.0", "numpy": "2.0"},
    ).parts
    assert explain_change(None, parts) == ["no earlier run of this step"]
    assert explain_change(parts, dict(parts)) == []
    upgraded = {**parts, "libraries": {"scikit-learn": "1.6.1", "pandas": "2.2"}}
    assert explain_change(parts, upgraded) == [
        "library numpy removed (was 2.0)",
        "library pandas added: 2.2",
        "library scikit-learn changed: 1.5.0 -> 1.6.1",
    ]
    everything = {
        **upgraded,
        "code": "d" * 64,
        "params": {"C": 0.5},
        "inputs": {"df": DIGEST_B},
    }
    assert explain_change(parts, everything) == [
        "code changed",
        "parameter 'C' changed: 1.0 -> 0.5",
        "input 'df' changed (3f2a1c… -> 9b0e44…)",
        "library numpy removed (was 2.0)",
        "library pandas added: 2.2",
        "library scikit-learn changed: 1.5.0 -> 1.6.1",
    ]
    assert explain_change({"code": "c" * 64}, {"code": "c" * 64, "params": {}}) == []
