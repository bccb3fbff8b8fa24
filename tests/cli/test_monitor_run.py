"""``loopml monitor run`` and ``loopml monitor alerts`` on a workspace whose prediction log
holds a calm window and a shifted one."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .conftest import Invoke


def _workspace_with_traffic(workspace: Path) -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    import loopml
    from loopml.models import log_model
    from loopml.monitoring import set_reference
    from loopml.predictions import PredictionEntry, PredictionLogger
    from loopml.registry import ModelRegistry

    frame = load_breast_cancer(as_frame=True).frame
    train, live = frame.iloc[::2], frame.iloc[1::2].reset_index(drop=True)
    X = train.drop(columns="target")
    with loopml.Client() as client:
        model = LogisticRegression(max_iter=5000).fit(X, train.target)
        run = client.create_run(name="train", capture_environment=False)
        logged = log_model(model, input_example=X.head(3), run_id=run.run_id, client=client)
        ModelRegistry(client).register_model(logged.uri, "cancer")
        ModelRegistry(client).set_alias("cancer", "champion", 1)
        set_reference(client, "models:/cancer@champion", train)
        features = live.drop(columns="target")
        shifted = features * 1.8
        logger = PredictionLogger.from_client(client)
        now = int(time.time() * 1000)
        for i, rows in enumerate((features.iloc[:200], shifted.iloc[:200])):
            for j in range(0, 200, 10):
                part = rows.iloc[j : j + 10]
                logger.log(
                    PredictionEntry(
                        request_id=f"r{i}-{j}",
                        model_name="cancer",
                        model_version="1",
                        role="primary",
                        timestamp_ms=now + i * 1000 + j,
                        latency_ms=1.0,
                        inputs=part.to_numpy(),
                        outputs={
                            "predict": model.predict(part),
                            "predict_proba": model.predict_proba(part),
                        },
                        protocol="predict",
                        input_names=tuple(part.columns),
                    )
                )
        logger.close()


def test_monitor_run_scores_windows_fires_rules_and_lists_alerts(
    workspace: Path, cli: Invoke, tmp_path: Path
) -> None:
    _workspace_with_traffic(workspace)
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n"
        "  - name: inputs-drifted\n"
        "    metric: drift.share\n"
        "    op: '>='\n"
        "    threshold: 0.3\n"
        "    channels: [log]\n"
    )
    done = cli(
        "monitor", "run", "models:/cancer@champion", "--window-rows", "200", "--rules", str(rules)
    )
    assert done.exit_code == 0, done.output
    rows = [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in done.output.splitlines()
        if line.startswith("│")
    ]
    assert [row[0] for row in rows] == ["0", "1"], done.output
    assert rows[1][-1] == "inputs-drifted" and rows[0][-1] == "-"
    again = cli("monitor", "run", "cancer", "--window-rows", "200")
    assert again.exit_code == 0 and "no complete window" in again.output  # state kept
    listed = cli("monitor", "alerts", "cancer")
    assert (
        listed.exit_code == 0
        and "inputs-drifted" in listed.output
        and "drift.share" in listed.output
    )
    history = cli("runs", "list", "--experiment", "monitoring")
    assert "monitor/cancer" in history.output
    assert float(rows[0][3]) < 0.3 <= float(rows[1][3])
    assert np.isfinite(float(rows[0][5]))  # the label-free accuracy estimate


def test_monitor_run_without_a_reference_is_one_clear_error(workspace: Path, cli: Invoke) -> None:
    done = cli("monitor", "run", "some-model")
    assert done.exit_code == 0 and "no complete window" in done.output
    import loopml
    from loopml.predictions import PredictionEntry, PredictionLogger

    with loopml.Client() as client:  # a window of a model served from a folder: no registry
        logger = PredictionLogger.from_client(client)
        for i in range(3):
            logger.log(
                PredictionEntry(
                    f"q{i}",
                    "loose",
                    "",
                    "primary",
                    1_700_000_000_000 + i,
                    1.0,
                    np.ones((2, 2)),
                    {"predict": np.zeros(2)},
                    "predict",
                )
            )
        logger.close()
    loose = cli("monitor", "run", "loose", "--window-rows", "4")
    assert loose.exit_code == 1 and "give a reference" in loose.output
    assert "Traceback" not in loose.output
    bad = cli("monitor", "run", "models:/ghost@champion")
    assert bad.exit_code == 1 and "error:" in bad.output and "Traceback" not in bad.output


def test_monitor_labels_loads_ground_truth_by_request_id_and_rescores(
    workspace: Path, cli: Invoke, tmp_path: Path
) -> None:
    import pandas as pd
    from sklearn.datasets import load_breast_cancer

    import loopml

    _workspace_with_traffic(workspace)
    done = cli("monitor", "run", "models:/cancer@champion", "--window-rows", "200")
    assert done.exit_code == 0, done.output
    target = load_breast_cancer(as_frame=True).frame.iloc[1::2].target.reset_index(drop=True)
    labels = pd.DataFrame(
        [
            {"request_id": f"r0-{j}", "row": r, "ground_truth": int(target.iloc[j + r])}
            for j in range(0, 200, 10)
            for r in range(10)
            if r != 3  # one row per request stays unlabelled
        ]
    )
    labels.to_csv(tmp_path / "labels.csv", index=False)
    loaded = cli("monitor", "labels", "cancer", str(tmp_path / "labels.csv"))
    assert loaded.exit_code == 0, loaded.output
    assert "loaded 180 label(s) for 20 request(s)" in loaded.output
    assert "rescored 1 window(s)" in loaded.output
    with loopml.Client() as client:
        run = client.search_runs(filter="attributes.run_name = 'monitor/cancer'").items[0]
        (point,) = client.store.get_metric_history(run.run_id, "performance.labelled_rows")
        assert (point.step, point.value) == (0, 180)
    bad = cli("monitor", "labels", "cancer", str(tmp_path / "labels.csv").replace("labels", "nope"))
    assert bad.exit_code == 1 and "error:" in bad.output
