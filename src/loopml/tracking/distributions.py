"""The installed distributions: name, version and top-level import names.

Reading every installed package's metadata costs 0.1 to 0.9 s on a typical environment, and
both the environment of a run and a pipeline step's cache key need it. It is read once per
process, and kept between processes in a small cache file keyed by what is installed (the
names and modification times of the ``*.dist-info`` folders on ``sys.path``): installing,
upgrading or removing a package changes the key, so the file is never stale.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

_FORMAT = 1


@dataclass(frozen=True, slots=True)
class Distribution:
    name: str  # as its metadata spells it
    version: str
    tops: tuple[str, ...]  # the top-level modules and packages it installs


@functools.cache
def installed() -> tuple[Distribution, ...]:
    """Every installed distribution, from the cache file when what is installed is unchanged."""
    key = _fingerprint()
    cached = _read(key)
    if cached is not None:
        return cached
    found = tuple(_scan())
    _write(key, found)
    return found


def name_and_version(dist: metadata.Distribution) -> tuple[str, str]:
    """A distribution's ``Name`` and ``Version`` from its metadata's header lines only (the
    e-mail parser that ``Distribution.metadata`` uses reads whole files and is slow)."""
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    name = version = ""
    for line in text.splitlines():
        if not line:  # the headers end at the first blank line
            break
        if line.startswith("Name:") and not name:
            name = line[5:].strip()
        elif line.startswith("Version:") and not version:
            version = line[8:].strip()
        if name and version:
            break
    return name, version


def _scan() -> list[Distribution]:
    found = []
    for dist in metadata.distributions():
        name, version = name_and_version(dist)
        if name:
            found.append(Distribution(name, version, tuple(sorted(_tops(dist)))))
    return found


def _tops(dist: metadata.Distribution) -> set[str]:
    """From ``top_level.txt`` or, lacking one, the first parts of the paths in ``RECORD``."""
    declared = (dist.read_text("top_level.txt") or "").split()
    if declared:
        return {d.replace("/", ".").partition(".")[0] for d in declared}
    tops: set[str] = set()
    for line in (dist.read_text("RECORD") or "").splitlines():
        path = line.partition(",")[0]
        head, sep, _ = path.partition("/")
        if sep:
            if "." not in head and head != "__pycache__":  # not x.dist-info, x.libs, ..
                tops.add(head)
        elif head.endswith(".py"):
            tops.add(head[:-3])
    return tops


def _fingerprint() -> str:
    digest = hashlib.sha256(f"{_FORMAT}:{sys.version}".encode())
    for entry in sys.path:
        try:
            names = sorted(
                n for n in os.listdir(entry or ".") if n.endswith((".dist-info", ".egg-info"))
            )
        except OSError:
            continue
        digest.update(os.path.abspath(entry or ".").encode())
        for name in names:
            try:
                mtime = os.stat(os.path.join(entry or ".", name)).st_mtime_ns
            except OSError:
                continue
            digest.update(f"\0{name}:{mtime}".encode())
    return digest.hexdigest()


def _cache_file() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    prefix = hashlib.sha256(sys.prefix.encode()).hexdigest()[:16]
    return Path(root) / "loopml" / f"distributions-{prefix}.json"


def _read(key: str) -> tuple[Distribution, ...] | None:
    try:
        data = json.loads(_cache_file().read_text())
        if data.get("key") != key:
            return None
        return tuple(Distribution(d[0], d[1], tuple(d[2])) for d in data["distributions"])
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None  # no cache yet, or an unreadable one: read the metadata


def _write(key: str, found: tuple[Distribution, ...]) -> None:
    target = _cache_file()
    payload = {"key": key, "distributions": [[d.name, d.version, list(d.tops)] for d in found]}
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, scratch = tempfile.mkstemp(prefix=".distributions-", dir=target.parent)
        with os.fdopen(fd, "w") as out:
            json.dump(payload, out)
        os.replace(scratch, target)
    except OSError:
        return  # a read-only home: every process reads the metadata itself
