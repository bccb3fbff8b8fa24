"""PyTorch ``nn.Module`` models, run on the CPU.

Saved, in order of preference, so that loading needs no Python code of the model's own:

1. TorchScript (``model.pt``), by ``torch.jit.script``, else ``torch.jit.trace`` with the input
   example (checked on another batch size); it loads fastest;
2. ``torch.export`` (``model.pt2``) with a dynamic batch dimension, given an input example;
3. the pickled module (``model.pth``, ``torch.save`` with cloudpickle when installed); a class
   pickled by reference must be importable when the model is loaded, so ship its module with
   ``code_paths=[...]``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, ClassVar

from loopml.errors import InvalidArgument
from loopml.models.flavor import Flavor, mro_modules

_EXPORT = "model.pt2"
_SCRIPT = "model.pt"
_PICKLE = "model.pth"


class PyTorchFlavor(Flavor):
    """A ``torch.nn.Module`` (or an already scripted/exported one)."""

    name: ClassVar[str] = "pytorch"
    packages: ClassVar[tuple[str, ...]] = ("torch", "numpy", "cloudpickle")

    def accepts(self, model: Any) -> bool:
        if "torch" not in mro_modules(model):
            return False
        import torch

        return isinstance(model, torch.nn.Module)

    def save(self, model: Any, path: Path, *, input_example: Any = None) -> dict[str, Any]:
        was_training = model.training
        model.eval()
        try:
            return self._save(model, path, input_example)
        finally:
            model.train(was_training)

    def _save(self, model: Any, path: Path, input_example: Any) -> dict[str, Any]:
        import torch

        example = None if input_example is None else _example_tensor(input_example)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            for kind, compile_ in (("script", _script), ("trace", _trace)):
                try:
                    compiled = compile_(model, example)
                except Exception:  # not scriptable or traceable: try the next way
                    continue
                if compiled is not None:
                    torch.jit.save(compiled, str(path / _SCRIPT))
                    return {"file": _SCRIPT, "format": "torchscript", "compiled_by": kind}
        if example is not None:
            try:
                program = torch.export.export(
                    model, (example,), dynamic_shapes=({0: torch.export.Dim.AUTO},)
                )
                torch.export.save(program, str(path / _EXPORT))
                return {"file": _EXPORT, "format": "export"}
            except Exception:  # not exportable either: pickle the module
                (path / _EXPORT).unlink(missing_ok=True)
        try:
            import cloudpickle  # also pickles classes that are not importable (by value)
        except ImportError:
            torch.save(model, str(path / _PICKLE))
            return {"file": _PICKLE, "format": "pickle", "serializer": "pickle"}
        torch.save(model, str(path / _PICKLE), pickle_module=cloudpickle)
        return {"file": _PICKLE, "format": "pickle", "serializer": "cloudpickle"}

    def load(self, path: Path, config: dict[str, Any]) -> Any:
        import torch

        file = str(path / str(config.get("file", _EXPORT)))
        kind = config.get("format", "export")
        if kind == "export":
            return torch.export.load(file).module()
        if kind == "torchscript":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                module = torch.jit.load(file, map_location="cpu")  # type: ignore[no-untyped-call]
        elif kind == "pickle":
            module = torch.load(file, map_location="cpu", weights_only=False)
        else:
            raise InvalidArgument(
                f"unknown PyTorch model format {kind!r} in {str(path)!r}: expected export, "
                "torchscript or pickle; upgrade loopml"
            )
        module.eval()
        return module

    def methods(self, model: Any) -> tuple[str, ...]:
        return ("predict",)

    def takes_dataframe(self, model: Any) -> bool:
        return False

    def predict(self, model: Any, data: Any, method: str) -> Any:
        import numpy as np
        import torch

        with torch.no_grad():
            if isinstance(data, dict):
                result = model(**{k: torch.from_numpy(np.array(v)) for k, v in data.items()})
            else:
                array = np.asarray(data)
                if array.dtype == np.float64 and _first_float_dtype(model) == torch.float32:
                    array = array.astype(np.float32)
                if not array.flags.writeable or not array.flags.c_contiguous:
                    array = np.array(array, order="C")  # torch wants its own, writable copy
                result = model(torch.from_numpy(array))
        return _to_numpy(result)


def _script(model: Any, example: Any) -> Any:
    import torch

    if isinstance(model, torch.jit.ScriptModule):
        return model
    return torch.jit.script(model)


def _trace(model: Any, example: Any) -> Any:
    import torch

    if example is None:
        return None
    traced = torch.jit.trace(model, example, check_trace=False)  # type: ignore[no-untyped-call]
    with torch.no_grad():  # a trace must give the same answer for another batch size
        batch = torch.cat([example, example[:1]])
        if not torch.allclose(traced(batch), model(batch), equal_nan=True):
            return None
    return traced


def _example_tensor(example: Any) -> Any:
    import numpy as np
    import torch

    if isinstance(example, torch.Tensor):
        return example
    if type(example).__name__ == "DataFrame":
        example = example.to_numpy()
    try:
        array = np.asarray(example)
    except (ValueError, TypeError):
        return None
    if array.dtype.kind not in "fiub":
        return None
    if array.dtype == np.float64:
        array = array.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(array))


def _first_float_dtype(model: Any) -> Any:
    for parameter in model.parameters():
        if parameter.is_floating_point():
            return parameter.dtype
    return None


def _to_numpy(result: Any) -> Any:
    import torch

    if isinstance(result, torch.Tensor):
        return result.detach().cpu().numpy()
    if isinstance(result, (tuple, list)):
        return type(result)(_to_numpy(r) for r in result)
    if isinstance(result, dict):
        return {k: _to_numpy(v) for k, v in result.items()}
    return result
