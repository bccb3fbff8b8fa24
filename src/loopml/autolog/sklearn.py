"""Autologging for scikit-learn: every estimator's ``fit``.

The ``fit`` of each scikit-learn estimator class (as listed by ``sklearn.utils.all_estimators``,
which includes Pipeline and the hyper-parameter searches) is patched where it is defined, so a
class inheriting ``fit`` is covered by its base's patch and nothing is wrapped twice.
"""

from __future__ import annotations

from typing import Any, Final

from loopml.autolog.estimators import fit_wrapper
from loopml.autolog.patches import patch

__all__ = ["FLAVOR", "fit_owners", "patch_sklearn"]

FLAVOR: Final = "sklearn"


def fit_owners(classes: list[type[Any]], package: str) -> list[type[Any]]:
    """The classes that define the ``fit`` each of ``classes`` uses, within ``package``."""
    owners: dict[type[Any], None] = {}
    for cls in classes:
        for base in cls.__mro__:
            if "fit" in vars(base):
                if base.__module__.partition(".")[0] == package:
                    owners[base] = None
                break
    return list(owners)


def patch_sklearn() -> int:
    """Patch scikit-learn's estimators; returns how many ``fit`` methods were patched."""
    from sklearn.utils import all_estimators

    classes = [cls for _, cls in all_estimators()]
    wrapper = fit_wrapper(FLAVOR)
    return sum(patch(owner, "fit", wrapper) for owner in fit_owners(classes, "sklearn"))
