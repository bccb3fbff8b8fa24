"""The quickstart: the closed loop, end to end, on the embedded workspace, offline.

``loopml quickstart`` trains a model on scikit-learn's bundled breast-cancer data (the referrals
of small tumours) through a loopml pipeline, registers it, promotes it to ``champion``, and
starts the real model server on it. Traffic then shifts to larger tumours; the ground truth of
every request goes to ``/feedback``. The :class:`~loopml.loop.LoopController` sees the drift,
retrains on the newest labelled rows, compares the challenger with the champion on a fresh
holdout, promotes it, and the server hot-swaps. The figures compare the static model and the
loop's model on held-out rows nobody trained on. :func:`run` is what the command calls.

scikit-learn, pandas and the web stack are imported inside the functions, so importing this
package (and the command line) stays fast.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from rich.console import Console

from loopml.errors import InvalidArgument
from loopml.quickstart.result import QuickstartResult, Served
from loopml.quickstart.traffic import Schedule

if TYPE_CHECKING:
    from loopml.tracking.client import Client

__all__ = ["QuickstartResult", "Schedule", "Served", "run"]

# import name -> distribution, for everything the quickstart needs besides loopml's own
_NEEDS = {
    "sklearn": "scikit-learn",
    "pandas": "pandas",
    "pyarrow": "pyarrow",
    "scipy": "scipy",
    "matplotlib": "matplotlib",
    "starlette": "starlette",
    "uvicorn": "uvicorn",
    "orjson": "orjson",
    "prometheus_client": "prometheus-client",
}


def run(
    *,
    client: Client | None = None,
    console: Console | None = None,
    keep_serving: bool = False,
    port: int = 0,
    schedule: Schedule | None = None,
) -> QuickstartResult:
    """Run the quickstart, printing its story and closing tables on ``console``.

    ``client`` defaults to one built from the ``LOOPML_*`` settings (closed afterwards);
    ``console`` to the terminal (a quiet console prints nothing). ``keep_serving`` leaves the
    model server running (``result.server_pid``); ``port`` 0 picks a free one. ``schedule``
    changes the traffic (see :class:`Schedule`).
    """
    require_libraries()
    from loopml.quickstart.flow import run_flow
    from loopml.quickstart.report import report
    from loopml.quickstart.story import Story

    console = console or Console()
    story = Story(console)
    if client is not None:
        result = run_flow(client, story, keep_serving=keep_serving, port=port, schedule=schedule)
    else:
        from loopml.tracking.client import Client

        with Client() as own:
            result = run_flow(own, story, keep_serving=keep_serving, port=port, schedule=schedule)
    report(console, result)
    return result


def require_libraries() -> None:
    """:class:`InvalidArgument` naming what is missing and the extra that installs it."""
    missing = [dist for module, dist in _NEEDS.items() if not _installed(module)]
    if missing:
        raise InvalidArgument(
            f"the quickstart needs {', '.join(missing)}, not installed here: "
            "pip install 'loopml[quickstart]'"
        )


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
