"""A wheel of the running loopml, when it runs from a source checkout.

A bundle built from a checkout must not depend on loopml being on a package index: it ships
``wheels/loopml-<version>-py3-none-any.whl``, built with ``pip wheel --no-deps``.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from loopml.errors import InvalidState

__all__ = ["build_loopml_wheel", "loopml_source_root"]


def loopml_source_root() -> Path | None:
    """The project folder (with loopml's ``pyproject.toml``) this loopml was imported from."""
    import loopml

    package = Path(loopml.__file__).resolve().parent
    # Only the source layouts: an installed copy in a virtualenv that happens to live inside
    # a checkout is not the checkout.
    for folder in (package.parent.parent, package.parent):
        if package not in (folder / "src" / "loopml", folder / "loopml"):
            continue
        candidate = folder / "pyproject.toml"
        if not candidate.is_file():
            continue
        try:
            project = tomllib.loads(candidate.read_text(encoding="utf-8")).get("project", {})
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            return None
        return folder if project.get("name") == "loopml" else None
    return None


def build_loopml_wheel(dest: Path, *, timeout_s: float = 300.0) -> Path | None:
    """Build loopml's wheel into ``dest``; ``None`` when loopml is an installed release."""
    root = loopml_source_root()
    if root is None:
        return None
    dest.mkdir(parents=True, exist_ok=True)
    before = set(dest.glob("loopml-*.whl"))
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dest)]
    try:
        done = subprocess.run(
            [*command, str(root)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise InvalidState(
            f"building loopml's wheel from its source checkout took over {timeout_s:.0f}s"
        ) from None
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise InvalidState(
            f"could not build loopml's wheel from its source checkout (pip exited "
            f"{done.returncode}):\n{tail}"
        )
    built = sorted(set(dest.glob("loopml-*.whl")) - before) or sorted(dest.glob("loopml-*.whl"))
    if not built:
        raise InvalidState("pip reported success but wrote no loopml wheel")
    return built[-1]
