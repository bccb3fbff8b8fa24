"""XGBoost models, in XGBoost's own UBJSON format: ``Booster`` and the scikit-learn API
(``XGBClassifier``, ``XGBRegressor``, ``XGBRanker``, ...)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from loopml.errors import InvalidArgument
from loopml.models.flavor import Flavor, mro_modules

_FILE = "model.ubj"


class XGBoostFlavor(Flavor):
    """``xgboost.Booster`` or an XGBoost scikit-learn estimator."""

    name: ClassVar[str] = "xgboost"
    packages: ClassVar[tuple[str, ...]] = ("xgboost", "xgboost-cpu", "numpy", "scipy")

    def accepts(self, model: Any) -> bool:
        if "xgboost" not in mro_modules(model):
            return False
        import xgboost as xgb

        return isinstance(model, (xgb.Booster, xgb.XGBModel))

    def save(self, model: Any, path: Path, *, input_example: Any = None) -> dict[str, Any]:
        import xgboost as xgb

        model.save_model(str(path / _FILE))
        kind = "Booster" if isinstance(model, xgb.Booster) else type(model).__name__
        return {"file": _FILE, "model_class": kind}

    def load(self, path: Path, config: dict[str, Any]) -> Any:
        import xgboost as xgb

        kind = str(config.get("model_class", "Booster"))
        cls = getattr(xgb, kind, None)
        if not isinstance(cls, type) or not issubclass(cls, (xgb.Booster, xgb.XGBModel)):
            raise InvalidArgument(
                f"the XGBoost model in {str(path)!r} is a {kind!r}, which this xgboost "
                f"({xgb.__version__}) does not have; install the version in requirements.txt"
            )
        model = cls()
        model.load_model(str(path / str(config.get("file", _FILE))))
        return model

    def methods(self, model: Any) -> tuple[str, ...]:
        if _is_booster(model):
            return ("predict",)
        return tuple(m for m in ("predict", "predict_proba") if hasattr(model, m))

    def requirements(self, model: Any) -> tuple[str, ...]:
        if _is_booster(model):
            return self.packages
        return (*self.packages, "scikit-learn")

    def takes_dataframe(self, model: Any) -> bool:
        if _is_booster(model):
            return model.feature_names is not None
        return hasattr(model, "feature_names_in_")

    def predict(self, model: Any, data: Any, method: str) -> Any:
        if _is_booster(model):
            return model.inplace_predict(data)
        return getattr(model, method)(data)


def _is_booster(model: Any) -> bool:
    return type(model).__name__ == "Booster"
