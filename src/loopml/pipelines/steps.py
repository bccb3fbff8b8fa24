"""``@step``: a typed Python function that a pipeline runs, caches and records.

Called outside a pipeline body a step is its plain function. Inside one (see
:mod:`loopml.pipelines.graph`) a call adds a node to the graph and returns references to the
node's outputs.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from loopml.core.pipelines import check_node_name
from loopml.errors import InvalidArgument

F = TypeVar("F", bound=Callable[..., Any])

RESOURCE_NAMES = ("cpu", "gpu", "memory_mb")


@dataclass(frozen=True, slots=True)
class StepOptions:
    """How a step runs.

    ``retries`` extra attempts after a failure, waiting ``backoff_s * 2**(attempt-1)`` (at most
    ``max_backoff_s``) between them, for exceptions of the ``retry_on`` types. ``timeout_s``
    bounds one attempt. ``resources`` (``cpu``, ``gpu``, ``memory_mb``) limit what runs at once
    on the local executor and become Ray task options on Ray. ``cache=False`` always runs the
    step. ``libraries`` adds distributions whose versions belong to the cache key (those the
    function's module uses are found by themselves). ``outputs`` names the items of a tuple
    return value; ``serializers`` picks a serializer by output name.
    """

    name: str
    retries: int = 0
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    timeout_s: float | None = None
    resources: Mapping[str, float] = field(default_factory=dict)
    cache: bool = True
    libraries: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ("output",)
    serializers: Mapping[str, str] = field(default_factory=dict)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (attempts count from 1)."""
        return float(min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1)))


class Step:
    """A function made a pipeline step by :func:`step`."""

    def __init__(self, fn: Callable[..., Any], options: StepOptions) -> None:
        self.fn = fn
        self.options = options
        self.signature = inspect.signature(fn)
        functools.update_wrapper(self, fn)

    @property
    def name(self) -> str:
        return self.options.name

    @property
    def qualified_name(self) -> str:
        return f"{self.fn.__module__}.{self.fn.__qualname__}"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from loopml.pipelines.graph import current_tracer

        tracer = current_tracer()
        if tracer is None:
            return self.fn(*args, **kwargs)
        return tracer.add_step(self, args, kwargs)

    def __repr__(self) -> str:
        return f"<Step {self.name!r} ({self.qualified_name})>"


@overload
def step(fn: F, /) -> Step: ...


@overload
def step(
    *,
    name: str | None = None,
    retries: int = 0,
    backoff_s: float = 1.0,
    max_backoff_s: float = 60.0,
    retry_on: Iterable[type[BaseException]] = (Exception,),
    timeout_s: float | None = None,
    resources: Mapping[str, float] | None = None,
    cache: bool = True,
    libraries: Iterable[str] = (),
    outputs: Iterable[str] | None = None,
    serializers: Mapping[str, str] | None = None,
) -> Callable[[F], Step]: ...


def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    retries: int = 0,
    backoff_s: float = 1.0,
    max_backoff_s: float = 60.0,
    retry_on: Iterable[type[BaseException]] = (Exception,),
    timeout_s: float | None = None,
    resources: Mapping[str, float] | None = None,
    cache: bool = True,
    libraries: Iterable[str] = (),
    outputs: Iterable[str] | None = None,
    serializers: Mapping[str, str] | None = None,
) -> Step | Callable[[F], Step]:
    """Make a function a pipeline step: ``@step`` or ``@step(retries=2, timeout_s=60)``.

    See :class:`StepOptions` for the options.
    """

    def wrap(function: Callable[..., Any]) -> Step:
        if not callable(function) or isinstance(function, Step):
            raise InvalidArgument(f"@step needs a function, got {function!r}")
        options = _options(
            name or function.__name__,
            retries=retries,
            backoff_s=backoff_s,
            max_backoff_s=max_backoff_s,
            retry_on=tuple(retry_on),
            timeout_s=timeout_s,
            resources=dict(resources or {}),
            cache=cache,
            libraries=tuple(libraries),
            outputs=None if outputs is None else tuple(outputs),
            serializers=dict(serializers or {}),
        )
        return Step(function, options)

    return wrap(fn) if fn is not None else wrap


def _options(name: str, **values: Any) -> StepOptions:
    check_node_name(name)
    retries = values["retries"]
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise InvalidArgument(f"step {name!r}: retries={retries!r} must be a whole number >= 0")
    for key in ("backoff_s", "max_backoff_s"):
        if not _non_negative(values[key]):
            raise InvalidArgument(f"step {name!r}: {key}={values[key]!r} must be a number >= 0")
    timeout = values["timeout_s"]
    if timeout is not None and not (_non_negative(timeout) and timeout > 0):
        raise InvalidArgument(f"step {name!r}: timeout_s={timeout!r} must be a number > 0 or None")
    for kind in values["retry_on"]:
        if not (isinstance(kind, type) and issubclass(kind, BaseException)):
            raise InvalidArgument(f"step {name!r}: retry_on holds {kind!r}; give exception classes")
    for key, amount in values["resources"].items():
        if key not in RESOURCE_NAMES or not _non_negative(amount):
            raise InvalidArgument(
                f"step {name!r}: resource {key}={amount!r} is not valid; resources are "
                f"{', '.join(RESOURCE_NAMES)} with numbers >= 0"
            )
    outputs = values.pop("outputs")
    if outputs is not None:
        if not outputs or len(set(outputs)) != len(outputs):
            raise InvalidArgument(
                f"step {name!r}: outputs={outputs!r} must be distinct names, at least one"
            )
        for output in outputs:
            check_node_name(output)
    else:
        outputs = ("output",)
    unknown = set(values["serializers"]) - set(outputs)
    if unknown:
        raise InvalidArgument(
            f"step {name!r}: serializers name unknown outputs {sorted(unknown)}; outputs are "
            f"{list(outputs)}"
        )
    return StepOptions(name=name, outputs=outputs, **values)


def _non_negative(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )
