"""Every public exception of loopml, in one hierarchy with stable codes.

Each class carries a ``code`` that never changes once released and the HTTP status a server
answers with. An error renders as ``{"error": {"code": ..., "message": ..., "details": ...}}``
and :func:`error_from_dict` turns that back into the same class, so a REST client raises
exactly what the embedded store would have raised.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AlreadyExists",
    "CorruptArtifact",
    "FilterSyntaxError",
    "InvalidArgument",
    "InvalidState",
    "LoopmlError",
    "NotFound",
    "Overloaded",
    "PayloadTooLarge",
    "PromotionRefused",
    "SchemaOutdated",
    "StoreUnavailable",
    "error_from_dict",
]


class LoopmlError(Exception):
    """Base of every loopml error. ``details`` holds machine-readable facts about it."""

    code: ClassVar[str] = "internal_error"
    http_status: ClassVar[int] = 500
    _by_code: ClassVar[dict[str, type[LoopmlError]]] = {}

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" in cls.__dict__:
            LoopmlError._by_code[cls.code] = cls

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return {"error": body}


LoopmlError._by_code[LoopmlError.code] = LoopmlError


class InvalidArgument(LoopmlError, ValueError):
    """A value given by the caller is not allowed; the message says what would be."""

    code = "invalid_argument"
    http_status = 400


class FilterSyntaxError(InvalidArgument):
    """A search filter or order-by clause did not parse; ``position`` points at the bad token."""

    code = "invalid_filter"

    def __init__(self, message: str, *, text: str = "", position: int = 0) -> None:
        pointer = f"\n  {text}\n  {' ' * position}^" if text else ""
        super().__init__(f"{message}{pointer}", text=text, position=position)
        self.text = text
        self.position = position


class PayloadTooLarge(InvalidArgument):
    """A request body is larger than the server accepts; ``details["limit"]`` is the limit."""

    code = "payload_too_large"
    http_status = 413


class NotFound(LoopmlError, LookupError):
    """The experiment, run, artifact or other object asked for does not exist."""

    code = "not_found"
    http_status = 404


class AlreadyExists(LoopmlError):
    """An object with that name or id exists already."""

    code = "already_exists"
    http_status = 409


class InvalidState(LoopmlError):
    """The operation is not allowed in the object's current state (e.g. a finished run)."""

    code = "invalid_state"
    http_status = 409


class PromotionRefused(InvalidState):
    """A model version failed the promotion gates of an alias; ``details["gates"]`` says which."""

    code = "promotion_refused"


class PipelineFailed(InvalidState):
    """A pipeline run ended FAILED; ``details["steps"]`` maps each failed step to its error."""

    code = "pipeline_failed"


class CorruptArtifact(LoopmlError):
    """Stored bytes do not match their content digest: the object was damaged at rest."""

    code = "corrupt_artifact"
    http_status = 500


class SchemaOutdated(LoopmlError):
    """The metadata database has an older schema than this loopml; run ``loopml db upgrade``."""

    code = "schema_outdated"
    http_status = 503


class StoreUnavailable(LoopmlError):
    """The metadata store or artifact storage could not be reached or opened."""

    code = "store_unavailable"
    http_status = 503


class Overloaded(LoopmlError):
    """The server cannot take the request in time; retry after ``details["retry_after_s"]``."""

    code = "overloaded"
    http_status = 503


def error_from_dict(body: dict[str, Any]) -> LoopmlError:
    """Rebuild the error that :meth:`LoopmlError.to_dict` rendered (unknown codes: base class)."""
    inner = body.get("error", body)
    cls = LoopmlError._by_code.get(str(inner.get("code")), LoopmlError)
    message = str(inner.get("message", "unknown error"))
    details = dict(inner.get("details") or {})
    if cls is FilterSyntaxError:
        err: LoopmlError = LoopmlError.__new__(cls)
        LoopmlError.__init__(err, message, **details)
        err.text = details.get("text", "")  # type: ignore[attr-defined]
        err.position = details.get("position", 0)  # type: ignore[attr-defined]
        return err
    return cls(message, **details)
