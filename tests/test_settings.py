"""Settings come from LOOPML_* variables, bad values are named, and every one is documented."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from loopml.errors import InvalidArgument
from loopml.settings import Settings

DOCS = Path(__file__).resolve().parent.parent / "docs" / "settings.md"


def test_every_setting_is_documented_with_its_default() -> None:
    text = DOCS.read_text()
    for f in dataclasses.fields(Settings):
        default = "(empty)" if f.default == "" else str(f.default)
        assert f"| `LOOPML_{f.name.upper()}` | `{default}` |" in text, f.name


def test_values_are_read_and_converted_from_the_environment() -> None:
    s = Settings.from_env(
        {
            "LOOPML_FLUSH_INTERVAL_S": "0.25",
            "LOOPML_FLUSH_MAX_POINTS": "10",
            "LOOPML_CAPTURE_ENVIRONMENT": "off",
            "LOOPML_WORKSPACE": "/tmp/ws",
        }
    )
    assert (s.flush_interval_s, s.flush_max_points, s.capture_environment) == (0.25, 10, False)
    assert s.workspace == Path("/tmp/ws")
    assert s.resolved_store_uri == "sqlite:////tmp/ws/loopml.db"
    assert s.resolved_artifact_uri == "file:///tmp/ws/artifacts"


def test_keyword_overrides_win_over_the_environment() -> None:
    s = Settings.from_env({"LOOPML_EXPERIMENT": "a"}, experiment="b")
    assert s.experiment == "b"


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("LOOPML_FLUSH_INTERVAL_S", "soon", "a number >= 0"),
        ("LOOPML_FLUSH_MAX_POINTS", "-3", "a whole number >= 0"),
        ("LOOPML_CAPTURE_ENVIRONMENT", "maybe", "true or false"),
    ],
)
def test_bad_values_name_the_variable_and_what_it_accepts(
    name: str, raw: str, expected: str
) -> None:
    with pytest.raises(InvalidArgument, match=f"invalid {name}='{raw}': expected {expected}"):
        Settings.from_env({name: raw})


def test_a_shared_store_needs_an_explicit_artifact_root() -> None:
    s = Settings.from_env({"LOOPML_STORE_URI": "postgresql+psycopg://db/x"})
    with pytest.raises(InvalidArgument, match="LOOPML_ARTIFACT_URI"):
        _ = s.resolved_artifact_uri
