"""Opaque page tokens: callers pass back what they were given, never build one."""

from __future__ import annotations

import base64
import binascii
import json

from loopml.errors import InvalidArgument


def encode_page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_page_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        offset = None
    if not isinstance(offset, int) or offset < 0:
        raise InvalidArgument(
            f"invalid page token {token!r}: pass back the next_page_token of an earlier page"
        )
    return offset
