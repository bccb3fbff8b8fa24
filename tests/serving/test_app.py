"""The minimal server over real HTTP: health, version, MLflow's scoring protocol, /predict and
every error as JSON."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from loopml._version import __version__
from loopml.models import load_model
from loopml.serving.app import create_app

from .conftest import RunningServer, SavedModel, StartServer


@pytest.fixture
def served(classifier: SavedModel, start_server: StartServer) -> RunningServer:
    predictor = load_model(str(classifier.path))
    return start_server(create_app(predictor, model_name="cancer", model_version="3"))


@pytest.fixture
def served_regressor(regressor: SavedModel, start_server: StartServer) -> RunningServer:
    return start_server(create_app(load_model(str(regressor.path)), model_name="lin"))


def _rows(classifier: SavedModel, n: int = 25) -> Any:
    return classifier.X.iloc[100 : 100 + n]


def test_ping_health_and_version(served: RunningServer) -> None:
    for route in ("/ping", "/health"):
        response = served.client.get(route)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        assert response.json() == {"status": "ok"}
    assert served.client.get("/version").json() == {
        "loopml": __version__,
        "model": "cancer",
        "model_version": "3",
    }


def _invocation_bodies(frame: Any) -> dict[str, Any]:
    return {
        "dataframe_split": {
            "dataframe_split": {"columns": list(frame.columns), "data": frame.values.tolist()}
        },
        "dataframe_records": {"dataframe_records": frame.to_dict(orient="records")},
        "instances_records": {"instances": frame.to_dict(orient="records")},
        "inputs_columns": {"inputs": {c: frame[c].tolist() for c in frame.columns}},
        "instances_rows": {"instances": frame.values.tolist()},
    }


@pytest.mark.parametrize(
    "kind",
    [
        "dataframe_split",
        "dataframe_records",
        "instances_records",
        "inputs_columns",
        "instances_rows",
    ],
)
def test_invocations_formats_match_the_model(
    served: RunningServer, classifier: SavedModel, kind: str
) -> None:
    frame = _rows(classifier)
    response = served.client.post("/invocations", json=_invocation_bodies(frame)[kind])
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": classifier.native.predict(frame).tolist()}


def test_invocations_csv(served: RunningServer, classifier: SavedModel) -> None:
    frame = _rows(classifier)
    response = served.client.post(
        "/invocations",
        content=frame.to_csv(index=False).encode(),
        headers={"Content-Type": "text/csv; charset=utf-8"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == classifier.native.predict(frame).tolist()


def test_predict_with_probabilities(served: RunningServer, classifier: SavedModel) -> None:
    frame = _rows(classifier)
    records = frame.to_dict(orient="records")
    plain = served.client.post("/predict", json={"records": records})
    assert plain.status_code == 200, plain.text
    answer = plain.json()
    assert answer["predictions"] == classifier.native.predict(frame).tolist()
    assert (answer["model_name"], answer["model_version"]) == ("cancer", "3")
    assert answer["request_id"] == plain.headers["x-request-id"]

    as_list = served.client.post("/predict", json=records, params={"proba": "true"})
    body = as_list.json()
    assert body["predictions"] == classifier.native.predict(frame).tolist()
    np.testing.assert_allclose(
        np.array(body["probabilities"]), classifier.native.predict_proba(frame), rtol=0, atol=1e-12
    )


def test_regressor_predictions(served_regressor: RunningServer, regressor: SavedModel) -> None:
    frame = regressor.X.head(4)
    response = served_regressor.client.post(
        "/invocations", json={"dataframe_records": frame.to_dict(orient="records")}
    )
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(response.json()["predictions"], regressor.native.predict(frame))


def _error(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert "Traceback" not in response.text
    message: str = body["error"]["message"]
    return body["error"]["code"] + ": " + message


@pytest.mark.parametrize(
    ("route", "body", "expected"),
    [
        ("/invocations", b"{not json", "not valid JSON"),
        ("/invocations", b"", "empty"),
        ("/invocations", b"[1, 2]", "exactly one of"),
        ("/invocations", b'{"instances": [[1]], "inputs": [[1]]}', "got 'instances', 'inputs'"),
        ("/invocations", b'{"rows": [[1]]}', "unknown field(s) 'rows'"),
        ("/invocations", b'{"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}', "1 column"),
        ("/invocations", b'{"dataframe_records": [1, 2]}', "list of objects"),
        ("/invocations", b'{"instances": [[1, 2], [3]]}', "rectangular"),
        ("/invocations", b'{"dataframe_records": [{"nope": 1.0}]}', "mean radius"),
        ("/predict", b'{"rows": []}', "'rows'"),
        ("/predict", b"[]", "non-empty list of records"),
    ],
)
def test_bad_input_is_a_400_naming_the_problem(
    served: RunningServer, route: str, body: bytes, expected: str
) -> None:
    response = served.client.post(route, content=body, headers={"Content-Type": "application/json"})
    text = _error(response, 400)
    assert text.startswith("invalid_argument: ")
    assert expected in text


def test_bad_csv_is_a_400(served: RunningServer) -> None:
    response = served.client.post(
        "/invocations", content=b"a,b\n", headers={"Content-Type": "text/csv"}
    )
    assert "no rows" in _error(response, 400)


def test_unsupported_content_type_is_a_415(served: RunningServer) -> None:
    response = served.client.post(
        "/invocations", content=b"<x/>", headers={"Content-Type": "application/xml"}
    )
    text = _error(response, 415)
    assert "'application/xml'" in text and "application/json or text/csv" in text
    response = served.client.post(
        "/predict", content=b"a\n1\n", headers={"Content-Type": "text/csv"}
    )
    assert "'text/csv'" in _error(response, 415)


def test_probabilities_of_a_model_without_them(served_regressor: RunningServer) -> None:
    response = served_regressor.client.post(
        "/predict", json=[{"a": 1.0, "b": 2.0}], params={"proba": "1"}
    )
    text = _error(response, 400)
    assert "predict_proba" in text and "'lin'" in text


def test_bad_proba_flag(served: RunningServer, classifier: SavedModel) -> None:
    records = _rows(classifier, 1).to_dict(orient="records")
    text = _error(served.client.post("/predict", json=records, params={"proba": "maybe"}), 400)
    assert "proba='maybe'" in text


def test_unknown_route_and_wrong_method_are_json(served: RunningServer) -> None:
    text = _error(served.client.get("/nope"), 404)
    assert text.startswith("not_found: ") and "POST /invocations" in text
    text = _error(served.client.get("/invocations"), 405)
    assert text.startswith("method_not_allowed: ")


class Picky:
    """A custom model that rejects negative input and breaks on 13."""

    def predict(self, data: Any) -> Any:
        values = np.asarray(data, dtype=float)
        if (values < 0).any():
            raise ValueError("negative values are not allowed")
        if (values == 13).any():
            raise RuntimeError("unlucky")
        return values.sum(axis=1)


@pytest.fixture
def served_picky(tmp_path: Any, start_server: StartServer) -> RunningServer:
    from loopml.models import save_model

    save_model(Picky(), tmp_path / "picky", input_example=np.ones((2, 2)))
    return start_server(create_app(load_model(str(tmp_path / "picky")), model_name="picky"))


def test_model_errors(served_picky: RunningServer) -> None:
    ok = served_picky.client.post("/invocations", json={"instances": [[1, 2]]})
    assert ok.json() == {"predictions": [3.0]}
    bad = served_picky.client.post("/invocations", json={"instances": [[-1, 2]]})
    assert "negative values are not allowed" in _error(bad, 400)
    broken = served_picky.client.post("/invocations", json={"instances": [[13, 2]]})
    text = _error(broken, 500)
    assert text.startswith("internal_error: ") and "RuntimeError" in text
    assert "unlucky" not in text  # internals stay in the server log
    assert served_picky.client.get("/ping").status_code == 200  # and it keeps serving
