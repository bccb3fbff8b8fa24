"""Lineage: walk from a model version back through the steps that made it to the data files.

model version -> the tracking run that logged it -> the pipeline step that run belongs to ->
the steps whose outputs it read (recursively) -> the dataset versions they read, each with its
content digest and original source. Runs outside pipelines contribute the dataset versions
they recorded as inputs (``Client.log_dataset_version``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopml.core.datasets import DATASET_SOURCE_TYPE
from loopml.core.pipelines import StepRun, StepStatus

if TYPE_CHECKING:
    from loopml.tracking.client import Client


@dataclass(frozen=True, slots=True)
class LineageNode:
    """One thing in the lineage: ``kind`` is ``model_version``, ``run``, ``step`` or
    ``dataset``; ``parents`` are what it was made from."""

    kind: str
    id: str
    label: str
    details: dict[str, Any] = field(default_factory=dict)
    parents: tuple[LineageNode, ...] = ()

    def walk(self) -> list[LineageNode]:
        """This node and every ancestor, depth first, each once."""
        seen: dict[tuple[str, str], LineageNode] = {}
        stack = [self]
        while stack:
            node = stack.pop()
            if (node.kind, node.id) in seen:
                continue
            seen[(node.kind, node.id)] = node
            stack.extend(reversed(node.parents))
        return list(seen.values())

    def datasets(self) -> list[LineageNode]:
        """The dataset versions at the roots of the lineage."""
        return [n for n in self.walk() if n.kind == "dataset"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "label": self.label,
            "details": self.details,
            "parents": [p.to_dict() for p in self.parents],
        }


def model_lineage(client: Client, name: str, version: int) -> LineageNode:
    """The lineage of model version ``name``/``version``."""
    store = client.store
    found = store.get_model_version(name, version)
    parents: tuple[LineageNode, ...] = ()
    if found.run_id:
        parents = (_run_node(client, found.run_id),)
    return LineageNode(
        kind="model_version",
        id=f"{name}/{version}",
        label=f"model {name} version {version}",
        details={"source": found.source, "digest": found.digest, "run_id": found.run_id},
        parents=parents,
    )


def _run_node(client: Client, run_id: str) -> LineageNode:
    store = client.store
    steps = store.list_step_runs(
        tracking_run_id=run_id, statuses=[StepStatus.COMPLETED], limit=1
    )  # the step that ran; CACHED copies share its tracking run
    made = steps[0] if steps else None
    if made is not None:
        siblings = {s.name: s for s in store.list_step_runs(made.pipeline_run_id)}
        return _step_node(client, made, siblings, {})
    run = client.get_run(run_id)
    datasets = tuple(
        _dataset_node(client, i.source.removeprefix("dataset:"))
        if i.source_type == DATASET_SOURCE_TYPE
        else LineageNode("dataset", f"{i.name}:{i.digest}", i.name, {"digest": i.digest})
        for i in client.get_inputs(run_id)
        if i.context != "output"
    )
    return LineageNode(
        kind="run",
        id=run_id,
        label=f"run {run.name}",
        details={"experiment_id": run.experiment_id, "status": run.status.value},
        parents=datasets,
    )


def _step_node(
    client: Client,
    step: StepRun,
    siblings: dict[str, StepRun],
    done: dict[str, LineageNode],
) -> LineageNode:
    if step.name in done:
        return done[step.name]
    parents: list[LineageNode] = []
    for given in step.inputs:
        if given.source.startswith("step:"):
            upstream = given.source.removeprefix("step:").partition("/")[0]
            if upstream in siblings:
                parents.append(_step_node(client, siblings[upstream], siblings, done))
        elif given.source.startswith("dataset:"):
            parents.append(_dataset_node(client, given.source.removeprefix("dataset:")))
    listed = {p.id for p in parents}
    for label in step.datasets_read:  # read inside the step body (get_step_context)
        if label not in listed:
            parents.append(_dataset_node(client, label))
    node = LineageNode(
        kind="step",
        id=f"{step.pipeline_run_id}/{step.name}",
        label=f"step {step.name} of pipeline {step.pipeline}",
        details={
            "status": step.status.value,
            "cache_key": step.cache_key,
            "tracking_run_id": step.tracking_run_id,
            "cached_from": step.cached_from,
            "params": step.params,
            "outputs": {o.name: o.digest for o in step.outputs},
        },
        parents=tuple(parents),
    )
    done[step.name] = node
    return node


def _dataset_node(client: Client, label: str) -> LineageNode:
    name, _, number = label.rpartition("@")
    details: dict[str, Any] = {}
    try:
        version = client.store.get_dataset_version(name, int(number))
    except Exception as exc:  # deleted or malformed: still show what was recorded
        details["error"] = str(exc)
    else:
        details = {
            "digest": version.digest,
            "source": version.source,
            "format": version.format,
            "rows": version.rows,
            "size_bytes": version.size_bytes,
        }
    return LineageNode(kind="dataset", id=label, label=f"dataset {label}", details=details)
