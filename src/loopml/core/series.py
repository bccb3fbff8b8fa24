"""Metric series packed into chunks: three little-endian arrays (steps, values, timestamps).

A flush of N points for one key becomes one row instead of N, which is what makes bulk logging
cheap; NaN and +/-infinity survive bit for bit. History is the concatenation of a key's chunks
in write order, stably sorted by (step, timestamp).
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Sequence

from loopml.core.entities import Metric

_SWAP = sys.byteorder != "little"
MAX_CHUNK_POINTS = 100_000


def _pack(typecode: str, items: Sequence[float] | Sequence[int]) -> bytes:
    packed = array(typecode, items)
    if _SWAP:
        packed.byteswap()
    return packed.tobytes()


def _ints(data: bytes) -> array[int]:
    unpacked = array("q")
    unpacked.frombytes(data)
    if _SWAP:
        unpacked.byteswap()
    return unpacked


def _floats(data: bytes) -> array[float]:
    unpacked = array("d")
    unpacked.frombytes(data)
    if _SWAP:
        unpacked.byteswap()
    return unpacked


def encode(
    steps: Sequence[int], values: Sequence[float], timestamps: Sequence[int]
) -> tuple[bytes, bytes, bytes]:
    return _pack("q", steps), _pack("d", values), _pack("q", timestamps)


def decode(key: str, steps: bytes, values: bytes, timestamps: bytes) -> list[Metric]:
    return [
        Metric(key, v, s, t)
        for s, v, t in zip(_ints(steps), _floats(values), _ints(timestamps), strict=True)
    ]


def history(key: str, chunks: Iterable[tuple[bytes, bytes, bytes]]) -> list[Metric]:
    points: list[Metric] = []
    for steps, values, timestamps in chunks:
        points.extend(decode(key, steps, values, timestamps))
    points.sort(key=lambda m: (m.step, m.timestamp))  # stable: ties keep write order
    return points
