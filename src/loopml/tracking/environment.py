"""Capture where a run executes: Python, packages, platform, git state and command line.

Packages come from ``importlib.metadata`` (read once per process; no ``pip freeze``
subprocess); git state from one ``git status --porcelain=v2 --branch`` call.
"""

from __future__ import annotations

import getpass
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

from loopml.core.entities import Environment


def installed_packages() -> dict[str, str]:
    """Every installed distribution's name (normalised) and version."""
    from loopml.tracking.distributions import installed

    return dict(sorted((d.name.lower().replace("_", "-"), d.version) for d in installed()))


def git_state(directory: Path) -> tuple[str | None, bool | None, str | None]:
    """(commit, dirty, branch) of the git work tree holding ``directory``, or Nones."""
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None, None, None
    if out.returncode != 0:
        return None, None, None
    commit = branch = None
    dirty = False
    for line in out.stdout.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split(" ", 2)[2]
            commit = None if oid == "(initial)" else oid
        elif line.startswith("# branch.head "):
            head = line.split(" ", 2)[2]
            branch = None if head == "(detached)" else head
        elif not line.startswith("#"):
            dirty = True
    return commit, dirty, branch


def source_directory() -> Path:
    """The folder of the running script; the current directory for notebooks, ``-c`` and
    installed console scripts (whose file lives in the environment, not in the user's code)."""
    script = sys.argv[0] if sys.argv else ""
    if script and os.path.isfile(script):
        folder = Path(script).resolve().parent
        installed = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
        if not any(folder == p or p in folder.parents for p in installed):
            return folder
    return Path.cwd()


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def capture_environment() -> Environment:
    commit, dirty, branch = git_state(source_directory())
    return Environment(
        python_version=platform.python_version(),
        platform=platform.platform(),
        packages=installed_packages(),
        git_commit=commit,
        git_dirty=dirty,
        git_branch=branch,
        command=tuple([sys.executable, *sys.argv]),
        cwd=os.getcwd(),
        hostname=socket.gethostname(),
        user=current_user(),
    )
