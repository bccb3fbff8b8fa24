"""Work done in a child process by the artifact tests (to be killed, or to measure its memory).

Usage: python _artifact_child.py MODE ROOT_URI OPTIONS_JSON [ARGS...]

* ``stream``: store three small objects, print ``ready``, then put_stream an endless stream.
* ``file SOURCE``: store three small objects, print ``ready``, then put_file SOURCE.
* ``roundtrip SOURCE DEST``: put_file SOURCE, download_file to DEST, print a JSON report.
"""

from __future__ import annotations

import io
import json
import resource
import sys
import time

from loopml.artifacts import ArtifactStore


def _own_peak_kib() -> int:
    """This program's peak resident memory, from /proc (VmHWM starts afresh at exec, unlike
    ru_maxrss, which still counts the pages of the large parent this process was forked from)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class EndlessStream(io.RawIOBase):
    """Yields a repeating byte pattern forever."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        view[:] = b"\x5a" * len(view)
        return len(view)


def main(argv: list[str]) -> None:
    mode, root_uri, options_json, *args = argv
    store = ArtifactStore(root_uri, storage_options=json.loads(options_json) or None)
    if mode in ("stream", "file"):
        for i in range(3):
            store.put_bytes(f"complete object {i}".encode(), name=f"small-{i}.txt")
        print("ready", flush=True)
        if mode == "stream":
            store.put_stream(EndlessStream(), name="endless.bin")
        else:
            store.put_file(args[0])
        print("finished", flush=True)
    elif mode == "roundtrip":
        source, dest = args
        started = time.monotonic()
        ref = store.put_file(source)
        stored = time.monotonic()
        store.download_file(ref.digest, dest)
        done = time.monotonic()
        report = {
            "digest": ref.digest,
            "size": ref.size,
            "put_seconds": round(stored - started, 2),
            "download_seconds": round(done - stored, 2),
            "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "peak_kib": _own_peak_kib(),
        }
        print(json.dumps(report), flush=True)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
