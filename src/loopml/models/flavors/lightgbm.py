"""LightGBM models: a ``Booster`` as LightGBM's text model; a scikit-learn API estimator
(``LGBMClassifier``, ``LGBMRegressor``, ``LGBMRanker``) with joblib, beside its booster's text
model (readable by any LightGBM, e.g. from another language)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from loopml.models.flavor import Flavor, mro_modules

_TEXT = "model.txt"
_PICKLE = "model.joblib"


class LightGBMFlavor(Flavor):
    """``lightgbm.Booster`` or a LightGBM scikit-learn estimator."""

    name: ClassVar[str] = "lightgbm"
    packages: ClassVar[tuple[str, ...]] = ("lightgbm", "numpy", "scipy")

    def accepts(self, model: Any) -> bool:
        if "lightgbm" not in mro_modules(model):
            return False
        import lightgbm as lgb

        return isinstance(model, (lgb.Booster, lgb.LGBMModel))

    def save(self, model: Any, path: Path, *, input_example: Any = None) -> dict[str, Any]:
        import lightgbm as lgb

        if isinstance(model, lgb.Booster):
            model.save_model(str(path / _TEXT))
            return {"file": _TEXT, "model_class": "Booster"}
        import joblib

        model.booster_.save_model(str(path / _TEXT))
        joblib.dump(model, path / _PICKLE)
        return {"file": _PICKLE, "booster_file": _TEXT, "model_class": type(model).__name__}

    def load(self, path: Path, config: dict[str, Any]) -> Any:
        if config.get("model_class", "Booster") == "Booster":
            import lightgbm as lgb

            return lgb.Booster(model_file=str(path / str(config.get("file", _TEXT))))
        import joblib

        return joblib.load(path / str(config.get("file", _PICKLE)))

    def methods(self, model: Any) -> tuple[str, ...]:
        if _is_booster(model):
            return ("predict",)
        return tuple(m for m in ("predict", "predict_proba") if hasattr(model, m))

    def requirements(self, model: Any) -> tuple[str, ...]:
        if _is_booster(model):
            return self.packages
        return (*self.packages, "scikit-learn", "joblib")

    def takes_dataframe(self, model: Any) -> bool:
        if _is_booster(model):
            return False
        return hasattr(model, "feature_names_in_")

    def predict(self, model: Any, data: Any, method: str) -> Any:
        return getattr(model, method)(data)


def _is_booster(model: Any) -> bool:
    return type(model).__name__ == "Booster"
