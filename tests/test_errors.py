"""Errors render to JSON with stable codes and come back as the same class."""

from __future__ import annotations

import pytest

from loopml.errors import (
    AlreadyExists,
    CorruptArtifact,
    FilterSyntaxError,
    InvalidArgument,
    InvalidState,
    LoopmlError,
    NotFound,
    SchemaOutdated,
    StoreUnavailable,
    error_from_dict,
)

ALL = [
    (LoopmlError, "internal_error", 500),
    (InvalidArgument, "invalid_argument", 400),
    (NotFound, "not_found", 404),
    (AlreadyExists, "already_exists", 409),
    (InvalidState, "invalid_state", 409),
    (CorruptArtifact, "corrupt_artifact", 500),
    (SchemaOutdated, "schema_outdated", 503),
    (StoreUnavailable, "store_unavailable", 503),
]


@pytest.mark.parametrize(("cls", "code", "status"), ALL)
def test_error_round_trips_through_its_dict(cls: type[LoopmlError], code: str, status: int) -> None:
    err = cls("run 'r-12' not found", id="r-12")
    body = err.to_dict()
    assert body == {
        "error": {"code": code, "message": "run 'r-12' not found", "details": {"id": "r-12"}}
    }
    assert cls.http_status == status
    back = error_from_dict(body)
    assert type(back) is cls
    assert back.message == err.message
    assert back.details == {"id": "r-12"}


def test_filter_error_keeps_its_position_across_the_round_trip() -> None:
    err = FilterSyntaxError("expected an operator", text="metrics.acc 0.9", position=12)
    assert str(err).endswith("metrics.acc 0.9\n              ^")
    back = error_from_dict(err.to_dict())
    assert isinstance(back, FilterSyntaxError)
    assert back.position == 12
    assert back.code == "invalid_filter"


def test_unknown_code_falls_back_to_the_base_class() -> None:
    back = error_from_dict({"error": {"code": "from_the_future", "message": "m"}})
    assert type(back) is LoopmlError


def test_value_and_lookup_errors_are_catchable_as_builtins() -> None:
    assert issubclass(InvalidArgument, ValueError)
    assert issubclass(NotFound, LookupError)
