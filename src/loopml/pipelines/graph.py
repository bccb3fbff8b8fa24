"""The graph of a pipeline, traced from its body: each step call is a node, and an output
passed to another step is an edge.

The pipeline body runs once with a tracer installed; step calls return :class:`OutputRef`
placeholders instead of running. Arguments that are references become inputs; JSON-able
values become parameters (part of the cache key); other values (a DataFrame, an array) become
value inputs, stored and keyed by content digest like any output.
"""

from __future__ import annotations

import contextvars
import json
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopml.core.datasets import check_dataset_name, check_dataset_version_number
from loopml.errors import InvalidArgument

if TYPE_CHECKING:
    from loopml.pipelines.steps import Step

DATASET_STEP = "loopml.dataset"


@dataclass(frozen=True, slots=True)
class OutputRef:
    """One output of a node, as seen while the pipeline body is traced."""

    node: str
    output: str = "output"

    def __repr__(self) -> str:
        return f"<output {self.node}/{self.output}>"

    def __bool__(self) -> bool:
        raise InvalidArgument(
            f"{self!r} is a step output, known only when the pipeline runs: the pipeline body "
            "cannot branch on it; do the test inside a step"
        )

    def __iter__(self) -> Iterator[Any]:
        raise InvalidArgument(
            f"{self!r} is a single output: give the step outputs=(...) names to return a tuple"
        )


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    """A dataset version read by a pipeline: ``version`` None means the latest at run time.
    ``as_path`` gives the step the local file or folder instead of a loaded table."""

    name: str
    version: int | None = None
    as_path: bool = False


@dataclass(slots=True)
class Node:
    """A step call in the graph: ``inputs`` map argument names to references, ``params`` to
    JSON-able values and ``values`` to other Python objects."""

    name: str
    step: Step | None
    inputs: dict[str, OutputRef] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    dataset: DatasetSpec | None = None

    @property
    def upstream(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(ref.node for ref in self.inputs.values()))

    @property
    def qualified_name(self) -> str:
        return DATASET_STEP if self.step is None else self.step.qualified_name


@dataclass(slots=True)
class Graph:
    """Nodes in the order the body called them (a topological order)."""

    nodes: dict[str, Node] = field(default_factory=dict)

    def downstream(self, name: str) -> set[str]:
        """Every node that depends on ``name``, directly or not."""
        found: set[str] = set()
        frontier = {name}
        while frontier:
            frontier = {
                n.name
                for n in self.nodes.values()
                if n.name not in found and frontier & set(n.upstream)
            }
            found |= frontier
        return found


_tracer: contextvars.ContextVar[Tracer | None] = contextvars.ContextVar(
    "loopml_pipeline_tracer", default=None
)


def current_tracer() -> Tracer | None:
    return _tracer.get()


class Tracer:
    """Records step calls while a pipeline body runs."""

    def __init__(self) -> None:
        self.graph = Graph()

    @contextmanager
    def active(self) -> Iterator[Tracer]:
        token = _tracer.set(self)
        try:
            yield self
        finally:
            _tracer.reset(token)

    def _unique(self, base: str) -> str:
        if base not in self.graph.nodes:
            return base
        number = 2
        while f"{base}_{number}" in self.graph.nodes:
            number += 1
        return f"{base}_{number}"

    def add_step(self, step: Step, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
        try:
            bound = step.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidArgument(f"step {step.name!r} called with bad arguments: {exc}") from None
        bound.apply_defaults()
        node = Node(name=self._unique(step.name), step=step)
        for arg, value in bound.arguments.items():
            kind = step.signature.parameters[arg].kind
            if kind in (kind.VAR_POSITIONAL, kind.VAR_KEYWORD):
                raise InvalidArgument(
                    f"step {step.name!r}: *{arg} / **{arg} arguments are not supported in a "
                    "pipeline; name each argument"
                )
            if isinstance(value, OutputRef):
                node.inputs[arg] = value
            elif _holds_ref(value):
                raise InvalidArgument(
                    f"step {step.name!r}: argument {arg!r} holds step outputs inside a "
                    f"{type(value).__name__}; pass each output as its own argument"
                )
            elif is_json_value(value):
                node.params[arg] = value
            else:
                node.values[arg] = value
        self.graph.nodes[node.name] = node
        outputs = step.options.outputs
        if len(outputs) == 1 and outputs == ("output",):
            return OutputRef(node.name)
        return tuple(OutputRef(node.name, out) for out in outputs)

    def add_dataset(self, spec: DatasetSpec) -> OutputRef:
        node = Node(name=self._unique(f"dataset.{spec.name.replace('/', '.')}"), step=None)
        node.dataset = spec
        self.graph.nodes[node.name] = node
        return OutputRef(node.name)


def dataset(name: str, version: int | None = None, *, as_path: bool = False) -> Any:
    """Inside a pipeline body: the dataset version ``name`` (default: the latest when the run
    starts) as a step input. Steps get a pandas DataFrame for tables, or the local path with
    ``as_path=True`` (and always for files that are not tables). The version is recorded as
    read by every step that takes it."""
    tracer = current_tracer()
    if tracer is None:
        raise InvalidArgument(
            f"dataset({name!r}) is for pipeline bodies; outside one use "
            "loopml.data.load_dataset(client, name, version)"
        )
    check_dataset_name(name)
    number = None if version is None else check_dataset_version_number(version)
    return tracer.add_dataset(DatasetSpec(name, number, as_path))


def _holds_ref(value: Any) -> bool:
    """Whether a step output hides inside a list, tuple, set or dict (at any depth)."""
    if isinstance(value, OutputRef):
        return True
    if isinstance(value, dict):
        return any(_holds_ref(v) for v in value.values())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_holds_ref(v) for v in value)
    return False


def is_json_value(value: Any) -> bool:
    """Whether ``value`` is a JSON value: None, bool, int, a finite float, str, and lists,
    tuples and dicts (string keys) of those. Such values are parameters of a step or a
    pipeline (part of the cache key); anything else is stored as a value input."""
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(is_json_value(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_json_value(v) for k, v in value.items())
    return False


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
